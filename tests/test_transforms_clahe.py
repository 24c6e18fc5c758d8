from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from medbundle.transforms import CLAHE, CLAHEd


def low_contrast_image(height: int = 256, width: int = 128) -> np.ndarray:
    """Dense-tissue-like texture in a narrow grey band, next to a dark background strip."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    img = 0.55 + 0.03 * np.sin(xx / 5.0) * np.cos(yy / 7.0) + rng.normal(0.0, 0.002, (height, width))
    img[:, : width // 8] = 0.0
    return img[None].astype(np.float32)


@pytest.mark.parametrize("bits", [8, 16])
def test_raises_local_contrast_and_keeps_range(bits):
    img = low_contrast_image()
    out = CLAHE(bits=bits)(img)
    assert out.shape == img.shape and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    region = (slice(None), slice(64, 192), slice(48, 112))
    assert out[region].std() > 2 * img[region].std()
    # monotone within a tile: brighter input stays brighter
    assert np.corrcoef(out[region].ravel(), img[region].ravel())[0, 1] > 0.9


def test_clip_limit_bounds_enhancement():
    img = low_contrast_image()
    region = (slice(None), slice(64, 192), slice(48, 112))
    stds = [CLAHE(clip_limit=c)(img)[region].std() for c in (1.0, 2.0, 8.0)]
    assert stds[0] < stds[1] < stds[2]


def test_input_outside_unit_range_is_clipped():
    img = low_contrast_image()
    img[0, :10] = 1.5
    img[0, -10:] = -0.5
    out = CLAHE()(img)
    assert 0.0 <= out.min() and out.max() <= 1.0


def test_channels_processed_independently():
    img = low_contrast_image()
    two = np.concatenate([img, 1.0 - img])
    out = CLAHE()(two)
    np.testing.assert_array_equal(out[:1], CLAHE()(img))
    np.testing.assert_array_equal(out[1:], CLAHE()(1.0 - img))


def test_tile_grid_is_height_width():
    img = low_contrast_image()
    out_hw = CLAHE(tile_grid_size=(8, 2))(img)
    out_cv = CLAHE(tile_grid_size=(2, 8))(img)
    assert not np.array_equal(out_hw, out_cv)
    q = np.round(img[0] * 255).astype(np.uint8)
    expected = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(2, 8)).apply(q).astype(np.float32) / 255
    np.testing.assert_array_equal(out_hw[0], expected)


def test_types():
    img = low_contrast_image()
    expected = CLAHE()(img)
    out_t = CLAHE()(torch.from_numpy(img).double())
    out_m = CLAHE()(MetaTensor(torch.from_numpy(img), meta={"k": 1}))
    assert type(out_t) is torch.Tensor and out_t.dtype == torch.float32
    assert isinstance(out_m, MetaTensor) and out_m.meta["k"] == 1
    np.testing.assert_array_equal(out_t.numpy(), expected)
    np.testing.assert_array_equal(out_m.numpy(), expected)


def test_invalid_bits():
    with pytest.raises(ValueError):
        CLAHE(bits=12)


def test_dict_two_keys_and_missing():
    img = low_contrast_image()
    out = CLAHEd(keys=["image", "other"])({"image": img, "other": img.copy(), "label": 0})
    np.testing.assert_array_equal(out["image"], CLAHE()(img))
    np.testing.assert_array_equal(out["other"], CLAHE()(img))
    assert out["label"] == 0
    with pytest.raises(KeyError):
        CLAHEd(keys=["image", "other"])({"image": img})
    out = CLAHEd(keys=["image", "other"], allow_missing_keys=True)({"image": img})
    np.testing.assert_array_equal(out["image"], CLAHE()(img))
