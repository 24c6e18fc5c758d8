"""Resize channel-first 2D images: aspect-preserving resize and pad, and exact area (adaptive average) resizing.

- :func:`aspect_resize_pad` scales an image by one factor to fit a fixed size and pads the rest.
  Stretching a cropped breast to the network's input shape would change the apparent shape of
  masses and calcification clusters, which are diagnostic; scaling uniformly and padding keeps
  geometry intact while still producing a fixed-size batch. :class:`medbundle.transforms.AspectResizePad`
  wraps it.
- :func:`resize_area` is MONAI's ``Resize(mode="area")``, i.e. ``torch.nn.functional.interpolate(mode="area")``
  (adaptive average pooling), in numpy: OpenCV's ``INTER_AREA`` differs from it (it interpolates
  bilinearly when enlarging, and weighs partial pixels when shrinking by a non-integer factor).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from medbundle.imaging.pairs import as_pair

__all__ = [
    "PAD_POSITIONS",
    "adaptive_average_matrix",
    "aspect_fit",
    "aspect_resize_pad",
    "check_aspect_params",
    "resize_area",
]

#: where :func:`aspect_resize_pad` may put the padding along an axis
PAD_POSITIONS = ("start", "center", "end")

Pads = tuple[tuple[int, int], tuple[int, int]]


def check_aspect_params(
    spatial_size: Sequence[int] | int, pad_position: Sequence[str] | str = ("center", "end")
) -> tuple[tuple[int, int], tuple[str, str]]:
    """`spatial_size` and `pad_position` as ``(H, W)`` pairs, validated.

    Raises:
        ValueError: a size is not positive, a position is not one of :data:`PAD_POSITIONS`, or a
            sequence does not have two values.
    """
    size = tuple(int(s) for s in as_pair(spatial_size, "spatial_size"))
    if min(size) < 1:
        raise ValueError(f"spatial_size must be positive, got {spatial_size}.")
    positions = as_pair(pad_position, "pad_position")
    for position in positions:
        if position not in PAD_POSITIONS:
            raise ValueError(f"pad_position must be one of {PAD_POSITIONS}, got {position!r}.")
    return size, positions  # type: ignore[return-value]


def aspect_fit(
    shape: Sequence[int], spatial_size: Sequence[int] | int, pad_position: Sequence[str] | str = ("center", "end")
) -> tuple[tuple[int, int], Pads]:
    """Where an image of ``(H, W)`` `shape` goes in :func:`aspect_resize_pad`.

    Returns:
        ``((new_h, new_w), ((top, bottom), (left, right)))``: the resized size and the padding.
    """
    (out_h, out_w), positions = check_aspect_params(spatial_size, pad_position)
    height, width = int(shape[0]), int(shape[1])
    scale = min(out_h / height, out_w / width)
    new_h = min(out_h, max(1, round(height * scale)))
    new_w = min(out_w, max(1, round(width * scale)))
    pads = (_split(out_h - new_h, positions[0]), _split(out_w - new_w, positions[1]))
    return (new_h, new_w), pads


def aspect_resize_pad(
    image: np.ndarray,
    spatial_size: Sequence[int] | int,
    pad_position: Sequence[str] | str = ("center", "end"),
    padding_mode: str = "constant",
) -> np.ndarray:
    """Resize a channel-first 2D image ``(C, H, W)`` to fit inside `spatial_size`, then pad to exactly that size.

    The image is scaled by one factor, ``min(H_out / H, W_out / W)``, so that it touches the target
    along at least one axis, and the other axis is padded. Resizing uses OpenCV, per channel:
    ``INTER_AREA`` when shrinking (a proper box filter, so large downscales of 2000-5000 px
    mammograms do not alias, and far faster than torch interpolation on CPU) and ``INTER_LINEAR``
    when enlarging.

    Args:
        image: channel-first image ``(C, H, W)``.
        spatial_size: output size ``(H, W)``; an int is used for both.
        pad_position: ``"start"`` (pad before the image), ``"center"`` or ``"end"`` (pad after it),
            for H and W; a single string is used for both. The default ``("center", "end")``
            centres the image vertically and puts all horizontal padding on the right, so that
            after :func:`~medbundle.imaging.canonical_flip.flip_to_left` the chest wall stays
            against the left edge of every image.
        padding_mode: :func:`numpy.pad` mode, e.g. ``"constant"`` (zeros, the background of a
            mammogram), ``"edge"`` or ``"reflect"``.

    Returns:
        The ``(C, *spatial_size)`` image, of the input's dtype (`image` itself when nothing changes).

    Raises:
        ValueError: `image` is not 3-D, or the parameters are invalid.
    """
    image = np.asarray(image)
    if image.ndim != 3:
        raise ValueError(f"expected a channel-first 2D image (C, H, W), got shape {image.shape}.")
    height, width = image.shape[1:]
    (new_h, new_w), pads = aspect_fit((height, width), spatial_size, pad_position)
    if (new_h, new_w) != (height, width):
        interpolation = cv2.INTER_AREA if new_h < height or new_w < width else cv2.INTER_LINEAR
        image = np.stack(
            [cv2.resize(np.ascontiguousarray(c), (new_w, new_h), interpolation=interpolation) for c in image]
        )
    if any(p for pad in pads for p in pad):
        image = np.pad(image, [(0, 0), *pads], mode=padding_mode)
    return image


def _split(total: int, position: str) -> tuple[int, int]:
    """Split `total` padding pixels into (before, after) for `position`."""
    if position == "start":
        return total, 0
    if position == "end":
        return 0, total
    return total // 2, total - total // 2


def adaptive_average_matrix(in_size: int, out_size: int) -> np.ndarray:
    """The ``(out_size, in_size)`` float64 matrix of 1-D adaptive average pooling.

    Output ``i`` is the mean of inputs ``floor(i * in / out)`` to ``ceil((i + 1) * in / out)``
    (end exclusive), PyTorch's ``adaptive_avg_pool`` windows: they overlap or repeat inputs when
    enlarging and never weigh a pixel partially.
    """
    index = np.arange(out_size)
    start = (index * in_size) // out_size
    end = -((-(index + 1) * in_size) // out_size)  # ceil division
    columns = np.arange(in_size)
    inside = (columns >= start[:, None]) & (columns < end[:, None])
    return inside / (end - start)[:, None]


def resize_area(image: np.ndarray, spatial_size: Sequence[int] | int) -> np.ndarray:
    """Resize a channel-first 2D image ``(C, H, W)`` to `spatial_size` as MONAI's ``Resize(mode="area")`` does.

    That is ``torch.nn.functional.interpolate(mode="area")``, 2-D adaptive average pooling: each
    output pixel is the mean of the input block given by :func:`adaptive_average_matrix` along each
    axis (the 2-D window is the product of the 1-D ones). Computed in float64 as two matrix
    products and returned as float32; it matches PyTorch's float32 sums to rounding (~1e-7). An
    image that already has the size is returned as float32 unchanged, as MONAI does.

    Raises:
        ValueError: `image` is not 3-D, or a size is not positive.
    """
    out_h, out_w = (int(s) for s in as_pair(spatial_size, "spatial_size"))
    if min(out_h, out_w) < 1:
        raise ValueError(f"spatial_size must be positive, got {spatial_size}.")
    image = np.asarray(image)
    if image.ndim != 3:
        raise ValueError(f"expected a channel-first 2D image (C, H, W), got shape {image.shape}.")
    height, width = image.shape[1:]
    if (height, width) == (out_h, out_w):
        return image.astype(np.float32, copy=False)
    rows, columns = adaptive_average_matrix(height, out_h), adaptive_average_matrix(width, out_w)
    return (rows @ image.astype(np.float64) @ columns.T).astype(np.float32)
