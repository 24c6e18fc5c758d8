"""Bring a mammogram into one orientation: the breast on the left, by comparing the two halves' intensity.

Left and right breasts are mirror images of each other; bringing every image into one
orientation (chest wall on the left, nipple pointing right) removes a nuisance factor the
classifier would otherwise have to learn, and lets aspect-preserving resizing pad on one known
side. The decision is taken from the pixels, so it does not depend on (sometimes missing or
wrong) laterality metadata. Plain numpy; :class:`medbundle.transforms.CanonicalFlip` wraps it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["flip", "flip_to_left", "needs_flip"]


def needs_flip(image: np.ndarray) -> bool:
    """Whether a channel-first ``(C, H, W)`` image has more intensity in its right half than in its left half.

    For an odd width the centre column is ignored; ties (e.g. blank images) are not flipped.

    Raises:
        ValueError: `image` is not 3-D.
    """
    image = np.asarray(image)
    if image.ndim != 3:
        raise ValueError(f"expected a channel-first 2D image (C, H, W), got shape {image.shape}.")
    half = image.shape[-1] // 2
    left = image[..., :half].sum(dtype=np.float64)
    right = image[..., image.shape[-1] - half :].sum(dtype=np.float64)
    return bool(right > left)


def flip(image: np.ndarray) -> np.ndarray:
    """`image` mirrored along its last axis (W), as a contiguous copy."""
    return np.ascontiguousarray(np.asarray(image)[..., ::-1])


def flip_to_left(image: np.ndarray) -> np.ndarray:
    """`image` with the breast on the left: flipped when :func:`needs_flip`, else `image` itself."""
    return flip(image) if needs_flip(image) else image
