from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from medbundle.transforms import CanonicalFlip, CanonicalFlipd


def left_breast(height: int = 64, width: int = 48) -> np.ndarray:
    """Bright half-disc against the left edge of a dark image, with a dim label on the right."""
    yy, xx = np.mgrid[0:height, 0:width]
    img = np.where((yy - height / 2) ** 2 + xx**2 <= (0.7 * width) ** 2, 0.5 + 0.001 * yy, 0.0)
    img[2:6, width - 10 : width - 2] = 1.0
    return img[None].astype(np.float32)


def test_right_breast_is_flipped_to_the_left():
    right = np.ascontiguousarray(left_breast()[..., ::-1])
    flipper = CanonicalFlip()
    assert flipper.needs_flip(right)
    out = flipper(right)
    np.testing.assert_array_equal(out, left_breast())
    half = out.shape[-1] // 2
    assert out[..., :half].sum() > out[..., half:].sum()


def test_left_breast_untouched():
    img = left_breast()
    assert not CanonicalFlip().needs_flip(img)
    assert CanonicalFlip()(img) is img


def test_blank_image_untouched():
    img = np.zeros((1, 16, 16), np.float32)
    assert CanonicalFlip()(img) is img


def test_odd_width_ignores_centre_column():
    img = np.zeros((1, 4, 5), np.float32)
    img[0, :, 2] = 1.0  # the bright centre column counts for neither half
    img[0, 0, 1] = 0.1
    assert not CanonicalFlip().needs_flip(img)
    assert CanonicalFlip().needs_flip(img[..., ::-1].copy())


def test_types_and_affine():
    right = np.ascontiguousarray(left_breast()[..., ::-1])
    width = right.shape[-1]
    affine = torch.diag(torch.tensor([0.5, 0.25, 1.0, 1.0], dtype=torch.float64))
    meta = MetaTensor(torch.from_numpy(right.copy()), affine=affine.clone(), meta={"view": "CC"})
    out_t = CanonicalFlip()(torch.from_numpy(right.copy()))
    out_m = CanonicalFlip()(meta)
    assert type(out_t) is torch.Tensor and out_t.is_contiguous()
    assert isinstance(out_m, MetaTensor) and out_m.meta["view"] == "CC"
    np.testing.assert_array_equal(out_t.numpy(), left_breast())
    np.testing.assert_array_equal(out_m.numpy(), left_breast())
    # output column j shows input column W - 1 - j, at the same world position
    expected = affine @ torch.tensor([7.0, width - 1 - 3.0, 0.0, 1.0], dtype=torch.float64)
    got = out_m.affine @ torch.tensor([7.0, 3.0, 0.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(got, expected)


def test_dict_decision_from_source_applied_to_all_keys():
    right = np.ascontiguousarray(left_breast()[..., ::-1])
    mask = np.zeros_like(right)
    mask[0, 10:20, 2:8] = 1.0  # on the left: would not be flipped on its own
    out = CanonicalFlipd(keys=["image", "mask"])({"image": right, "mask": mask})
    np.testing.assert_array_equal(out["image"], left_breast())
    np.testing.assert_array_equal(out["mask"], mask[..., ::-1])
    # the decision comes from the source key, whatever the key order
    out = CanonicalFlipd(keys=["mask", "image"], source_key="image")({"image": right, "mask": mask})
    np.testing.assert_array_equal(out["mask"], mask[..., ::-1])
    out = CanonicalFlipd(keys=["mask", "image"])({"image": right, "mask": mask})
    assert out["mask"] is mask and out["image"] is right


def test_dict_missing_keys():
    right = np.ascontiguousarray(left_breast()[..., ::-1])
    with pytest.raises(KeyError):
        CanonicalFlipd(keys=["image", "mask"])({"image": right})
    out = CanonicalFlipd(keys=["mask", "image"], allow_missing_keys=True)({"image": right})
    np.testing.assert_array_equal(out["image"], left_breast())
    with pytest.raises(KeyError):
        CanonicalFlipd(keys="image", source_key="other")({"image": right})
