"""Tests for medbundle.imaging.affine: OpenCV's warpAffine with MONAI's RandAffine parameters and conventions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.transforms import Affine, RandAffineGrid

from medbundle.imaging.affine import (
    AffineParams,
    affine_matrix,
    check_range,
    sample_affine_params,
    warp_affine,
)

PARAMS = {
    "identity": AffineParams(),
    "rotation": AffineParams(rotate=0.4),
    "negative rotation": AffineParams(rotate=-0.26),
    "scale": AffineParams(scale=(1.15, 0.85)),
    "translation": AffineParams(translate=(3.7, -5.2)),
    "combined": AffineParams(rotate=-0.5, scale=(0.9, 1.1), translate=(-4.3, 2.6)),
}


def smooth_image(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Sums of random plane waves in [0, 1]: smooth like a resized radiograph, different along H and W."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0 : shape[1], 0 : shape[2]]
    image = np.full(shape, 0.5, dtype=np.float32)
    for channel in image:
        for _ in range(4):
            fy, fx, phase = rng.uniform(-0.2, 0.2), rng.uniform(-0.2, 0.2), rng.uniform(0, 2 * np.pi)
            channel += 0.12 * np.sin(fy * rows + fx * cols + phase)
    return image


def monai_affine(image: np.ndarray, params: AffineParams, mode: str = "bilinear", padding_mode: str = "zeros"):
    affine = Affine(rotate_params=params.rotate, scale_params=params.scale, translate_params=params.translate,
                    mode=mode, padding_mode=padding_mode, image_only=True)
    return affine(torch.from_numpy(image)).numpy()


@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("name", list(PARAMS))
@pytest.mark.parametrize("shape", [(1, 64, 48), (3, 40, 40)])
@pytest.mark.parametrize("image", [smooth_image, lambda shape: np.random.default_rng(1).random(shape, np.float32)],
                         ids=["smooth", "noise"])
def test_bilinear_warp_equals_monai_affine(image, shape, name, padding_mode):
    """Same direction conventions, centre and padding as MONAI, to float32 rounding (measured: max 6e-6 on smooth images,
    < 2e-5 on noise; 5e-5 at 224 x 224, where MONAI's float32 grid coordinates are larger)."""
    img = image(shape)
    ours = warp_affine(img, PARAMS[name], padding_mode=padding_mode)
    expected = monai_affine(img, PARAMS[name], padding_mode=padding_mode)
    assert ours.shape == img.shape and ours.dtype == np.float32
    assert np.abs(ours - expected).max() < 2e-5
    assert np.abs(ours - expected).mean() < 1e-6


def test_reflection_mirrors_about_the_pixel_edge():
    """grid_sample's reflection (align_corners=False) repeats the edge pixel (cv2.BORDER_REFLECT, ``cba|abc``)."""
    row = np.arange(8, dtype=np.float32)[None, None].repeat(4, axis=1)
    shifted = warp_affine(row, AffineParams(translate=(0.0, -2.0)), padding_mode="reflection")
    np.testing.assert_allclose(shifted[0, 0], [1, 0, 0, 1, 2, 3, 4, 5], atol=1e-5)


@pytest.mark.parametrize("name", ["rotation", "scale", "combined"])
def test_nearest_warp_equals_monai_affine(name):
    """Nearest-neighbour agrees except at exact half-pixel ties, which these parameters do not produce."""
    img = np.random.default_rng(2).random((3, 40, 40), np.float32)
    np.testing.assert_array_equal(
        warp_affine(img, PARAMS[name], mode="nearest"), monai_affine(img, PARAMS[name], mode="nearest")
    )


def test_directions():
    """A positive shift samples further down/right (content moves up/left); scale 2 halves the content."""
    img = np.zeros((1, 41, 41), np.float32)
    img[0, 24, 30] = 1.0
    moved = warp_affine(img, AffineParams(translate=(5.0, 10.0)), mode="nearest")
    assert np.argwhere(moved[0]).tolist() == [[19, 20]]
    zoomed_out = warp_affine(img, AffineParams(scale=(2.0, 2.0)), mode="nearest")
    assert np.argwhere(zoomed_out[0]).tolist() == [[22, 25]]  # the centre is (20, 20)


def test_affine_matrix_maps_output_to_input_pixels_in_opencv_order():
    matrix = affine_matrix((11, 21), AffineParams(translate=(2.0, 3.0)))
    np.testing.assert_allclose(matrix, [[1, 0, 3], [0, 1, 2]])
    rotated = affine_matrix((11, 21), AffineParams(rotate=np.pi / 2))
    centre_xy = np.array([10.0, 5.0, 1.0])
    np.testing.assert_allclose(rotated @ centre_xy, centre_xy[:2], atol=1e-12)


@pytest.mark.parametrize(
    ("rotate_range", "scale_range", "translate_range"),
    [(0.26, 0.1, [51, 25]), (None, [0.1, 0.2], 7), ([(0.1, 0.3)], [(-0.2, 0.0), 0.1], [(-2, 2), (5, 9)])],
)
def test_draws_equal_monai_rand_affine_grid(rotate_range, scale_range, translate_range):
    """MONAI's range semantics: a single number covers the first axis (H) only, e.g. scale_range=0.1 stretches H."""
    grid = RandAffineGrid(rotate_range=rotate_range, scale_range=scale_range, translate_range=translate_range)
    grid.set_random_state(3)
    ranges = (
        check_range(rotate_range, "rotate_range", 1),
        check_range(scale_range, "scale_range", 2),
        check_range(translate_range, "translate_range", 2),
    )
    rng = np.random.RandomState(3)
    for _ in range(5):
        grid.randomize()
        params = sample_affine_params(rng, *ranges)
        assert params.rotate == pytest.approx((grid.rotate_params or [0.0])[0])
        assert params.scale == pytest.approx((grid.scale_params + [1.0, 1.0])[:2])
        assert params.translate == pytest.approx((grid.translate_params + [0.0, 0.0])[:2])


def test_check_range():
    assert check_range(None, "r", 1) == ()
    assert check_range(0.1, "s", 2) == ((-0.1, 0.1),)
    assert check_range(np.array([2, 3]), "t", 2) == ((-2.0, 2.0), (-3.0, 3.0))
    assert check_range([(0.1, 0.3)], "r", 1) == ((0.1, 0.3),)
    with pytest.raises(ValueError, match=r"rotate_range has 2 entries.*\[\[0.1, 0.3\]\]"):
        check_range([0.1, 0.3], "rotate_range", 1)
    with pytest.raises(ValueError, match="use 0 for an axis"):
        check_range([None, 5], "translate_range", 2)
    with pytest.raises(ValueError, match=r"\(min, max\) pairs"):
        check_range([(1, 2, 3)], "scale_range", 2)


def test_warp_converts_to_float32_and_rejects_bad_input():
    img = (smooth_image((1, 16, 16)) * 255).astype(np.uint8)
    out = warp_affine(img, AffineParams())
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, img.astype(np.float32))
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        warp_affine(img[0], AffineParams())
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        warp_affine(img, AffineParams(), padding_mode="reflect")
    with pytest.raises(ValueError, match="mode must be one of"):
        warp_affine(img, AffineParams(), mode="bicubic")
