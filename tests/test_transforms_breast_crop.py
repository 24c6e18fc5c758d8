from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from medbundle.transforms import BreastCrop, BreastCropd

H, W = 1200, 960
BREAST = (200, 1000, 0, 420)  # y0, y1, x0, x1 (end-exclusive) of the half-ellipse
LABEL = (60, 110, 760, 900)  # burned-in text block in the far (top-right) corner
MARGIN = 16
# the mask is found on a copy downscaled to 512 px, so the box may be off by one working pixel
TOL = int(np.ceil(max(H, W) / 512))


def synthetic_mammogram(label: bool = True, bridge: bool = False) -> np.ndarray:
    """Half-ellipse breast against the left edge, optional label and thin line joining them."""
    yy, xx = np.mgrid[0:H, 0:W]
    cy, ry = (BREAST[0] + BREAST[1]) / 2, (BREAST[1] - BREAST[0]) / 2
    rx = BREAST[3]
    inside = ((yy + 0.5 - cy) / ry) ** 2 + ((xx + 0.5) / rx) ** 2 <= 1.0
    img = np.where(inside, 0.45 + 0.1 * np.sin(xx / 15.0) * np.cos(yy / 23.0), 0.0)
    if label:
        img[LABEL[0] : LABEL[1], LABEL[2] : LABEL[3]] = 1.0
    if bridge:  # 4 px wide L-shaped line from inside the breast to the label
        img[LABEL[1] - 4 : LABEL[1], 200 : LABEL[2]] = 1.0
        img[LABEL[1] - 4 : 400, 200:204] = 1.0
    return img[None].astype(np.float32)


def content_box(img: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(img[0] > 0)
    return ys.min(), ys.max() + 1, xs.min(), xs.max() + 1


def assert_tight(box, target, margin=MARGIN, width=W):
    y0, y1, x0, x1 = box
    t0, t1, s0, s1 = target
    assert t0 - margin - TOL <= y0 <= t0 - margin + TOL
    assert t1 + margin - TOL <= y1 <= t1 + margin + TOL
    assert max(0, s0 - margin - TOL) <= x0 <= max(0, s0 - margin + TOL)
    assert min(width, s1 + margin - TOL) <= x1 <= min(width, s1 + margin + TOL)


def test_box_contains_breast_excludes_label_and_is_tight():
    img = synthetic_mammogram()
    box = BreastCrop(margin=MARGIN).compute_bounding_box(img)
    assert box is not None
    y0, y1, x0, x1 = box
    assert y0 <= BREAST[0] and y1 >= BREAST[1] and x0 <= BREAST[2] and x1 >= BREAST[3]
    assert x1 <= LABEL[2] or y1 <= LABEL[0] or y0 >= LABEL[1]  # no overlap with the label
    assert_tight(box, BREAST)

    out = BreastCrop(margin=MARGIN)(img)
    assert out.shape == (1, y1 - y0, x1 - x0)
    np.testing.assert_array_equal(out, img[:, y0:y1, x0:x1])
    assert out.max() < 1.0  # label pixels are all 1.0, breast pixels below 0.56


def test_margin_is_applied():
    img = synthetic_mammogram()
    assert_tight(BreastCrop(margin=0).compute_bounding_box(img), BREAST, margin=0)
    assert_tight(BreastCrop(margin=40).compute_bounding_box(img), BREAST, margin=40)


def test_breast_on_right_side():
    img = np.ascontiguousarray(synthetic_mammogram()[..., ::-1])
    mirrored = (BREAST[0], BREAST[1], W - BREAST[3], W - BREAST[2])
    assert_tight(BreastCrop(margin=MARGIN).compute_bounding_box(img), mirrored)


def test_opening_detaches_label_joined_by_thin_line():
    img = synthetic_mammogram(bridge=True)
    without_opening = BreastCrop(margin=MARGIN, opening_size=0).compute_bounding_box(img)
    assert without_opening[0] <= LABEL[0] and without_opening[3] >= LABEL[3]  # label swallowed
    assert_tight(BreastCrop(margin=MARGIN).compute_bounding_box(img), BREAST)


@pytest.mark.parametrize("noise", [0.0, 0.01])
def test_blank_image_unchanged(noise):
    img = np.abs(np.random.default_rng(0).normal(0.0, noise, (1, H, W))).astype(np.float32)
    cropper = BreastCrop()
    assert cropper.compute_bounding_box(img) is None
    assert cropper(img) is img


def test_faint_background_below_floor_unchanged():
    # detector non-uniformity: Otsu alone would split this gradient and crop half the image
    img = np.broadcast_to(np.linspace(0.0, 0.04, W, dtype=np.float32), (1, H, W)).copy()
    assert BreastCrop(min_threshold=0.0).compute_bounding_box(img) is not None
    assert BreastCrop()(img) is img


def test_numpy_torch_metatensor_agree():
    img = synthetic_mammogram()
    affine = torch.diag(torch.tensor([0.1, 0.2, 1.0, 1.0], dtype=torch.float64))
    meta = MetaTensor(torch.from_numpy(img.copy()), affine=affine.clone(), meta={"patient_id": "p1"})
    cropper = BreastCrop()
    out_np = cropper(img)
    out_t = cropper(torch.from_numpy(img.copy()))
    out_m = cropper(meta)
    assert isinstance(out_np, np.ndarray) and out_np.flags["C_CONTIGUOUS"]
    assert type(out_t) is torch.Tensor
    assert isinstance(out_m, MetaTensor) and out_m.meta["patient_id"] == "p1"
    np.testing.assert_array_equal(out_np, out_t.numpy())
    np.testing.assert_array_equal(out_np, out_m.numpy())
    # world position of an output pixel is the one of the input pixel it came from
    y0, _, x0, _ = cropper.compute_bounding_box(img)
    expected = affine @ torch.tensor([y0 + 3.0, x0 + 5.0, 0.0, 1.0], dtype=torch.float64)
    got = out_m.affine @ torch.tensor([3.0, 5.0, 0.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(meta.affine, affine)  # input untouched


def test_multichannel_uses_channel_mean():
    img = np.concatenate([synthetic_mammogram()] * 3)
    out = BreastCrop()(img)
    assert out.shape[0] == 3
    np.testing.assert_array_equal(out[0], BreastCrop()(img[:1])[0])


def test_dict_crops_all_keys_with_source_box():
    img = synthetic_mammogram()
    mask = np.zeros_like(img)
    mask[0, 500:600, 100:200] = 1.0
    y0, y1, x0, x1 = BreastCrop().compute_bounding_box(img)
    out = BreastCropd(keys=["image", "mask"])({"image": img, "mask": mask, "label": 1})
    np.testing.assert_array_equal(out["image"], img[:, y0:y1, x0:x1])
    np.testing.assert_array_equal(out["mask"], mask[:, y0:y1, x0:x1])
    assert out["label"] == 1
    # an explicit source key takes precedence over the key order
    out = BreastCropd(keys=["mask", "image"], source_key="image")({"image": img, "mask": mask})
    np.testing.assert_array_equal(out["mask"], mask[:, y0:y1, x0:x1])


def test_dict_missing_keys():
    img = synthetic_mammogram()
    with pytest.raises(KeyError):
        BreastCropd(keys=["image", "mask"])({"image": img})
    out = BreastCropd(keys=["mask", "image"], allow_missing_keys=True)({"image": img})
    assert out["image"].shape == BreastCrop()(img).shape
    assert BreastCropd(keys="image", source_key="other", allow_missing_keys=True)({"image": img})["image"] is img
    with pytest.raises(KeyError):
        BreastCropd(keys="image", source_key="other")({"image": img})
