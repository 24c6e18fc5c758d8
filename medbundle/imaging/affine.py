"""Random 2D affine augmentation with OpenCV, with MONAI's ``RandAffine`` conventions.

MONAI's ``RandAffine`` builds a sampling grid in torch and calls ``grid_sample``; on a CPU data loader that costs
about 1 ms per 224 x 224 image, mostly grid building and per-operation overhead, while ``cv2.warpAffine`` does the
same resampling in a fraction of it. This module reproduces MONAI's geometry exactly, so that a bundle can switch
without changing what its augmentation does:

- :func:`check_range` and :func:`sample_affine_params` read and draw ``rotate_range``, ``scale_range`` and
  ``translate_range`` as ``monai.transforms.RandAffineGrid`` does;
- :func:`affine_matrix` is the map of ``monai.transforms.Affine(rotate_params, scale_params, translate_params)``
  from output to input pixels, in OpenCV's ``(x, y)`` order;
- :func:`warp_affine` resamples a channel-first image with it. Bilinear output matches MONAI's to the rounding
  of MONAI's float32 grid (< 1e-4) for every padding mode; :class:`medbundle.transforms.RandAffine2Dd` wraps it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import cv2
import numpy as np

__all__ = [
    "INTERPOLATION_MODES",
    "PADDING_MODES",
    "AffineParams",
    "affine_matrix",
    "check_modes",
    "check_range",
    "sample_affine_params",
    "warp_affine",
]

#: MONAI (``grid_sample``) padding mode: the OpenCV border that gives the same values outside the image.
#: ``grid_sample``'s reflection with ``align_corners=False`` mirrors about the outer pixel edges, which is
#: ``BORDER_REFLECT`` (``cba|abc``), not ``BORDER_REFLECT_101`` (``cb|abc``).
PADDING_MODES = {"zeros": cv2.BORDER_CONSTANT, "border": cv2.BORDER_REPLICATE, "reflection": cv2.BORDER_REFLECT}

#: MONAI interpolation mode: the OpenCV interpolation flag.
INTERPOLATION_MODES = {"bilinear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST}

Range = tuple[float, float]


class AffineParams(NamedTuple):
    """One draw of the random affine: the ``rotate_params``, ``scale_params`` and ``translate_params`` of MONAI's ``Affine``.

    Attributes:
        rotate: rotation angle in radians.
        scale: factors along (H, W); above 1 samples a larger input area, so the content shrinks.
        translate: shift along (H, W) in pixels of the input sampled by the output; positive moves content up/left.
    """

    rotate: float = 0.0
    scale: tuple[float, float] = (1.0, 1.0)
    translate: tuple[float, float] = (0.0, 0.0)


def check_range(value: Any, name: str, max_axes: int) -> tuple[Range, ...]:
    """A MONAI ``RandAffineGrid`` range argument as one ``(low, high)`` interval per axis, from the first axis on.

    MONAI's rule: a number ``r`` is ``[-r, r]`` for the first axis (H) only, and the other axes are left alone;
    a sequence gives one entry per axis, each a number ``r`` (``[-r, r]``) or a ``(min, max)`` pair. So
    ``scale_range=0.1`` stretches along H only, and ``scale_range=[0.1, 0.1]`` scales both axes, independently.

    Args:
        value: None, a number, or a sequence of numbers and ``(min, max)`` pairs.
        name: the argument's name, for error messages.
        max_axes: how many axes the parameter has in 2D: 1 for the rotation angle, 2 for scale and translation.

    Raises:
        ValueError: more entries than `max_axes`, an entry that is None, or a pair that is not two numbers.
    """
    if value is None:
        return ()
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        value = value.tolist()
    entries = list(value) if isinstance(value, (list, tuple)) else [value]
    if len(entries) > max_axes:
        raise ValueError(
            f"{name} has {len(entries)} entries but a 2D affine has {max_axes} here: give one per axis (H, W), "
            f"and write a (min, max) interval as a nested pair, e.g. [[0.1, 0.3]]; got {value!r}."
        )
    ranges = []
    for entry in entries:
        if entry is None:
            raise ValueError(f"{name} has a None entry: use 0 for an axis that should not change; got {value!r}.")
        if isinstance(entry, (list, tuple)):
            if len(entry) != 2:
                raise ValueError(f"{name} intervals must be (min, max) pairs, got {entry!r} in {value!r}.")
            ranges.append((float(entry[0]), float(entry[1])))
        else:
            ranges.append((-float(entry), float(entry)))
    return tuple(ranges)


def sample_affine_params(
    rng: np.random.RandomState,
    rotate_range: Sequence[Range] = (),
    scale_range: Sequence[Range] = (),
    translate_range: Sequence[Range] = (),
    isotropic: bool = False,
) -> AffineParams:
    """Draw one :class:`AffineParams` from ranges given by :func:`check_range`, as ``RandAffineGrid.randomize`` does.

    Each interval is drawn with ``rng.uniform(low, high)``, in MONAI's order (rotation, translation, then scale);
    1 is added to the scale draws. Axes without an interval keep the identity. With `isotropic`, one factor drawn
    from the first scale interval zooms both axes (albumentations' ShiftScaleRotate), which MONAI cannot express.
    """
    rotate = [rng.uniform(low, high) for low, high in rotate_range]
    translate = [rng.uniform(low, high) for low, high in translate_range]
    scale = [1.0 + rng.uniform(low, high) for low, high in scale_range[:1 if isotropic else 2]]
    scale = scale * 2 if isotropic else scale
    return AffineParams(
        rotate=float(rotate[0]) if rotate else 0.0,
        scale=tuple(float(s) for s in [*scale, 1.0, 1.0][:2]),  # type: ignore[arg-type]
        translate=tuple(float(t) for t in [*translate, 0.0, 0.0][:2]),  # type: ignore[arg-type]
    )


def affine_matrix(spatial_shape: Sequence[int], params: AffineParams) -> np.ndarray:
    """The 2 x 3 float64 matrix mapping output pixel ``(x, y)`` to the input pixel it samples (``WARP_INVERSE_MAP``).

    MONAI's ``Affine`` samples output pixel ``o`` (in (H, W) order, centred on the image centre
    ``c = (size - 1) / 2``) at input ``R (S (o - c) + t) + c``: rotation ``R = [[cos, -sin], [sin, cos]]`` about the
    centre, scale ``S = diag(scale)`` and translation ``t``. OpenCV indexes ``(x, y) = (W, H)``, so the rows and
    columns of the linear part and the offset are swapped.

    Args:
        spatial_shape: image size ``(H, W)``.
        params: the rotation, scale and translation.
    """
    centre_h, centre_w = (spatial_shape[0] - 1) / 2.0, (spatial_shape[1] - 1) / 2.0
    cos, sin = math.cos(params.rotate), math.sin(params.rotate)
    scale_h, scale_w = params.scale
    shift_h, shift_w = params.translate
    # R S in (H, W) order, then the offset c - R S c + R t; scalar arithmetic is ~5x faster than numpy at 2 x 2
    hh, hw, wh, ww = cos * scale_h, -sin * scale_w, sin * scale_h, cos * scale_w
    offset_h = centre_h - hh * centre_h - hw * centre_w + cos * shift_h - sin * shift_w
    offset_w = centre_w - wh * centre_h - ww * centre_w + sin * shift_h + cos * shift_w
    return np.array([[ww, wh, offset_w], [hw, hh, offset_h]])


def warp_affine(
    image: np.ndarray, params: AffineParams, mode: str = "bilinear", padding_mode: str = "zeros"
) -> np.ndarray:
    """Resample a channel-first 2D image ``(C, H, W)`` as MONAI's ``Affine`` does, with ``cv2.warpAffine``.

    Each channel is warped into a preallocated output, which is faster than a channel-last copy for 1 and 3
    channels. Bilinear results equal MONAI's to float32 rounding (< 1e-4); nearest-neighbour ones may differ where an
    input coordinate is exactly half-way between pixels (torch rounds half to even, OpenCV does not).

    Args:
        image: channel-first image ``(C, H, W)``; computed in float32.
        params: the rotation, scale and translation (:class:`AffineParams`).
        mode: ``"bilinear"`` or ``"nearest"`` (:data:`INTERPOLATION_MODES`).
        padding_mode: ``"zeros"``, ``"border"`` or ``"reflection"`` (:data:`PADDING_MODES`): the values of input
            pixels outside the image.

    Returns:
        The warped float32 ``(C, H, W)`` image.

    Raises:
        ValueError: `image` is not 3-D, or `mode` or `padding_mode` is unknown.
    """
    check_modes(mode, padding_mode)
    image = np.ascontiguousarray(image, dtype=np.float32)
    if image.ndim != 3:
        raise ValueError(f"expected a channel-first 2D image (C, H, W), got shape {image.shape}.")
    height, width = image.shape[1:]
    matrix = affine_matrix((height, width), params)
    flags = INTERPOLATION_MODES[mode] | cv2.WARP_INVERSE_MAP
    out = np.empty_like(image)
    for channel, warped in zip(image, out):
        cv2.warpAffine(channel, matrix, (width, height), dst=warped, flags=flags,
                       borderMode=PADDING_MODES[padding_mode], borderValue=0)
    return out


def check_modes(mode: str, padding_mode: str) -> None:
    """Raise a ValueError naming the choices when `mode` or `padding_mode` is not one :func:`warp_affine` knows."""
    if mode not in INTERPOLATION_MODES:
        raise ValueError(f"mode must be one of {sorted(INTERPOLATION_MODES)}, got {mode!r}.")
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {sorted(PADDING_MODES)}, got {padding_mode!r}.")
