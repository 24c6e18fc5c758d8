"""Tests for medbundle.io.GrayscaleReader (PNG, JPEG, DICOM) inside MONAI's LoadImaged pipeline."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from monai.data import DataLoader, Dataset, MetaTensor
from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged
from pydicom.dataset import Dataset as DicomDataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import SecondaryCaptureImageStorage

from medbundle.io import DicomReadError, GrayscaleReader, ImageReadError, read_dicom

SHAPE = (6, 9)


def write_image(path: Path, pixels: np.ndarray, params: tuple[int, ...] = ()) -> Path:
    """Encode with OpenCV by suffix and write through numpy (works for any path)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, encoded = cv2.imencode(path.suffix, pixels, list(params))
    assert ok
    encoded.tofile(path)
    return path


def write_dicom(path: Path) -> Path:
    """Write a non-square MONOCHROME1 ramp with a window as an uncompressed Part 10 file."""
    ds = DicomDataset()
    ds.file_meta = FileMetaDataset()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.set_pixel_data(np.arange(np.prod(SHAPE), dtype=np.uint16).reshape(SHAPE) * 50, "MONOCHROME1", 12)
    ds.WindowCenter, ds.WindowWidth = 1000, 1500
    ds.save_as(path, enforce_file_format=True)
    return path


def ramp(max_value: int, dtype: type) -> np.ndarray:
    """Non-square ramp from 0 to exactly ``max_value``."""
    return np.rint(np.linspace(0, max_value, np.prod(SHAPE))).reshape(SHAPE).astype(dtype)


def read(path: Path) -> tuple[np.ndarray, dict]:
    reader = GrayscaleReader()
    return reader.get_data(reader.read(str(path)))


def load(path: Path) -> MetaTensor:
    """Run the bundle-style loading chain on one file."""
    transform = Compose(
        [
            LoadImaged(keys="image", reader=GrayscaleReader, image_only=True),
            EnsureChannelFirstd(keys="image", channel_dim="no_channel"),
        ]
    )
    return transform({"image": str(path)})["image"]


def test_png_8_bit_is_divided_by_255(tmp_path):
    pixels = ramp(200, np.uint8)
    image, meta = read(write_image(tmp_path / "a.png", pixels))
    assert image.dtype == np.float32 and image.shape == SHAPE
    np.testing.assert_allclose(image, pixels / 255.0, rtol=1e-6)
    assert meta["format"] == "png" and meta["bits_stored"] == 8 and meta["channels"] == 1


@pytest.mark.parametrize(
    ("max_value", "bits"),
    [(200, 8), (1000, 10), (2048, 12), (4000, 12), (4095, 12), (16383, 14), (40000, 16), (65535, 16)],
)
def test_png_16_bit_is_divided_by_smallest_power_of_two_range(tmp_path, max_value, bits):
    pixels = ramp(max_value, np.uint16)
    image, meta = read(write_image(tmp_path / "a.png", pixels))
    np.testing.assert_allclose(image, pixels / (2**bits - 1), rtol=1e-6)
    assert meta["bits_stored"] == bits


def test_12_bit_data_in_16_bit_png_fills_unit_range(tmp_path):
    image, _ = read(write_image(tmp_path / "a.png", ramp(4095, np.uint16)))
    assert image.min() == 0.0 and image.max() == 1.0


def test_16_bit_black_image_is_zero(tmp_path):
    image, _ = read(write_image(tmp_path / "a.png", np.zeros(SHAPE, np.uint16)))
    assert not image.any()


@pytest.mark.parametrize("suffix", [".jpg", ".jpeg", ".JPG"])
def test_jpeg(tmp_path, suffix):
    pixels = np.tile(np.linspace(40, 220, 32), (24, 1)).astype(np.uint8)
    image, meta = read(write_image(tmp_path / f"a{suffix}", pixels, (cv2.IMWRITE_JPEG_QUALITY, 100)))
    assert image.shape == (24, 32)
    np.testing.assert_allclose(image, pixels / 255.0, atol=3 / 255)
    assert meta["format"] == "jpeg" and meta["bits_stored"] == 8


def test_jpeg_exif_orientation_is_applied(tmp_path):
    # An EXIF Orientation of 6 (rotate 90 degrees clockwise) as written by cameras and some PACS
    # exports: viewers show the image rotated, and so must the reader.
    pixels = np.zeros((20, 40), np.uint8)
    pixels[:5, :10] = 255
    encoded = cv2.imencode(".jpg", pixels)[1].tobytes()
    tiff = b"II*\x00" + struct.pack("<IH", 8, 1) + struct.pack("<HHIHH", 0x0112, 3, 1, 6, 0) + struct.pack("<I", 0)
    app1 = b"Exif\x00\x00" + tiff
    path = tmp_path / "rotated.jpg"
    path.write_bytes(encoded[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + encoded[2:])
    image, _ = read(path)
    assert image.shape == (40, 20)
    assert image[:10, -5:].mean() > 0.8 and image[-10:, :5].mean() < 0.2  # top-left corner went top-right


def test_colour_becomes_luma(tmp_path):
    gray = ramp(250, np.uint8)
    bgr = np.stack([gray, gray, gray], axis=-1)
    image, meta = read(write_image(tmp_path / "rgb.png", bgr))
    np.testing.assert_allclose(image, gray / 255.0, rtol=1e-6)
    assert meta["channels"] == 3
    colours = np.zeros((1, 3, 4), np.uint8)
    colours[0, 0, 0] = colours[0, 1, 1] = colours[0, 2, 2] = 255  # pure blue, green, red (BGR)
    colours[..., 3] = 128  # alpha is ignored
    image, meta = read(write_image(tmp_path / "rgba.png", colours))
    np.testing.assert_allclose(image[0], [0.114, 0.587, 0.299], atol=1 / 255)


def test_colour_16_bit(tmp_path):
    gray = ramp(4095, np.uint16)
    image, meta = read(write_image(tmp_path / "rgb16.png", np.stack([gray] * 3, axis=-1)))
    np.testing.assert_allclose(image, gray / 4095.0, atol=1e-4)
    assert meta["bits_stored"] == 12


def test_dicom_equals_read_dicom(tmp_path):
    path = write_dicom(tmp_path / "a.dcm")
    image, meta = read(path)
    expected, dicom_meta = read_dicom(path)
    np.testing.assert_array_equal(image, expected)
    assert meta["format"] == "dicom" and meta["inverted"] is True and meta["window_center"] == 1000.0
    assert meta["image_laterality"] == "none"
    assert set(dicom_meta) < set(meta)


def test_loadimaged_gives_channel_first_meta_tensor_for_non_ascii_path(tmp_path):
    pixels = ramp(4095, np.uint16)
    path = write_image(tmp_path / "Üniçode dir" / "bild 1.png", pixels)
    image = load(path)
    assert isinstance(image, MetaTensor)
    assert image.shape == (1, *SHAPE) and image.dtype == torch.float32
    np.testing.assert_allclose(image[0].numpy(), pixels / 4095.0, rtol=1e-6)
    assert torch.equal(image.affine, torch.eye(3, dtype=image.affine.dtype))
    assert image.meta["filename_or_obj"] == str(path)
    assert load(write_dicom(tmp_path / "a.dcm")).shape == (1, *SHAPE)


def test_mixed_formats_collate_in_one_batch(tmp_path):
    paths = [
        write_image(tmp_path / "a.png", ramp(255, np.uint8)),
        write_image(tmp_path / "b.png", ramp(4095, np.uint16)),
        write_image(tmp_path / "c.jpg", ramp(255, np.uint8)),
        write_dicom(tmp_path / "d.dcm"),
    ]
    transform = Compose(
        [LoadImaged(keys="image", reader=GrayscaleReader, image_only=True), EnsureChannelFirstd(keys="image")]
    )
    batch = next(iter(DataLoader(Dataset([{"image": str(p)} for p in paths], transform), batch_size=4)))
    assert batch["image"].shape == (4, 1, *SHAPE)
    assert list(batch["image"].meta["format"]) == ["png", "png", "jpeg", "dicom"]
    assert batch["image"].meta["bits_stored"].tolist() == [8, 12, 8, 12]


def cut(path: Path, end: int) -> Path:
    """Keep the file's bytes up to ``end`` (negative: drop that many from the end)."""
    path.write_bytes(path.read_bytes()[:end])
    return path


def test_png_cut_in_half_raises_naming_the_file(tmp_path):
    rng = np.random.default_rng(0)
    path = write_image(tmp_path / "half.png", rng.integers(0, 65535, (64, 80), dtype=np.uint16))
    cut(path, path.stat().st_size // 2)
    with pytest.raises(ImageReadError, match=r"half\.png.*IEND.*truncated.*skip_bad_images"):
        read(path)
    with pytest.raises(ImageReadError, match=r"half\.png"):
        LoadImaged(keys="image", reader=GrayscaleReader, image_only=True)({"image": str(path)})


def test_png_without_iend_chunk_raises(tmp_path):
    path = cut(write_image(tmp_path / "noend.png", ramp(255, np.uint8)), -12)
    with pytest.raises(ImageReadError, match=r"noend\.png.*IEND"):
        read(path)


def test_truncated_jpeg_raises(tmp_path):
    path = write_image(tmp_path / "cut.jpg", np.random.default_rng(0).integers(0, 255, (64, 80), dtype=np.uint8))
    cut(path, -2)  # drops only the end-of-image marker
    with pytest.raises(ImageReadError, match=r"cut\.jpg.*end-of-image"):
        read(path)


@pytest.mark.parametrize("content", [b"this is not an image" * 10, b""])
def test_garbage_or_empty_file_raises_instead_of_falling_back(tmp_path, content):
    # LoadImage retries files whose `read` fails with its other readers; decoding in
    # `get_data` makes sure a broken file raises rather than loading through e.g. PIL.
    path = tmp_path / "garbage.png"
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=r"garbage\.png.*Re-export"):
        LoadImaged(keys="image", reader=GrayscaleReader, image_only=True)({"image": str(path)})


def test_missing_file_raises(tmp_path):
    with pytest.raises(ImageReadError, match=r"absent\.jpg"):
        read(tmp_path / "absent.jpg")


def test_broken_dicom_raises_image_read_error(tmp_path):
    path = tmp_path / "broken.dcm"
    path.write_bytes(b"\0" * 256)
    with pytest.raises(ImageReadError, match=r"(?s)broken\.dcm.*skip_bad_images") as info:
        read(path)
    assert isinstance(info.value.__cause__, DicomReadError)


@pytest.mark.parametrize("suffix", [".tif", ".TIFF"])
def test_tiff_8_and_16_bit_scale_like_png(tmp_path, suffix):
    for max_value, dtype, bits in ((255, np.uint8, 8), (4095, np.uint16, 12)):
        path = write_image(tmp_path / f"ramp{max_value}{suffix}", ramp(max_value, dtype))
        image, meta = read(path)
        np.testing.assert_allclose(image, ramp(max_value, dtype) / (2**bits - 1), atol=1e-6)
        assert meta["format"] == "tiff" and meta["bits_stored"] == bits and meta["rows"] == SHAPE[0]


def test_verify_suffix():
    reader = GrayscaleReader()
    for name in ("a.png", "B.PNG", "c.jpg", "d.JPEG", "e.dcm", "f.dicom", "g.tif", "h.TIFF", "scan.dcm.png"):
        assert reader.verify_suffix(name), name
    assert reader.verify_suffix(["a.png", "b.dcm"]) and not reader.verify_suffix(["a.png", "b.bmp"])
    assert not reader.verify_suffix("a.bmp") and not reader.verify_suffix("a.pngx") and not reader.verify_suffix("a")


def test_several_files_are_rejected(tmp_path):
    reader = GrayscaleReader()
    paths = [write_image(tmp_path / f"{i}.png", ramp(255, np.uint8)) for i in range(2)]
    with pytest.raises(NotImplementedError, match="one image file"):
        reader.get_data(reader.read(paths))


def _with_sbit(png: bytes, bits: int) -> bytes:
    """Insert an sBIT chunk (grey: one byte) after IHDR."""
    ihdr_end = 8 + 12 + struct.unpack(">I", png[8:12])[0]
    body = b"sBIT" + bytes([bits])
    chunk = struct.pack(">I", 1) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
    return png[:ihdr_end] + chunk + png[ihdr_end:]


def test_a_declared_png_bit_depth_scales_under_exposed_images_like_the_others(tmp_path):
    dark = np.full((8, 10), 1000, np.uint16)  # a 12-bit detector's dim image: maximum far below 4095
    _, encoded = cv2.imencode(".png", dark)
    path = tmp_path / "dark.png"
    path.write_bytes(_with_sbit(encoded.tobytes(), 12))
    image, meta = GrayscaleReader().get_data(str(path))
    assert meta["bits_stored"] == 12 and np.allclose(image, 1000 / 4095)


# ------------------------------------------------------------------------------- reduced-size JPEG decode


def smooth_jpeg(path: Path, shape: tuple[int, int] = (600, 480)) -> Path:
    """A smooth 8-bit image, large enough to be decoded at 1/4 for a 64 x 64 target (150 x 120 >= 2 x (64, 51))."""
    y, x = np.mgrid[: shape[0], : shape[1]]
    pixels = np.rint(127 + 100 * np.sin(x / 37) * np.cos(y / 53)).astype(np.uint8)
    return write_image(path, pixels, (cv2.IMWRITE_JPEG_QUALITY, 95))


def test_reader_decodes_a_jpeg_at_reduced_size_for_its_target_size(tmp_path):
    path = str(smooth_jpeg(tmp_path / "a.jpg"))
    reader = GrayscaleReader(target_size=(64, 64))
    image, meta = reader.get_data(reader.read(path))
    assert meta["reduce_level"] == 2 and image.shape == (150, 120) and list(meta["spatial_shape"]) == [150, 120]
    assert (meta["rows"], meta["columns"]) == (600, 480)
    off = GrayscaleReader(target_size=(64, 64), reduced_decode=False)
    image, meta = off.get_data(off.read(path))
    assert meta["reduce_level"] == 0 and image.shape == (600, 480)
    np.testing.assert_array_equal(image, read(Path(path))[0])
    assert GrayscaleReader().target_size is None and GrayscaleReader(target_size=64).target_size == (64, 64)


def test_reduce_level_collates_in_a_batch_of_mixed_formats(tmp_path):
    from medbundle.transforms import AspectResizePadd

    paths = [
        smooth_jpeg(tmp_path / "a.jpg"),
        write_image(tmp_path / "b.png", ramp(4095, np.uint16)),
        write_dicom(tmp_path / "c.dcm"),
    ]
    transform = Compose(
        [
            LoadImaged(keys="image", reader=GrayscaleReader(target_size=(16, 16)), image_only=True),
            EnsureChannelFirstd(keys="image"),
            AspectResizePadd(keys="image", spatial_size=(16, 16)),
        ]
    )
    batch = next(iter(DataLoader(Dataset([{"image": str(p)} for p in paths], transform), batch_size=3)))
    assert batch["image"].meta["reduce_level"].tolist() == [2, 0, 0]


def test_a_jpeg_2000_dicom_is_decoded_as_read_dicom_decodes_it_for_the_target(tmp_path):
    from pydicom.uid import JPEG2000Lossless

    ds = DicomDataset()
    ds.file_meta = FileMetaDataset()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    y, x = np.mgrid[:256, :208]
    ds.set_pixel_data((2000 + 1000 * np.sin(x / 9) * np.cos(y / 13)).astype(np.uint16), "MONOCHROME2", 12)
    ds.compress(JPEG2000Lossless)
    path = tmp_path / "j2k.dcm"
    ds.save_as(path, enforce_file_format=True)
    reader = GrayscaleReader(target_size=(64, 64))
    image, meta = reader.get_data(reader.read(str(path)))
    assert meta["reduce_level"] == 1 and image.shape == (128, 104)
    np.testing.assert_array_equal(image, read_dicom(path, (64, 64))[0])
