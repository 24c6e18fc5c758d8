"""Grad-CAM maps of a classifier at the input's resolution, one per image, scaled to ``[0, 1]``.

MONAI's :class:`~monai.visualize.GradCAM` does the work, with three things set here: its default
post-processing maps (min, max) to (1, 0), i.e. it flips the map, so each map is rescaled to (0, 1) instead;
it scores a batch with ``logits[:, class_idx]`` for a single index, so images predicted as different classes
are explained in one pass per class; and its hooks stay on the network for good, so they are removed after use.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from monai.visualize import GradCAM
from torch import nn

from medbundle.explain.layers import target_layer as default_target_layer

__all__ = ["gradcam_maps", "scaled_to_unit"]


def scaled_to_unit(maps: torch.Tensor) -> torch.Tensor:
    """Each map of `maps` ``(B, 1, H, W)`` scaled from its (min, max) to (0, 1); a constant map becomes zeros."""
    flat = maps.flatten(1)
    low, high = flat.min(1).values, flat.max(1).values
    span = (high - low).clamp_min(torch.finfo(maps.dtype).tiny)
    return ((flat - low[:, None]) / span[:, None]).view_as(maps)


@contextmanager
def _hooks_removed_after(module: nn.Module) -> Iterator[None]:
    """Remove the forward and backward hooks that were added to `module` inside the block."""
    forward, backward = set(module._forward_hooks), set(module._backward_hooks)
    try:
        yield
    finally:
        for key in set(module._forward_hooks) - forward:
            del module._forward_hooks[key]
        for key in set(module._backward_hooks) - backward:
            del module._backward_hooks[key]


def _class_indices(logits: torch.Tensor, class_index: int | Sequence[int] | None) -> torch.Tensor:
    """The output explained per image: `class_index`, else the predicted class (the single logit if binary)."""
    if class_index is None:
        return logits.argmax(1).cpu()
    if isinstance(class_index, Sequence):
        indices = torch.as_tensor(list(class_index), dtype=torch.long)
    else:
        indices = torch.full((logits.shape[0],), int(class_index), dtype=torch.long)
    if indices.shape != (logits.shape[0],) or indices.min() < 0 or indices.max() >= logits.shape[1]:
        raise ValueError(
            f"class_index {class_index} does not fit: give one index (or one per image, {logits.shape[0]}) in "
            f"[0, {logits.shape[1]}) for a network with {logits.shape[1]} outputs, or None for the predicted class."
        )
    return indices


def gradcam_maps(
    network: nn.Module,
    images: torch.Tensor,
    class_index: int | Sequence[int] | None = None,
    target_layer: str | None = None,
) -> np.ndarray:
    """Grad-CAM maps of `network` for `images`, upsampled to the images' height and width.

    Args:
        network: a classifier returning logits ``(B, K)``, e.g. a :class:`~medbundle.networks.TimmClassifier`
            (inputs in [0, 1]); it is run in eval mode and left in the mode it was in.
        images: ``(B, C, H, W)`` as the network takes them, on the network's device.
        class_index: the output to explain: one index for every image, one per image, or None for each image's
            predicted class (for a binary network with one logit, that logit: the evidence for the positive class).
        target_layer: the module to explain (a name in ``network.named_modules()``); None chooses it per timm
            family (:func:`~medbundle.explain.target_layer`).

    Returns:
        ``(B, H, W)`` float32 maps in [0, 1], 1 where the evidence for the class is strongest.

    Raises:
        ValueError: `target_layer` is not a module of `network`, or `class_index` is out of range.
    """
    layer = target_layer or default_target_layer(network)
    modules = dict(network.named_modules())
    if layer not in modules:
        raise ValueError(
            f"target_layer {layer!r} is not a module of {type(network).__name__}; set target_layer to one of its "
            f"module names, e.g. {[name for name in modules if name][-3:]}."
        )
    was_training = network.training
    network.eval()
    with torch.no_grad():
        logits = network(images)
    indices = _class_indices(logits, class_index)
    maps = torch.zeros(images.shape[0], 1, *images.shape[2:])
    with _hooks_removed_after(modules[layer]), torch.enable_grad():
        cam = GradCAM(nn_module=network, target_layers=layer, postprocessing=scaled_to_unit)
        for index in indices.unique().tolist():
            chosen = (indices == index).nonzero().flatten()
            inputs = images[chosen.to(images.device)].detach().requires_grad_()  # else torch warns on every backward hook
            maps[chosen] = cam(inputs, class_idx=index).detach().float().cpu()
    network.train(was_training)
    return maps[:, 0].numpy()
