"""Tests of the shared model presets."""

from __future__ import annotations

import os

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


def test_every_preset_names_a_timm_model_with_square_size_and_batch() -> None:
    known = set(timm.list_models())
    for name, preset in MODEL_PRESETS.items():
        assert set(preset) == {"backbone", "image_size", "batch_size"}, name
        assert preset["backbone"] in known, name
        assert len(preset["image_size"]) == 2 and preset["image_size"][0] == preset["image_size"][1] > 0, name
        assert isinstance(preset["batch_size"], int) and preset["batch_size"] > 0, name


def test_chest_xray_models_use_the_recipe_input_sizes_and_runpod_batch_sizes() -> None:
    for name, size in CHEST_XRAY_MODELS.items():
        assert model_preset(name)["image_size"] == [size, size], name
    runpod = {"convnextv2_tiny": 256, "tf_efficientnetv2_s": 192, "tf_efficientnetv2_m": 144, "tf_efficientnetv2_l": 96}
    assert {name: model_preset(name)["batch_size"] for name in runpod} == runpod


def test_model_preset_returns_a_copy_that_builds_the_network() -> None:
    preset = model_preset("resnet10t")
    preset["image_size"][0] = 1
    assert MODEL_PRESETS["resnet10t"]["image_size"] == [128, 128]
    net = TimmClassifier(preset["backbone"], num_classes=5, in_chans=1, pretrained=False)
    assert net.backbone.pretrained_cfg["architecture"] == "resnet10t"


def test_unknown_preset_lists_the_known_names() -> None:
    with pytest.raises(ValueError, match="unknown model preset 'resnet18'.*convnextv2_tiny"):
        model_preset("resnet18")
