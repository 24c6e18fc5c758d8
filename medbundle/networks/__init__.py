"""Networks for 2D medical image classification: timm backbones with named classification heads, model presets,
the channels_last memory format."""

from __future__ import annotations

from medbundle.networks.heads import (
    HEADS,
    AttentionPoolHead,
    ClassificationHead,
    LinearHead,
    MLPHead,
    create_head,
    get_head_class,
)
from medbundle.networks.lite_weights import LITE_VARIANTS, efficientnet_lite_file
from medbundle.networks.memory_format import channels_last
from medbundle.networks.presets import MODEL_PRESETS, model_preset, preset_for
from medbundle.networks.timm_classifier import TimmClassifier

__all__ = [
    "HEADS",
    "LITE_VARIANTS",
    "MODEL_PRESETS",
    "AttentionPoolHead",
    "ClassificationHead",
    "LinearHead",
    "MLPHead",
    "TimmClassifier",
    "channels_last",
    "create_head",
    "efficientnet_lite_file",
    "get_head_class",
    "model_preset",
    "preset_for",
]
