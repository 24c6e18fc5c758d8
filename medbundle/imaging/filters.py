"""Gaussian smoothing, Gaussian noise and grid distortion with OpenCV, with MONAI's conventions.

MONAI's ``RandGaussianSmooth``, ``RandGaussianNoise`` and ``RandGridDistortion`` cost 10-40 ms per 1 x 1024 x 512
mammogram on one CPU thread (torch convolutions, float64 noise, a torch sampling grid), enough to starve a training
loader. The functions here compute the same results with OpenCV, so that a bundle can switch without changing what
its augmentation does:

- :func:`gaussian_kernel_1d` is MONAI's ``gaussian_1d`` (``erf`` or ``sampled``, not normalised) and
  :func:`gaussian_smooth` applies it as ``monai.transforms.GaussianSmooth`` does, zero-padded, with
  ``cv2.sepFilter2D``: equal to float32 rounding;
- :func:`gaussian_noise` draws float32 normal noise with ``cv2.randn``, from a seed;
- :func:`sample_distort_steps`, :func:`distortion_coordinates` and :func:`grid_distort` are
  ``monai.transforms.GridDistortion``'s cell steps, sampling coordinates and resampling, with ``cv2.remap``:
  bilinear output equal to float32 rounding for every padding mode.

:mod:`medbundle.transforms.rand_filters` wraps them as MONAI transforms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from medbundle.imaging.affine import INTERPOLATION_MODES, PADDING_MODES, check_modes

__all__ = [
    "GAUSSIAN_APPROX",
    "check_sigma_range",
    "distortion_coordinates",
    "gaussian_kernel_1d",
    "gaussian_noise",
    "gaussian_smooth",
    "grid_distort",
    "sample_distort_steps",
]

#: The discrete Gaussian kernels of MONAI's ``gaussian_1d`` that :func:`gaussian_kernel_1d` builds.
GAUSSIAN_APPROX = ("erf", "sampled")


def gaussian_kernel_1d(sigma: float, truncated: float = 4.0, approx: str = "erf") -> np.ndarray:
    """MONAI's ``gaussian_1d(sigma, truncated, approx, normalize=False)`` as a float32 numpy array.

    The kernel has ``2 * tail + 1`` taps, ``tail = int(max(sigma * truncated, 0.5) + 0.5)``. ``"erf"`` integrates
    the Gaussian over each pixel (the taps sum to just under 1, the mass beyond the tails being dropped);
    ``"sampled"`` samples the normalised density at the pixel centres. Neither is renormalised, as in
    ``monai.networks.layers.GaussianFilter``.

    Args:
        sigma: standard deviation in pixels, positive.
        truncated: kernel half-width in standard deviations.
        approx: ``"erf"`` or ``"sampled"`` (:data:`GAUSSIAN_APPROX`).

    Raises:
        ValueError: `sigma` or `truncated` is not positive, or `approx` is unknown.
    """
    if approx not in GAUSSIAN_APPROX:
        raise ValueError(f"approx must be one of {GAUSSIAN_APPROX} (MONAI's 'scalespace' is not supported), got {approx!r}.")
    if not sigma > 0 or not truncated > 0:
        raise ValueError(f"sigma and truncated must be positive, got sigma={sigma!r}, truncated={truncated!r}.")
    sigma = float(np.float32(sigma))  # MONAI computes in float32
    tail = int(max(sigma * truncated, 0.5) + 0.5)
    if approx == "erf":
        scale = 0.70710678 / sigma
        cdf = np.array([math.erf(scale * (edge - 0.5)) for edge in range(-tail, tail + 2)])  # at the pixel edges
        kernel = np.maximum(0.5 * (cdf[1:] - cdf[:-1]), 0.0)
    else:
        taps = np.arange(-tail, tail + 1, dtype=np.float64)
        kernel = np.exp(-0.5 / (sigma * sigma) * taps**2) / (2.5066282 * sigma)
    return kernel.astype(np.float32)


def gaussian_smooth(
    image: np.ndarray, sigma: Sequence[float], truncated: float = 4.0, approx: str = "erf"
) -> np.ndarray:
    """Smooth a channel-first 2D image ``(C, H, W)`` as ``monai.transforms.GaussianSmooth(sigma, approx)`` does.

    One :func:`gaussian_kernel_1d` per axis is applied with ``cv2.sepFilter2D`` over a zero border, MONAI's
    ``separable_filtering`` padding; the result equals MONAI's to float32 rounding (< 1e-6 for images in [0, 1]).

    Args:
        image: channel-first image ``(C, H, W)``; computed in float32.
        sigma: standard deviations along (H, W) in pixels (MONAI's ``sigma_x``, ``sigma_y``).
        truncated: kernel half-width in standard deviations.
        approx: ``"erf"`` or ``"sampled"``.

    Returns:
        The smoothed float32 ``(C, H, W)`` image.

    Raises:
        ValueError: `image` is not 3-D, `sigma` does not have two entries, or a kernel argument is invalid.
    """
    image = _channel_first(image)
    if len(sigma) != 2:
        raise ValueError(f"sigma must have one entry per axis (H, W), got {sigma!r}.")
    kernel_h, kernel_w = (gaussian_kernel_1d(s, truncated, approx) for s in sigma)
    out = np.empty_like(image)
    for channel, smoothed in zip(image, out):
        cv2.sepFilter2D(channel, cv2.CV_32F, kernel_w, kernel_h, dst=smoothed, borderType=cv2.BORDER_CONSTANT)
    return out


def check_sigma_range(value: Sequence[float], name: str) -> tuple[float, float]:
    """A ``(min, max)`` range of standard deviations, as MONAI's ``RandGaussianSmooth`` takes `sigma_x`, `sigma_y`.

    Raises:
        ValueError: not two numbers, or not ``0 < min <= max``.
    """
    if hasattr(value, "tolist"):
        value = value.tolist()
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(f"{name} must be a (min, max) pair of standard deviations in pixels, got {value!r}.")
    low, high = float(value[0]), float(value[1])
    if not 0 < low <= high:
        raise ValueError(f"{name} must satisfy 0 < min <= max, got {value!r}.")
    return low, high


def gaussian_noise(shape: Sequence[int], mean: float, std: float, seed: int) -> np.ndarray:
    """Float32 normal noise of `shape` from ``cv2.randn``, reproducible for a `seed`.

    4-8x faster than numpy's float64 ``RandomState.normal`` that MONAI's ``RandGaussianNoise`` draws and converts
    (1 x 1024 x 512: 0.9 ms against 6.9 ms, one thread). It reseeds OpenCV's generator of the calling thread.

    Args:
        shape: the noise's shape, at least 2-D.
        mean: mean of the noise.
        std: standard deviation of the noise, not negative.
        seed: seed of OpenCV's generator, in ``[0, 2**31)``.
    """
    noise = np.empty(shape, dtype=np.float32)
    cv2.setRNGSeed(int(seed))
    cv2.randn(noise.reshape(-1, noise.shape[-1]), float(mean), float(std))
    return noise


def sample_distort_steps(
    rng: np.random.RandomState, num_cells: Sequence[int], distort_limit: tuple[float, float]
) -> tuple[tuple[float, ...], ...]:
    """Draw the per-cell steps of each axis as ``monai.transforms.RandGridDistortion.randomize`` does.

    Axis ``a`` gets ``num_cells[a] + 1`` steps ``1 + uniform(*distort_limit)``, in one ``rng.uniform`` call per axis.
    """
    return tuple(
        tuple(float(s) for s in 1.0 + rng.uniform(low=distort_limit[0], high=distort_limit[1], size=cells + 1))
        for cells in num_cells
    )


def distortion_coordinates(size: int, num_cells: int, steps: Sequence[float]) -> np.ndarray:
    """The input coordinates, along one axis of `size` pixels, that ``GridDistortion`` samples (float32, uncentred).

    As MONAI: the axis is cut into `num_cells` cells of ``size // num_cells`` pixels; cell ``i`` spans
    ``cell_size * steps[i]`` input pixels, its coordinates linearly spaced from where the last cell ended, and the
    remainder (from the last full cell to the edge) runs to ``size``.

    Raises:
        ValueError: `steps` has fewer than ``num_cells + 1`` entries, or a cell would be empty.
    """
    if len(steps) < num_cells + 1:
        raise ValueError(f"need num_cells + 1 = {num_cells + 1} distort steps, got {len(steps)}: {steps!r}.")
    cell_size = size // num_cells
    if cell_size < 1:
        raise ValueError(f"num_cells={num_cells} is more than the {size} pixels of the axis.")
    coords = np.zeros(size, dtype=np.float32)
    prev = 0.0
    for idx in range(num_cells + 1):
        start, end = idx * cell_size, (idx + 1) * cell_size
        if end > size:
            end, cur = size, float(size)
        else:
            cur = prev + cell_size * steps[idx]
        if end > start:  # torch.linspace in float32, as MONAI
            coords[start:end] = _linspace_float32(prev, cur, end - start)
        prev = cur
    return coords


def grid_distort(
    image: np.ndarray,
    num_cells: Sequence[int],
    distort_steps: Sequence[Sequence[float]],
    mode: str = "bilinear",
    padding_mode: str = "border",
) -> np.ndarray:
    """Distort a channel-first 2D image ``(C, H, W)`` as ``monai.transforms.GridDistortion`` does, with ``cv2.remap``.

    Output pixel ``(i, j)`` samples the input at ``(coords_h[i], coords_w[j])`` of :func:`distortion_coordinates`;
    bilinear results equal MONAI's to float32 rounding for every padding mode.

    Args:
        image: channel-first image ``(C, H, W)``; computed in float32.
        num_cells: cells along (H, W).
        distort_steps: ``num_cells + 1`` steps per axis (H, W), e.g. from :func:`sample_distort_steps`.
        mode: ``"bilinear"`` or ``"nearest"``.
        padding_mode: ``"zeros"``, ``"border"`` or ``"reflection"``.

    Returns:
        The distorted float32 ``(C, H, W)`` image.

    Raises:
        ValueError: `image` is not 3-D, a mode is unknown, or the steps do not fit the cells.
    """
    check_modes(mode, padding_mode)
    image = _channel_first(image)
    height, width = image.shape[1:]
    coords_h = distortion_coordinates(height, num_cells[0], distort_steps[0])
    coords_w = distortion_coordinates(width, num_cells[1], distort_steps[1])
    map_x = np.broadcast_to(coords_w, (height, width))
    map_y = np.broadcast_to(coords_h[:, None], (height, width))
    map_x, map_y = np.ascontiguousarray(map_x), np.ascontiguousarray(map_y)
    out = np.empty_like(image)
    for channel, warped in zip(image, out):
        cv2.remap(channel, map_x, map_y, INTERPOLATION_MODES[mode], dst=warped,
                  borderMode=PADDING_MODES[padding_mode], borderValue=0)
    return out


def _linspace_float32(start: float, stop: float, num: int) -> np.ndarray:
    """``torch.linspace(start, stop, num)`` on the CPU, bit for bit: float32 ends and step, fused multiply-adds
    (emulated in float64, where the product of two float32 is exact), from the start for the first half and from
    the stop for the second."""
    if num == 1:
        return np.array([start], dtype=np.float32)
    start32, stop32 = np.float32(start), np.float32(stop)
    step = np.float64((stop32 - start32) / np.float32(num - 1))
    idx = np.arange(num, dtype=np.float64)
    values = np.where(idx < num // 2, np.float64(start32) + step * idx, np.float64(stop32) - step * (num - 1 - idx))
    return values.astype(np.float32)


def _channel_first(image: np.ndarray) -> np.ndarray:
    image = np.ascontiguousarray(image, dtype=np.float32)
    if image.ndim != 3:
        raise ValueError(f"expected a channel-first 2D image (C, H, W), got shape {image.shape}.")
    return image
