"""Named model presets — timm backbone, input size and batch size — shared by every bundle.

A bundle selects a preset by name (``model: convnextv2_tiny``) and reads its entries, instead of keeping one
train config per architecture::

    preset: "$medbundle.networks.model_preset(@model)"
    backbone: "$@preset['backbone']"
    image_size: "$@preset['image_size']"
    batch_size: "$@preset['batch_size']"
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["MODEL_PRESETS", "model_preset"]

# The chest X-ray architectures with the input sizes of the two-stage fine-tuning recipe. Batch sizes are for a
# 32 GB GPU (RTX 5090) with mixed precision: convnextv2_tiny and the three tf_efficientnetv2 come from the
# recipe's RunPod config; convnextv2_base, regnety_040 and regnety_080 are our choice, scaled from those by
# compute and activation memory per image, not measured.
MODEL_PRESETS: dict[str, dict[str, Any]] = {
    "convnextv2_tiny": {"backbone": "convnextv2_tiny", "image_size": [224, 224], "batch_size": 256},
    "convnextv2_base": {"backbone": "convnextv2_base", "image_size": [224, 224], "batch_size": 128},
    "tf_efficientnetv2_s": {"backbone": "tf_efficientnetv2_s", "image_size": [288, 288], "batch_size": 192},
    "tf_efficientnetv2_m": {"backbone": "tf_efficientnetv2_m", "image_size": [320, 320], "batch_size": 144},
    "tf_efficientnetv2_l": {"backbone": "tf_efficientnetv2_l", "image_size": [384, 384], "batch_size": 96},
    "regnety_040": {"backbone": "regnety_040", "image_size": [224, 224], "batch_size": 256},
    "regnety_080": {"backbone": "regnety_080", "image_size": [224, 224], "batch_size": 128},
    # small models that train on a CPU, for demos and tests
    "resnet10t": {"backbone": "resnet10t", "image_size": [128, 128], "batch_size": 32},
    "efficientnet_b0": {"backbone": "efficientnet_b0", "image_size": [128, 128], "batch_size": 32},
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
