"""Tests for medbundle.io.MammoDicomReader inside MONAI's LoadImaged pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from monai.data import DataLoader, Dataset, MetaTensor
from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged
from pydicom.dataset import Dataset as DicomDataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import SecondaryCaptureImageStorage

from medbundle.io import DicomReadError, MammoDicomReader, read_dicom

REAL_FILE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dicom" / "RG2_JPLL.dcm"


def write_dicom(path: Path, shape: tuple[int, int] = (6, 9)) -> Path:
    """Write a non-square MONOCHROME1 ramp with a window as an uncompressed Part 10 file."""
    ds = DicomDataset()
    ds.file_meta = FileMetaDataset()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    pixels = np.arange(np.prod(shape), dtype=np.uint16).reshape(shape) * 50
    ds.set_pixel_data(pixels, "MONOCHROME1", 12)
    ds.WindowCenter, ds.WindowWidth = 1000, 1500
    ds.save_as(path, enforce_file_format=True)
    return path


def load(path: Path) -> MetaTensor:
    """Run the bundle-style loading chain on one file."""
    transform = Compose(
        [LoadImaged(keys="image", reader=MammoDicomReader, image_only=True), EnsureChannelFirstd(keys="image")]
    )
    return transform({"image": str(path)})["image"]


def test_loadimaged_matches_read_dicom(tmp_path):
    path = write_dicom(tmp_path / "a.dcm")
    image = load(path)
    expected, _ = read_dicom(path)
    assert isinstance(image, MetaTensor)
    assert image.shape == (1, 6, 9) and image.dtype == torch.float32
    np.testing.assert_array_equal(image[0].numpy(), expected)
    assert torch.equal(image.affine, torch.eye(3, dtype=image.affine.dtype))
    assert image.meta["filename_or_obj"] == str(path)
    assert image.meta["inverted"] is True and image.meta["image_laterality"] == "none"


def test_loadimaged_matches_read_dicom_on_real_file():
    if not REAL_FILE.is_file():
        pytest.skip(f"{REAL_FILE} is not present")
    image = load(REAL_FILE)
    expected, _ = read_dicom(REAL_FILE)
    assert image.shape == (1, *expected.shape)
    np.testing.assert_array_equal(image[0].numpy(), expected)


def test_batches_collate(tmp_path):
    data = [{"image": str(write_dicom(tmp_path / f"{i}.dcm"))} for i in range(2)]
    transform = Compose(
        [LoadImaged(keys="image", reader=MammoDicomReader, image_only=True), EnsureChannelFirstd(keys="image")]
    )
    batch = next(iter(DataLoader(Dataset(data, transform), batch_size=2)))
    assert batch["image"].shape == (2, 1, 6, 9)


def test_broken_file_fails_instead_of_falling_back(tmp_path):
    # LoadImage retries files whose `read` fails with its other readers; decoding in
    # `get_data` makes sure a broken file raises rather than loading through e.g. ITK.
    path = tmp_path / "broken.dcm"
    path.write_bytes(b"\0" * 256)
    with pytest.raises(DicomReadError, match="broken.dcm"):
        LoadImaged(keys="image", reader=MammoDicomReader, image_only=True)({"image": str(path)})


def test_several_files_are_rejected(tmp_path):
    reader = MammoDicomReader()
    paths = [write_dicom(tmp_path / "a.dcm"), write_dicom(tmp_path / "b.dcm")]
    with pytest.raises(NotImplementedError, match="one DICOM file"):
        reader.get_data(reader.read(paths))


def test_verify_suffix():
    reader = MammoDicomReader()
    assert reader.verify_suffix("x/img.dcm") and reader.verify_suffix("IMG.DICOM")
    assert reader.verify_suffix(["a.dcm", "b.dcm"]) and not reader.verify_suffix(["a.dcm", "b.png"])
    assert not reader.verify_suffix("img.png") and not reader.verify_suffix("img")


def test_get_data_returns_monai_meta(tmp_path):
    reader = MammoDicomReader()
    image, meta = reader.get_data(reader.read(write_dicom(tmp_path / "a.dcm")))
    assert image.shape == (6, 9)
    np.testing.assert_array_equal(meta["spatial_shape"], [6, 9])
    np.testing.assert_array_equal(meta["original_affine"], np.eye(3))
    assert np.isnan(meta["original_channel_dim"])
    assert meta["voi"] == "LINEAR" and meta["window_center"] == 1000.0
