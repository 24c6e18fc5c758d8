"""Contrast limited adaptive histogram equalisation (CLAHE) of a channel-first float image in [0, 1].

Dense breast tissue occupies a narrow band of grey levels, and the subtle findings a screening
model must detect sit inside it. CLAHE spreads the grey levels of each local tile over the full
range, with a clip limit that stops it from amplifying noise in flat regions, so local contrast is
raised consistently across scanners and exposures. Plain numpy and OpenCV;
:class:`medbundle.transforms.CLAHE` wraps it.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from medbundle.imaging.pairs import as_pair

__all__ = ["CLAHE_BITS", "apply_clahe", "check_clahe_params"]

#: quantisation depths OpenCV's CLAHE supports
CLAHE_BITS = (8, 16)


def check_clahe_params(tile_grid_size: Sequence[int] | int, bits: int) -> tuple[int, int]:
    """The tile grid as ``(rows, columns)`` of tiles.

    Raises:
        ValueError: `bits` is not 8 or 16, or `tile_grid_size` is not one or two values.
    """
    if bits not in CLAHE_BITS:
        raise ValueError(f"bits must be 8 or 16, got {bits}.")
    return as_pair(tile_grid_size, "tile_grid_size")


def apply_clahe(
    image: np.ndarray, clip_limit: float = 2.0, tile_grid_size: Sequence[int] | int = 8, bits: int = 8
) -> np.ndarray:
    """Apply OpenCV's CLAHE to each channel of a channel-first image ``(C, H, W)`` with intensities in [0, 1].

    OpenCV's CLAHE works on integer images, so the input is clipped to [0, 1], quantised to `bits`
    (8 or 16) bits, equalised, and scaled back to a float32 image in [0, 1].

    The default is 8 bits. OpenCV converts the clip limit into a per-bin count,
    ``max(1, int(clip_limit * tile_pixels / 2**bits))``; with 65536 bins that count is 1 for any
    usual clip limit (e.g. below 8 for 128 x 64 px tiles), so in 16-bit mode `clip_limit` has no
    effect and the result is close to unclipped equalisation, with a strength that depends on how
    many grey levels the data happens to use. With 8 bits the clip limit behaves as documented, and
    the transform is several times faster.

    Args:
        image: channel-first image ``(C, H, W)`` with intensities in [0, 1].
        clip_limit: contrast limit, relative to a uniform histogram (see above for ``bits=16``).
        tile_grid_size: number of tiles along (H, W); an int is used for both.
        bits: quantisation depth, 8 or 16.

    Returns:
        float32 image of the same shape, with intensities in [0, 1].

    Raises:
        ValueError: `image` is not 3-D, or the parameters are invalid.
    """
    grid = check_clahe_params(tile_grid_size, bits)
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3:
        raise ValueError(f"expected a channel-first 2D image (C, H, W), got shape {image.shape}.")
    max_level = 2**bits - 1
    quantised = np.round(np.clip(image, 0.0, 1.0) * max_level).astype(np.uint8 if bits == 8 else np.uint16)
    # OpenCV takes the tile grid as (columns, rows)
    equaliser = cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=tuple(grid[::-1]))
    return np.stack([equaliser.apply(channel) for channel in quantised]).astype(np.float32) / max_level
