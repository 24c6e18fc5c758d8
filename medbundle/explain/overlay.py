"""Grad-CAM maps drawn over the images the network saw, as RGB pictures for people (OpenCV, no matplotlib)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch
from torch import nn

from medbundle.explain.gradcam import gradcam_maps
from medbundle.visualize import montage

__all__ = ["explain_batch", "overlay"]


def _rgb_uint8(image: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` (C 1 or 3) or ``(H, W)`` in [0, 1] as ``(H, W, 3)`` uint8 RGB."""
    array = np.asarray(image, dtype=np.float32)
    array = array[None] if array.ndim == 2 else array
    if array.ndim != 3 or array.shape[0] not in (1, 3):
        raise ValueError(f"overlay takes an image (C, H, W) with 1 or 3 channels, or (H, W); got shape {array.shape}.")
    rgb = np.repeat(array, 3, axis=0) if array.shape[0] == 1 else array
    return np.rint(np.clip(rgb.transpose(1, 2, 0), 0.0, 1.0) * 255).astype(np.uint8)


def overlay(image: np.ndarray, cam: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """`cam` in OpenCV's JET colours (blue 0, red 1) blended over `image`.

    Args:
        image: ``(C, H, W)`` with C 1 or 3, or ``(H, W)``, values in [0, 1]: the image the network saw.
        cam: ``(H, W)`` map in [0, 1] (:func:`~medbundle.explain.gradcam_maps`).
        alpha: weight of the colour map; the image gets ``1 - alpha``.

    Returns:
        ``(H, W, 3)`` uint8 RGB.

    Raises:
        ValueError: the image has another channel count, or the map another height and width.
    """
    rgb = _rgb_uint8(image)
    cam = np.asarray(cam, dtype=np.float32)
    if cam.shape != rgb.shape[:2]:
        raise ValueError(f"the map has shape {cam.shape} but the image is {rgb.shape[:2]}: compute it on this image.")
    heat = cv2.cvtColor(cv2.applyColorMap(np.rint(np.clip(cam, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_JET),
                        cv2.COLOR_BGR2RGB)  # fmt: skip
    return cv2.addWeighted(heat, alpha, rgb, 1.0 - alpha, 0.0)


def explain_batch(
    network: nn.Module,
    images: torch.Tensor,
    ids: Sequence[str],
    probabilities: Sequence[float],
    class_index: int | Sequence[int] | None = None,
    target_layer: str | None = None,
    tile_height: int = 256,
) -> list[np.ndarray]:
    """One picture per image: the image beside its Grad-CAM overlay, captioned with its id and probability.

    For pages that already hold preprocessed images and their predictions (e.g. the most confident true
    positives of an evaluation).

    Args:
        network: the classifier (see :func:`~medbundle.explain.gradcam_maps`).
        images: ``(B, C, H, W)`` in [0, 1] as the network takes them, on its device.
        ids: an id per image, for the caption.
        probabilities: the probability per image shown in the caption (of the explained class).
        class_index: the output to explain, one for all, one per image, or None (see ``gradcam_maps``).
        target_layer: the module to explain; None chooses it per timm family.
        tile_height: height in pixels of each half of a picture.

    Returns:
        ``(H', W', 3)`` uint8 RGB pictures, in the order of `images`.

    Raises:
        ValueError: `ids` or `probabilities` do not have one entry per image.
    """
    if not len(ids) == len(probabilities) == images.shape[0]:
        raise ValueError(f"explain_batch needs one id and probability per image: got {images.shape[0]} images, "
                         f"{len(ids)} ids and {len(probabilities)} probabilities.")  # fmt: skip
    maps = gradcam_maps(network, images, class_index=class_index, target_layer=target_layer)
    pictures = []
    for image, cam, image_id, probability in zip(images.detach().float().cpu().numpy(), maps, ids, probabilities):
        blended = overlay(image, cam).transpose(2, 0, 1).astype(np.float32) / 255
        pictures.append(montage([image, blended], [str(image_id), f"p = {float(probability):.3f}"], columns=2,
                                tile_height=tile_height))  # fmt: skip
    return pictures
