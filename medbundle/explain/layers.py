"""The layer whose feature map Grad-CAM explains, chosen per timm model family.

Grad-CAM weighs the last spatial feature map before pooling by the gradient of the class score: the deepest
map has the most class-specific features, at the coarsest resolution. The choice is data, like timm's
pretrained configs: :data:`TARGET_LAYERS` maps a timm model class to the module name inside it. A family not
listed gets the last module (in forward order) whose output is a 4-D ``(B, C, H, W)`` feature map, found by a
forward pass of a dummy input. Token models (ViT, DeiT, Swin, ...) have no such map without a reshape that
MONAI's GradCAM does not do; they are refused, naming the ``target_layer`` key that overrides the choice.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["TARGET_LAYERS", "target_layer"]

#: timm model class name -> module to explain inside the backbone; ``-1`` is the last child of a sequence
TARGET_LAYERS: dict[str, str] = {
    "ResNet": "layer4",  # ResNet, ResNeXt, SE-ResNet, ResNet-D/T
    "EfficientNet": "bn2",  # conv_head + BN + activation: the map global pooling reads (EfficientNet, lite, MixNet)
    "MobileNetV3": "blocks.-1",  # its conv_head runs after pooling, on a 1x1 map
    "ConvNeXt": "stages.-1",
    "RegNet": "s4",
    "DenseNet": "features",
}

#: timm model classes whose features are tokens, not a (B, C, H, W) map
_TOKEN_MODELS = ("VisionTransformer", "VisionTransformerDistilled", "Eva", "Beit", "SwinTransformer",
                 "SwinTransformerV2", "MaxxVit", "DaViT", "VOLO")  # fmt: skip


def _backbone(network: nn.Module) -> tuple[nn.Module, str]:
    """The timm model inside `network` and the prefix of its module names (``backbone.`` for a TimmClassifier)."""
    backbone = getattr(network, "backbone", None)
    return (backbone, "backbone.") if isinstance(backbone, nn.Module) else (network, "")


def _resolve(model: nn.Module, path: str) -> str:
    """`path` with each ``-1`` replaced by the name of the last child at that level."""
    module, names = model, []
    for part in path.split("."):
        if part == "-1":
            part = list(dict(module.named_children()))[-1]
        module = getattr(module, part)
        names.append(part)
    return ".".join(names)


def _last_feature_map(model: nn.Module) -> str:
    """The last module, in forward order, whose output is a 4-D tensor larger than 1x1 (a pooled map explains
    nothing), for a dummy input of the model's size; identities, which only pass a map on, are skipped."""
    outputs: list[str] = []

    def record(name: str, output: object) -> None:
        if torch.is_tensor(output) and output.ndim == 4 and output.shape[-2] * output.shape[-1] > 1:
            outputs.append(name)

    hooks = [
        module.register_forward_hook(lambda _module, _input, output, name=name: record(name, output))
        for name, module in model.named_modules()
        if name and not isinstance(module, nn.Identity)
    ]
    config = getattr(model, "pretrained_cfg", None) or {}
    channels = next((m.in_channels for m in model.modules() if isinstance(m, nn.Conv2d)), 3)
    size = tuple(config.get("input_size", (3, 224, 224))[1:])
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, channels, *size, device=next(model.parameters()).device))
        model.train(was_training)
    finally:
        for hook in hooks:
            hook.remove()
    if not outputs:
        raise ValueError(
            f"{type(model).__name__} has no module with a 4-D (B, C, H, W) output to explain; set target_layer "
            "(--target_layer) to the name of a spatial feature map in the network."
        )
    return outputs[-1]


def target_layer(network: nn.Module) -> str:
    """The name, in ``network.named_modules()``, of the feature map Grad-CAM should explain.

    Args:
        network: a :class:`~medbundle.networks.TimmClassifier` (names start with ``backbone.``) or a timm model.

    Returns:
        The module name from :data:`TARGET_LAYERS` for the backbone's class, else the last module whose output
        is a 4-D feature map larger than 1x1 (e.g. ``backbone.layer4`` for a ResNet, ``backbone.stages.3`` for a ConvNeXt).

    Raises:
        ValueError: the backbone is a token model (ViT, DeiT, Swin, ...) or has no 4-D feature map; the message
            says to set ``target_layer``.
    """
    model, prefix = _backbone(network)
    family = type(model).__name__
    if family in _TOKEN_MODELS or getattr(network, "features_nhwc", False):
        raise ValueError(
            f"{family} works on tokens, not a (B, C, H, W) feature map, and Grad-CAM here does not reshape tokens: "
            "explain a convolutional backbone, or set target_layer (--target_layer) to a module with a 4-D NCHW "
            "output."
        )
    name = _resolve(model, TARGET_LAYERS[family]) if family in TARGET_LAYERS else _last_feature_map(model)
    return prefix + name
