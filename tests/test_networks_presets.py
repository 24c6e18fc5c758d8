"""Tests of the shared model presets."""

from __future__ import annotations

import os
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"

import pytest
import timm

from medbundle.networks import MODEL_PRESETS, TimmClassifier, model_preset

CHEST_XRAY_MODELS = {
    "convnextv2_tiny": 224,
    "convnextv2_base": 224,
    "tf_efficientnetv2_s": 288,
    "tf_efficientnetv2_m": 320,
    "tf_efficientnetv2_l": 384,
    "regnety_040": 224,
    "regnety_080": 224,
}


SKIN_LESION_MODELS = {  # the seed's table: backbone, image size, batch size, gradient accumulation
    "efficientnet_b0": ("tf_efficientnet_b0.ns_jft_in1k", 224, 32, 1),
    "efficientnetv2_l": ("tf_efficientnetv2_l.in21k_ft_in1k", 384, 16, 1),
    "convnext_large": ("convnext_large.fb_in22k_ft_in1k", 224, 16, 1),
    "convnext_tiny": ("convnext_tiny", 224, 32, 1),
    "eva02_large": ("eva02_large_patch14_448.mim_in22k_ft_in1k", 448, 8, 4),
    "swin_large": ("swin_large_patch4_window7_224.ms_in22k_ft_in1k", 224, 16, 2),
}


def test_every_preset_names_a_timm_model_with_square_size_and_batch() -> None:
    for name, preset in MODEL_PRESETS.items():
        assert {"backbone", "image_size", "batch_size"} <= set(preset) <= {
            "backbone", "image_size", "batch_size", "accumulation_steps"
        }, name
        assert timm.is_model(preset["backbone"]), name
        assert len(preset["image_size"]) == 2 and preset["image_size"][0] == preset["image_size"][1] > 0, name
        assert isinstance(preset["batch_size"], int) and preset["batch_size"] > 0, name


def test_chest_xray_models_use_the_recipe_input_sizes_and_runpod_batch_sizes() -> None:
    for name, size in CHEST_XRAY_MODELS.items():
        assert model_preset(name)["image_size"] == [size, size], name
    runpod = {"convnextv2_tiny": 256, "tf_efficientnetv2_s": 192, "tf_efficientnetv2_m": 144, "tf_efficientnetv2_l": 96}
    assert {name: model_preset(name)["batch_size"] for name in runpod} == runpod


def test_skin_lesion_models_follow_the_recipe_table() -> None:
    for name, (backbone, size, batch, accumulation) in SKIN_LESION_MODELS.items():
        preset = model_preset(name)
        assert (preset["backbone"], preset["image_size"], preset["batch_size"]) == (backbone, [size, size], batch)
        assert preset.get("accumulation_steps", 1) == accumulation
        assert preset["batch_size"] * accumulation in (16, 32), name  # the recipe's effective batch


def test_model_preset_returns_a_copy_that_builds_the_network() -> None:
    preset = model_preset("resnet10t")
    preset["image_size"][0] = 1
    assert MODEL_PRESETS["resnet10t"]["image_size"] == [128, 128]
    net = TimmClassifier(preset["backbone"], num_classes=5, in_chans=1, pretrained=False)
    assert net.backbone.pretrained_cfg["architecture"] == "resnet10t"


def test_unknown_preset_lists_the_known_names() -> None:
    with pytest.raises(ValueError, match="unknown model preset 'resnet18'.*convnextv2_tiny"):
        model_preset("resnet18")


@pytest.mark.parametrize("bundle", ["chest_xray", "isic", "classify"])
def test_a_backbone_override_without_a_preset_trains_and_records_its_own_settings(bundle):
    """--backbone alone used to keep the default preset's batch size (256 for chest_xray) and name."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(Path(__file__).resolve().parents[1] / "bundles" / bundle / "configs" / "train.yaml"))
    parser["backbone"] = "tf_efficientnet_lite0"
    assert parser.get_parsed_content("batch_size") == 32
    assert parser.get_parsed_content("image_size") == [224, 224]
    assert parser.get_parsed_content("stored_config#model") == "tf_efficientnet_lite0"
    plain = ConfigParser()
    plain.read_config(str(Path(__file__).resolve().parents[1] / "bundles" / bundle / "configs" / "train.yaml"))
    assert plain.get_parsed_content("stored_config#model") == plain.get_parsed_content("model")
