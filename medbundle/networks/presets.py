"""Named model presets — timm backbone, input size, batch size (and gradient accumulation) — shared by every bundle.

A bundle selects a preset by name (``model: convnextv2_tiny``) and reads its entries, instead of keeping one
train config per architecture; a ``--backbone`` that is not the preset's trains with that backbone's own settings
(:func:`preset_for`)::

    preset: "$medbundle.networks.model_preset(@model)"
    backbone: "$@preset['backbone']"
    trained: "$medbundle.networks.preset_for(@model, @backbone)"
    image_size: "$@trained['image_size']"
    batch_size: "$@trained['batch_size']"
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["CUSTOM_BATCH_SIZE", "MODEL_PRESETS", "model_preset", "preset_for"]

#: the batch size of a backbone without a preset
CUSTOM_BATCH_SIZE = 32

# Chest X-ray: the architectures with the input sizes of the two-stage fine-tuning recipe. Batch sizes are for a
# 32 GB GPU (RTX 5090) with mixed precision: convnextv2_tiny and the three tf_efficientnetv2 come from the
# recipe's RunPod config; convnextv2_base, regnety_040 and regnety_080 are our choice, scaled from those by
# compute and activation memory per image, not measured.
# Skin lesions (ISIC): the six models of the skin-lesion recipe with its image sizes, batch sizes (16 GB P100,
# fp16) and gradient accumulation (`accumulation_steps`, to an effective batch of 32); efficientnet_b0 is the
# recipe's tf_efficientnet_b0_ns under its current timm name.
# A preset is a starting point: the bundles' `--image_size` / `--batch_size` overrides still win.
MODEL_PRESETS: dict[str, dict[str, Any]] = {
    "convnextv2_tiny": {"backbone": "convnextv2_tiny", "image_size": [224, 224], "batch_size": 256},
    "convnextv2_base": {"backbone": "convnextv2_base", "image_size": [224, 224], "batch_size": 128},
    "tf_efficientnetv2_s": {"backbone": "tf_efficientnetv2_s", "image_size": [288, 288], "batch_size": 192},
    "tf_efficientnetv2_m": {"backbone": "tf_efficientnetv2_m", "image_size": [320, 320], "batch_size": 144},
    "tf_efficientnetv2_l": {"backbone": "tf_efficientnetv2_l", "image_size": [384, 384], "batch_size": 96},
    "regnety_040": {"backbone": "regnety_040", "image_size": [224, 224], "batch_size": 256},
    "regnety_080": {"backbone": "regnety_080", "image_size": [224, 224], "batch_size": 128},
    "efficientnet_b0": {"backbone": "tf_efficientnet_b0.ns_jft_in1k", "image_size": [224, 224], "batch_size": 32},
    "efficientnetv2_l": {"backbone": "tf_efficientnetv2_l.in21k_ft_in1k", "image_size": [384, 384], "batch_size": 16},
    "convnext_large": {"backbone": "convnext_large.fb_in22k_ft_in1k", "image_size": [224, 224], "batch_size": 16},
    "convnext_tiny": {"backbone": "convnext_tiny", "image_size": [224, 224], "batch_size": 32},
    "eva02_large": {
        "backbone": "eva02_large_patch14_448.mim_in22k_ft_in1k",
        "image_size": [448, 448],
        "batch_size": 8,
        "accumulation_steps": 4,
    },
    "swin_large": {
        "backbone": "swin_large_patch4_window7_224.ms_in22k_ft_in1k",
        "image_size": [224, 224],
        "batch_size": 16,
        "accumulation_steps": 2,
    },
    # a small model that trains on a CPU, for demos and tests
    "resnet10t": {"backbone": "resnet10t", "image_size": [128, 128], "batch_size": 32},
}


def model_preset(name: str) -> dict[str, Any]:
    """A copy of the preset ``name`` from :data:`MODEL_PRESETS`, safe to modify.

    Args:
        name: preset name, e.g. ``"convnextv2_tiny"`` or ``"resnet10t"``.

    Raises:
        ValueError: when ``name`` is not a preset; the message lists the known names.
    """
    try:
        return copy.deepcopy(MODEL_PRESETS[name])
    except KeyError:
        raise ValueError(f"unknown model preset {name!r}; known presets: {sorted(MODEL_PRESETS)}") from None


def preset_for(model: str, backbone: str) -> dict[str, Any]:
    """What a run trains with: the preset `model`, or `backbone`'s own settings when it is not that preset's backbone.

    A ``--backbone`` without ``--model`` used to keep the default preset's batch size (256 for convnextv2_tiny: one
    optimiser step per epoch on a few hundred images) and record the preset's name in ``model.pt``. A backbone
    without a preset gets batch :data:`CUSTOM_BATCH_SIZE` and the input size of its timm pretrained configuration
    (224x224 when it has none), under its own name.

    Args:
        model: the preset name (the bundles' ``model``); a checkpoint of a backbone without a preset stores the
            backbone's name here.
        backbone: the timm backbone the run builds (the bundles' ``backbone``).

    Returns:
        ``name`` (the preset's, or the backbone's), ``backbone``, ``image_size``, ``batch_size`` and, for a preset
        that has it, ``accumulation_steps``.
    """
    if model in MODEL_PRESETS and backbone == MODEL_PRESETS[model]["backbone"]:
        return {"name": model, **model_preset(model)}
    import timm

    config = timm.get_pretrained_cfg(backbone)
    size = list(config.input_size[1:]) if config is not None and config.input_size else [224, 224]
    return {"name": backbone, "backbone": backbone, "image_size": size, "batch_size": CUSTOM_BATCH_SIZE}
