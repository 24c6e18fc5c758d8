"""Tests for medbundle.imaging.filters: MONAI's Gaussian smoothing, Gaussian noise and grid distortion with OpenCV."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.networks.layers.convutils import gaussian_1d
from monai.transforms import GaussianSmooth, GridDistortion

from medbundle.imaging.filters import (
    _linspace_float32,
    distortion_coordinates,
    gaussian_kernel_1d,
    gaussian_noise,
    gaussian_smooth,
    grid_distort,
    sample_distort_steps,
)

SHAPES = [(1, 64, 48), (3, 40, 40), (1, 37, 29)]


def random_image(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


@pytest.mark.parametrize("approx", ["erf", "sampled"])
@pytest.mark.parametrize("sigma", [0.25, 0.5, 0.77, 1.0, 1.5, 2.3])
def test_kernel_is_monai_gaussian_1d(sigma, approx):
    expected = gaussian_1d(torch.tensor(sigma), truncated=4.0, approx=approx, normalize=False).numpy()
    kernel = gaussian_kernel_1d(sigma, approx=approx)
    assert kernel.dtype == np.float32 and kernel.shape == expected.shape
    np.testing.assert_allclose(kernel, expected, atol=1e-7, rtol=0)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("sigma", [(0.5, 1.5), (1.0, 0.7), (1.5, 1.5), (0.25, 3.0)])
def test_smooth_is_monai_gaussian_smooth(shape, sigma):
    img = random_image(shape)
    expected = GaussianSmooth(sigma=sigma)(torch.from_numpy(img)).numpy()
    out = gaussian_smooth(img, sigma)
    assert out.dtype == np.float32 and out.shape == shape
    assert np.abs(out - expected).max() <= 1e-5  # measured 2.4e-7


def test_smooth_pads_with_zeros_as_monai():
    ones = np.ones((1, 20, 20), dtype=np.float32)
    out = gaussian_smooth(ones, (1.0, 1.0))
    assert out[0, 0, 0] < 0.5 and abs(out[0, 10, 10] - 1.0) < 1e-3  # the corners darken
    np.testing.assert_allclose(out, GaussianSmooth(sigma=1.0)(torch.from_numpy(ones)).numpy(), atol=1e-6)


def test_noise_is_reproducible_float32_normal():
    noise = gaussian_noise((2, 512, 256), mean=0.1, std=0.02, seed=3)
    assert noise.dtype == np.float32 and noise.shape == (2, 512, 256)
    np.testing.assert_array_equal(noise, gaussian_noise((2, 512, 256), 0.1, 0.02, seed=3))
    assert not np.array_equal(noise, gaussian_noise((2, 512, 256), 0.1, 0.02, seed=4))
    assert abs(noise.mean() - 0.1) < 2e-4 and abs(noise.std() - 0.02) < 2e-4
    standard = (noise - 0.1) / 0.02
    assert abs(np.mean(standard**4) - 3.0) < 0.05  # normal kurtosis
    assert abs(np.mean(np.abs(standard) > 2) - 0.0455) < 0.003


def test_distort_steps_are_drawn_as_monai_draws_them():
    rng, reference = np.random.RandomState(0), np.random.RandomState(0)
    steps = sample_distort_steps(rng, (5, 3), (-0.1, 0.1))
    assert [len(s) for s in steps] == [6, 4]
    np.testing.assert_array_equal(steps[0], 1.0 + reference.uniform(-0.1, 0.1, size=6))
    np.testing.assert_array_equal(steps[1], 1.0 + reference.uniform(-0.1, 0.1, size=4))


@pytest.mark.parametrize("num", [1, 2, 3, 7, 102, 205, 1024])
def test_linspace_is_torch_linspace_bit_for_bit(num):
    rng = np.random.default_rng(num)
    for _ in range(10):
        start = rng.uniform(0, 900)
        stop = start + rng.uniform(0, 300)
        np.testing.assert_array_equal(_linspace_float32(start, stop, num), torch.linspace(start, stop, num).numpy())


def test_coordinates_run_from_zero_to_the_far_edge_as_monai():
    """MONAI's cells overlap by one sample (linspace includes both ends) and the remainder runs to `size`."""
    coords = distortion_coordinates(42, 5, [1.0] * 6)
    assert coords[0] == 0 and coords[-1] == 42 and np.all(np.diff(coords) >= 0)
    np.testing.assert_allclose(coords[:9], [*np.linspace(0, 8, 8), 8.0], atol=1e-6)


@pytest.mark.parametrize("padding_mode", ["border", "zeros", "reflection"])
@pytest.mark.parametrize("shape", SHAPES)
def test_grid_distort_is_monai_grid_distortion(shape, padding_mode):
    img = random_image(shape)
    rng = np.random.RandomState(1)
    for num_cells in [(5, 5), (4, 3)]:
        steps = sample_distort_steps(rng, num_cells, (-0.3, 0.3))
        expected = GridDistortion(num_cells=num_cells, distort_steps=steps, padding_mode=padding_mode)(
            torch.from_numpy(img)
        ).numpy()
        out = grid_distort(img, num_cells, steps, padding_mode=padding_mode)
        assert out.dtype == np.float32 and out.shape == shape
        assert np.abs(out - expected).max() <= 1e-5  # measured < 1e-6 here; 2e-5 at 1024 x 512 (grid_sample rounding)


def test_bad_arguments_are_rejected():
    img = random_image((1, 20, 20))
    with pytest.raises(ValueError, match="approx must be one of"):
        gaussian_kernel_1d(1.0, approx="scalespace")
    with pytest.raises(ValueError, match="sigma and truncated must be positive"):
        gaussian_kernel_1d(0.0)
    with pytest.raises(ValueError, match="one entry per axis"):
        gaussian_smooth(img, (1.0,))
    with pytest.raises(ValueError, match="channel-first"):
        gaussian_smooth(img[0], (1.0, 1.0))
    with pytest.raises(ValueError, match="need num_cells \\+ 1 = 6"):
        grid_distort(img, (5, 5), ((1.0,) * 5, (1.0,) * 6))
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        grid_distort(img, (5, 5), ((1.0,) * 6,) * 2, padding_mode="reflect")
