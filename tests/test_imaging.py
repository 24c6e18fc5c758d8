"""Tests for medbundle.imaging: torch-free preprocessing cores shared by the MONAI transforms and medbundle.deploy."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from medbundle.imaging import (
    BreastCropper,
    ImageReadError,
    apply_clahe,
    aspect_resize_pad,
    flip_to_left,
    resize_area,
)
from medbundle.imaging.breast_crop import BreastLocation, source_scale
from medbundle.imaging.pairs import as_pair
from medbundle.imaging.resize import adaptive_average_matrix
from medbundle.io.image_file import read_grayscale
from medbundle.transforms import CLAHE, AspectResizePad, BreastCrop, CanonicalFlip


def test_importing_imaging_and_the_torch_free_io_modules_imports_no_torch():
    code = (
        "import sys, medbundle, medbundle.imaging, medbundle.io, medbundle.io.dicom, medbundle.io.hdf5\n"
        "bad = [m for m in ('torch', 'monai') if m in sys.modules]\n"
        "assert not bad, bad\n"
        "assert medbundle.io.DicomReadError is medbundle.io.dicom.DicomReadError\n"
        "assert not [m for m in ('torch', 'monai') if m in sys.modules]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    "in_size, out_size",
    [((7, 5), (3, 2)), ((40, 70), (48, 48)), ((150, 97), (64, 64)), ((13, 29), (31, 17)), ((64, 64), (64, 64))],
)
def test_resize_area_is_torch_adaptive_average_pooling(in_size, out_size):
    image = np.random.default_rng(0).random((3, *in_size), dtype=np.float32)
    expected = torch.nn.functional.interpolate(torch.from_numpy(image)[None], size=out_size, mode="area")[0].numpy()
    out = resize_area(image, out_size)
    assert out.dtype == np.float32 and out.shape == (3, *out_size)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-6)


def test_opencv_inter_area_is_not_torch_area():
    """Why resize_area exists: cv2.INTER_AREA differs from torch's "area" when enlarging or at non-integer factors."""
    image = np.random.default_rng(1).random((40, 70), dtype=np.float32)
    for size in ((48, 48), (30, 50)):
        torch_area = torch.nn.functional.interpolate(torch.from_numpy(image)[None, None], size=size, mode="area")
        opencv = cv2.resize(image, size[::-1], interpolation=cv2.INTER_AREA)
        assert np.abs(opencv - torch_area[0, 0].numpy()).max() > 1e-3


def test_adaptive_average_matrix_rows_are_means():
    matrix = adaptive_average_matrix(5, 3)  # windows [0, 2), [1, 4), [3, 5)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)
    np.testing.assert_allclose(matrix[1], [0, 1 / 3, 1 / 3, 1 / 3, 0])


def test_as_pair_follows_monai_ensure_tuple_rep():
    assert as_pair(8) == (8, 8) and as_pair("center") == ("center", "center")
    assert as_pair([3, 4]) == (3, 4) and as_pair(np.array([5, 6])) == (5, 6)
    with pytest.raises(ValueError, match="spatial_size"):
        as_pair([1, 2, 3], "spatial_size")


def test_transforms_are_the_imaging_functions():
    rng = np.random.default_rng(2)
    image = rng.random((1, 90, 60), dtype=np.float32)
    image[:, :, :20] += 1.0  # breast-like bright left part
    image = np.clip(image, 0, 1)
    np.testing.assert_array_equal(AspectResizePad((32, 32))(image), aspect_resize_pad(image, (32, 32)))
    np.testing.assert_array_equal(CLAHE(clip_limit=3.0)(image), apply_clahe(image, clip_limit=3.0))
    np.testing.assert_array_equal(CanonicalFlip()(image[..., ::-1].copy()), flip_to_left(image[..., ::-1].copy()))
    assert BreastCrop(margin=2).compute_bounding_box(image) == BreastCropper(margin=2).compute_bounding_box(image)
    assert isinstance(BreastCrop(), BreastCropper)


def test_breast_cropper_warns_per_image_and_keeps_it(caplog):
    blank = np.zeros((1, 40, 30), np.float32)
    with caplog.at_level("WARNING", logger="medbundle.imaging.breast_crop"):
        assert BreastCropper()(blank, "a.dcm") is blank
        assert BreastCropper()(blank, "b.dcm") is blank
    assert [r.args[0] for r in caplog.records] == ["a.dcm", "b.dcm"]


@pytest.mark.parametrize("shape", [(3000, 2400), (1955, 1841), (517, 389), (300, 200)])
def test_breast_cropper_blank_is_the_box_of_the_full_size_nearest_neighbour_mask(shape):
    """Blanking upsamples the grown region over the box only; it equals cropping OpenCV's full-size
    nearest-neighbour resize of it (the mask the crop was defined with)."""
    rng = np.random.default_rng(sum(shape))
    height, width = shape
    shrink = min(1.0, 512 / max(shape))
    small = (round(height * shrink), round(width * shrink))
    region = cv2.resize((rng.random((9, 7)) > 0.5).astype(np.uint8), small[::-1], interpolation=cv2.INTER_NEAREST)
    y0, x0 = int(rng.integers(0, height // 3)), int(rng.integers(0, width // 3))
    box = (y0, int(rng.integers(y0 + 1, height + 1)), x0, int(rng.integers(x0 + 1, width + 1)))
    location = BreastLocation(box, region.astype(bool), 0.25, 12.5)
    image = rng.random((2, height, width), dtype=np.float32)
    cropper = BreastCropper(blank_outside=True)
    cropped = cropper.crop(image, box)
    grow = int(np.ceil(12.5 * small[1] / width)) + 1
    grown = cv2.dilate(region, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    inside = cv2.resize(grown, (width, height), interpolation=cv2.INTER_NEAREST)[box[0] : box[1], box[2] : box[3]]
    expected = np.where(inside.astype(bool), cropped, np.float32(0.25))
    np.testing.assert_array_equal(cropper.blank(cropped, location, shape), expected)
    np.testing.assert_array_equal(cropped, cropper.crop(image, box))  # blank copies unless told to overwrite
    np.testing.assert_array_equal(cropper.blank(cropped, location, shape, overwrite=True), expected)
    np.testing.assert_array_equal(cropped, expected)


def test_breast_cropper_margin_is_in_source_pixels():
    image = np.zeros((1, 400, 320), np.float32)
    image[0, 100:300, :150] = 0.6
    half = cv2.resize(image[0], (160, 200), interpolation=cv2.INTER_AREA)[None]
    cropper = BreastCropper(margin=20, working_size=512)  # no downscale: the box is exact
    assert cropper.compute_bounding_box(image) == (80, 320, 0, 170)
    assert cropper.compute_bounding_box(half, scale=0.5) == (40, 160, 0, 85)
    assert cropper.compute_bounding_box(half) == (30, 170, 0, 95)  # 20 half-resolution pixels
    assert cropper.locate(half, scale=0.5).margin == 10.0
    with pytest.raises(ValueError, match="scale"):
        cropper.locate(half, scale=0.0)


@pytest.mark.parametrize(
    "meta, scale",
    [({}, 1.0), ({"reduce_level": 0}, 1.0), ({"reduce_level": 2}, 0.25), ({"reduce_level": None}, 1.0),
     ({"reduce_level": "none"}, 1.0), ({"reduce_level": torch.tensor(1)}, 0.5), ({"reduce_level": np.int64(3)}, 0.125)],
)  # fmt: skip
def test_source_scale_reads_the_reduce_level(meta, scale):
    assert source_scale(meta) == scale


def test_read_grayscale_raises_image_read_error_shared_with_io(tmp_path):
    from medbundle.io import ImageReadError as io_error

    assert io_error is ImageReadError
    (tmp_path / "x.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match="file is empty"):
        read_grayscale(tmp_path / "x.png")
