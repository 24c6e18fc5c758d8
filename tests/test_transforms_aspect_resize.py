from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose

from medbundle.transforms import (
    CLAHE,
    AspectResizePad,
    AspectResizePadd,
    BreastCrop,
    BreastCropd,
    CanonicalFlip,
    CanonicalFlipd,
    CLAHEd,
)

SIZE = (128, 64)


def content_box(img: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(img[0] > 0)
    return ys.min(), ys.max() + 1, xs.min(), xs.max() + 1


@pytest.mark.parametrize(
    "shape", [(1, 3000, 1000), (1, 1000, 3000), (1, 128, 64), (1, 100, 30), (1, 40, 70), (2, 300, 150)]
)
def test_shape_exact_and_aspect_kept(shape):
    img = np.full(shape, 0.5, np.float32)
    out = AspectResizePad(SIZE)(img)
    assert out.shape == (shape[0], *SIZE) and out.dtype == np.float32
    y0, y1, x0, x1 = content_box(out)
    assert (y1 - y0 == SIZE[0]) or (x1 - x0 == SIZE[1])  # fills the target along one axis
    np.testing.assert_allclose((y1 - y0) / (x1 - x0), shape[1] / shape[2], rtol=0.05)
    np.testing.assert_allclose(out[:, y0:y1, x0:x1], 0.5, atol=1e-6)
    assert np.count_nonzero(out) == shape[0] * (y1 - y0) * (x1 - x0)  # the rest is zero padding


def test_default_pad_position_left_aligned_and_vertically_centred():
    tall = AspectResizePad(SIZE)(np.ones((1, 300, 50), np.float32))
    y0, y1, x0, x1 = content_box(tall)
    assert (y0, y1, x0) == (0, 128, 0) and x1 < SIZE[1]  # padding on the right only
    wide = AspectResizePad(SIZE)(np.ones((1, 100, 200), np.float32))
    y0, y1, x0, x1 = content_box(wide)
    assert (x0, x1) == (0, 64) and y0 == SIZE[0] - y1 and y0 > 0  # centred vertically


@pytest.mark.parametrize("position, expected_x0", [("start", 64 - 21), ("center", 21), ("end", 0)])
def test_pad_position(position, expected_x0):
    out = AspectResizePad(SIZE, pad_position=("center", position))(np.ones((1, 300, 50), np.float32))
    assert content_box(out)[2] == expected_x0


def test_padding_mode():
    img = np.ones((1, 300, 50), np.float32)
    np.testing.assert_allclose(AspectResizePad(SIZE, padding_mode="edge")(img), 1.0, atol=1e-6)
    assert AspectResizePad(SIZE)(img).min() == 0.0
    with pytest.raises(ValueError):
        AspectResizePad(SIZE, pad_position="left")


def test_shrinking_is_area_averaged():
    noise = np.random.default_rng(0).random((1, 1024, 512), dtype=np.float32)
    out = AspectResizePad(SIZE)(noise)  # 8x smaller: each output pixel averages 64 inputs
    np.testing.assert_allclose(out.mean(), 0.5, atol=0.01)
    assert out.std() < 0.06  # 0.29 / 8 for a box filter; point or bilinear sampling keeps ~0.2


def test_enlarging_is_smooth_and_in_range():
    img = np.zeros((1, 4, 2), np.float32)
    img[0, :2] = 1.0
    out = AspectResizePad(SIZE)(img)
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert 0.1 < out[0, 64, 10] < 0.9  # interpolated across the edge, not nearest neighbour


def test_types_and_affine():
    rng = np.random.default_rng(0)
    img = rng.random((1, 500, 300)).astype(np.float32)
    affine = torch.diag(torch.tensor([0.1, 0.1, 1.0, 1.0], dtype=torch.float64))
    out_np = AspectResizePad(SIZE)(img)
    out_t = AspectResizePad(SIZE)(torch.from_numpy(img))
    out_m = AspectResizePad(SIZE)(MetaTensor(torch.from_numpy(img), affine=affine.clone(), meta={"k": 1}))
    assert type(out_t) is torch.Tensor and isinstance(out_m, MetaTensor) and out_m.meta["k"] == 1
    np.testing.assert_array_equal(out_np, out_t.numpy())
    np.testing.assert_array_equal(out_np, out_m.numpy())
    # the outer pixel edges of the resized region are those of the input image, in world coordinates
    y0, y1, x0, x1 = content_box(AspectResizePad(SIZE)(np.ones_like(img)))
    assert (x0, x1) == (0, 64) and y0 > 0  # 500 x 300 is wider than 128 x 64: padded along H
    for out_idx, in_idx in [((y0 - 0.5, x0 - 0.5), (-0.5, -0.5)), ((y1 - 0.5, x1 - 0.5), (499.5, 299.5))]:
        got = out_m.affine @ torch.tensor([*out_idx, 0.0, 1.0], dtype=torch.float64)
        expected = affine @ torch.tensor([*in_idx, 0.0, 1.0], dtype=torch.float64)
        torch.testing.assert_close(got, expected)


def test_dict_two_keys_and_missing():
    img = np.ones((1, 300, 50), np.float32)
    mask = np.ones((1, 300, 50), np.float32)
    out = AspectResizePadd(keys=["image", "mask"], spatial_size=SIZE)({"image": img, "mask": mask})
    assert out["image"].shape == out["mask"].shape == (1, *SIZE)
    with pytest.raises(KeyError):
        AspectResizePadd(keys=["image", "mask"], spatial_size=SIZE)({"image": img})
    out = AspectResizePadd(keys=["image", "mask"], spatial_size=SIZE, allow_missing_keys=True)({"image": img})
    assert out["image"].shape == (1, *SIZE) and "mask" not in out


def synthetic_right_mammogram(height: int = 3000, width: int = 2400) -> np.ndarray:
    """Breast against the right edge plus a burned-in label in the top-left corner."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    inside = ((yy - height / 2) / (0.35 * height)) ** 2 + ((width - xx) / (0.45 * width)) ** 2 <= 1.0
    img = np.where(inside, 0.3 + 0.05 * np.sin(xx / 40.0) * np.sin(yy / 40.0), 0.0).astype(np.float32)
    img[100:200, 100:500] = 1.0
    return img[None]


def test_mammography_chain_under_compose():
    img = synthetic_right_mammogram()
    chain = Compose([BreastCrop(), CanonicalFlip(), AspectResizePad((512, 256)), CLAHE()])
    out = chain(img)
    assert isinstance(out, np.ndarray) and out.shape == (1, 512, 256) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    # CLAHE lifts the zero background slightly, so find the breast above that
    y0, y1, x0, x1 = content_box(out - 0.05)
    assert x0 == 0 and x1 >= 250  # chest wall against the left edge, breast fills W
    assert abs(y0 - (512 - y1)) <= 2  # padded symmetrically along H
    assert out[..., :128].sum() > 1.2 * out[..., 128:].sum()  # the heavy (chest wall) side is left

    meta = MetaTensor(torch.from_numpy(np.concatenate([img, img])))
    out_d = Compose(
        [
            BreastCropd(keys=["image", "mask"]),
            CanonicalFlipd(keys=["image", "mask"]),
            AspectResizePadd(keys=["image", "mask"], spatial_size=(512, 256)),
            CLAHEd(keys="image"),
        ]
    )({"image": meta[:1], "mask": (meta[1:] > 0).float()})
    assert isinstance(out_d["image"], MetaTensor) and out_d["image"].shape == (1, 512, 256)
    np.testing.assert_allclose(out_d["image"].numpy(), out, atol=1e-6)
    assert out_d["mask"].shape == (1, 512, 256)
