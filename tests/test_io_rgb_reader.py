"""Tests for medbundle.io.RGBReader (ISIC 2024 HDF5 members and PNG/JPEG files) inside MONAI's LoadImaged pipeline."""

from __future__ import annotations

import multiprocessing
import os
import struct
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
import torch
from monai.data import DataLoader, Dataset, MetaTensor
from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged

from medbundle.io import ImageReadError, RGBReader, hdf5_member, open_hdf5
from medbundle.io import hdf5 as hdf5_module

SHAPE = (13, 17)  # non-square, so a swapped axis shows


@pytest.fixture(autouse=True)
def _close_cached_handles():
    """Each test ends without cached HDF5 handles, so tmp files are not held open."""
    yield
    for handle in hdf5_module._handles.values():
        handle.close()
    hdf5_module._handles.clear()


def jpeg(pixels: np.ndarray, quality: int = 90) -> bytes:
    ok, encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return encoded.tobytes()


def colour(seed: int, shape: tuple[int, int] = SHAPE) -> np.ndarray:
    """Random BGR pixels, as OpenCV writes them."""
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


def expected_rgb(data: bytes) -> np.ndarray:
    """The reference decoding: OpenCV, BGR to RGB, divided by 255."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return (cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) / 255).astype(np.float32)


def write_hdf5(path: Path, members: dict[str, bytes], storage: str = "bytes") -> Path:
    """ISIC 2024 layout: one root dataset of encoded bytes per isic_id."""
    wrap = {"bytes": np.bytes_, "void": np.void, "uint8": lambda data: np.frombuffer(data, np.uint8)}[storage]
    with h5py.File(path, "w") as f:
        for key, data in members.items():
            f[key] = wrap(data)
    return path


def read(name: str | Path) -> tuple[np.ndarray, dict]:
    reader = RGBReader()
    return reader.get_data(reader.read(str(name)))


def load_only(name: str | Path) -> MetaTensor:
    """LoadImaged alone: its errors surface as raised (``Compose`` would wrap them in a RuntimeError)."""
    return LoadImaged(keys="image", reader=RGBReader(), image_only=True)({"image": str(name)})["image"]


def load(name: str | Path) -> MetaTensor:
    """Run the bundle-style loading chain on one image."""
    transform = Compose([LoadImaged(keys="image", reader=RGBReader(), image_only=True), EnsureChannelFirstd("image")])
    return transform({"image": str(name)})["image"]


@pytest.mark.parametrize("storage", ["bytes", "void", "uint8"])
def test_hdf5_member_equals_opencv_decoding(tmp_path, storage):
    data = jpeg(colour(0))
    path = write_hdf5(tmp_path / "train-image.hdf5", {"ISIC_0000001": data}, storage)
    name = hdf5_member(path, "ISIC_0000001")
    image, meta = read(name)
    assert image.dtype == np.float32 and image.shape == (*SHAPE, 3)
    np.testing.assert_array_equal(image, expected_rgb(data))
    fields = {"filename": name, "format": "jpeg", "rows": SHAPE[0], "columns": SHAPE[1], "channels": 3}
    assert meta.items() >= fields.items()


@pytest.mark.parametrize("suffix", [".jpg", ".JPEG", ".png"])
def test_image_file_equals_opencv_decoding(tmp_path, suffix):
    path = tmp_path / f"ISIC_0000002{suffix}"
    path.write_bytes(cv2.imencode(suffix.lower(), colour(1))[1].tobytes())
    image, meta = read(path)
    np.testing.assert_array_equal(image, expected_rgb(path.read_bytes()))
    assert meta["format"] == ("png" if suffix == ".png" else "jpeg") and meta["channels"] == 3


@pytest.mark.parametrize("suffix", [".tif", ".tiff"])
def test_tiff_file_equals_opencv_decoding(tmp_path, suffix):
    path = tmp_path / f"slide{suffix}"
    path.write_bytes(cv2.imencode(suffix, colour(2))[1].tobytes())
    image, meta = read(path)
    np.testing.assert_array_equal(image, expected_rgb(path.read_bytes()))
    assert meta["format"] == "tiff" and meta["channels"] == 3


def test_rgb_order_is_kept(tmp_path):
    bgr = np.zeros((1, 3, 3), np.uint8)
    bgr[0, 0, 2] = bgr[0, 1, 1] = bgr[0, 2, 0] = 255  # red, green, blue pixels in OpenCV's BGR order
    path = tmp_path / "rgb.png"
    path.write_bytes(cv2.imencode(".png", bgr)[1].tobytes())
    np.testing.assert_array_equal(read(path)[0][0], np.eye(3, dtype=np.float32))


def test_grayscale_jpeg_becomes_three_equal_channels(tmp_path):
    gray = np.tile(np.linspace(30, 220, SHAPE[1]), (SHAPE[0], 1)).astype(np.uint8)
    data = jpeg(gray)
    image, meta = read(hdf5_member(write_hdf5(tmp_path / "a.hdf5", {"ISIC_1": data}), "ISIC_1"))
    assert image.shape == (*SHAPE, 3) and meta["channels"] == 1
    np.testing.assert_array_equal(image[..., 0], image[..., 1])
    np.testing.assert_array_equal(image[..., 0], image[..., 2])
    np.testing.assert_array_equal(image[..., 0], cv2.imdecode(np.frombuffer(data, np.uint8), 0) / np.float32(255))


def test_alpha_is_dropped_and_16_bit_png_is_divided_by_65535(tmp_path):
    bgra = np.random.default_rng(2).integers(0, 65536, (*SHAPE, 4), dtype=np.uint16)
    path = tmp_path / "rgba16.png"
    path.write_bytes(cv2.imencode(".png", bgra)[1].tobytes())
    image, meta = read(path)
    np.testing.assert_allclose(image, bgra[..., 2::-1] / 65535, rtol=1e-6)
    assert meta["format"] == "png" and meta["channels"] == 3


def test_jpeg_exif_orientation_is_applied(tmp_path):
    # EXIF Orientation 6 (rotate 90 degrees clockwise), as phone cameras write it: viewers show the
    # image rotated, and so must the reader.
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:5, :10] = 255
    encoded = jpeg(pixels)
    tiff = b"II*\x00" + struct.pack("<IH", 8, 1) + struct.pack("<HHIHH", 0x0112, 3, 1, 6, 0) + struct.pack("<I", 0)
    app1 = b"Exif\x00\x00" + tiff
    rotated = encoded[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + encoded[2:]
    image, _ = read(hdf5_member(write_hdf5(tmp_path / "a.hdf5", {"ISIC_1": rotated}), "ISIC_1"))
    assert image.shape == (40, 20, 3)
    assert image[:10, -5:].mean() > 0.8 and image[-10:, :5].mean() < 0.2  # top-left corner went top-right


def test_loadimaged_gives_channel_first_for_hdf5_member_and_file(tmp_path):
    pixels = colour(3)
    path = write_hdf5(tmp_path / "train-image.hdf5", {"ISIC_1": jpeg(pixels)})
    file = tmp_path / "Üniçode dir" / "ISIC_1.jpg"
    file.parent.mkdir()
    file.write_bytes(jpeg(pixels))
    for name in (hdf5_member(path, "ISIC_1"), str(file)):
        image = load(name)
        assert isinstance(image, MetaTensor)
        assert image.shape == (3, *SHAPE) and image.dtype == torch.float32
        np.testing.assert_array_equal(image.numpy(), expected_rgb(jpeg(pixels)).transpose(2, 0, 1))
        assert torch.equal(image.affine, torch.eye(3, dtype=image.affine.dtype))
        assert image.meta["filename_or_obj"] == name and image.meta["spatial_shape"].tolist() == list(SHAPE)


def test_hdf5_members_and_files_collate_in_one_batch(tmp_path):
    path = write_hdf5(tmp_path / "train-image.h5", {"ISIC_1": jpeg(colour(4))})
    png = tmp_path / "b.png"
    png.write_bytes(cv2.imencode(".png", colour(5)[..., 0])[1].tobytes())
    items = [{"image": hdf5_member(path, "ISIC_1")}, {"image": str(png)}]
    transform = Compose([LoadImaged(keys="image", reader=RGBReader, image_only=True), EnsureChannelFirstd("image")])
    batch = next(iter(DataLoader(Dataset(items, transform), batch_size=2)))
    assert batch["image"].shape == (2, 3, *SHAPE)
    assert list(batch["image"].meta["format"]) == ["jpeg", "png"]
    assert batch["image"].meta["channels"].tolist() == [3, 1]


def record_cache_owner(item: dict) -> dict:
    """Add the id of this process and of the process that opened the cached HDF5 handles."""
    return {**item, "pid": os.getpid(), "cache_pid": hdf5_module._owner_pid}


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
@pytest.mark.parametrize("persistent_workers", [False, True])
def test_dataloader_workers_read_every_member_correctly(tmp_path, persistent_workers):
    members = {f"ISIC_{i:07d}": jpeg(colour(100 + i)) for i in range(40)}
    path = write_hdf5(tmp_path / "train-image.hdf5", members)
    parent = open_hdf5(path)  # opened before the workers fork, so they inherit this handle
    items = [{"image": hdf5_member(path, key), "key": key} for key in members]
    transform = Compose(
        [
            LoadImaged(keys="image", reader=RGBReader(), image_only=True),
            EnsureChannelFirstd("image"),
            record_cache_owner,
        ]
    )
    loader = DataLoader(
        Dataset(items, transform),
        batch_size=4,
        shuffle=True,
        num_workers=2,
        persistent_workers=persistent_workers,
        multiprocessing_context="fork",
    )
    for _ in range(2 if persistent_workers else 1):
        seen = set()
        for batch in loader:
            for image, key in zip(batch["image"], batch["key"]):
                np.testing.assert_array_equal(image.numpy(), expected_rgb(members[key]).transpose(2, 0, 1))
                seen.add(key)
            assert (batch["cache_pid"] == batch["pid"]).all() and (batch["pid"] != os.getpid()).all()
        assert seen == set(members)
    assert open_hdf5(path) is parent and parent.id.valid  # the workers closed only their own copies
    assert parent["ISIC_0000000"][()] == members["ISIC_0000000"]


def test_missing_key_raises_through_loadimaged(tmp_path):
    path = write_hdf5(tmp_path / "train-image.hdf5", {"ISIC_1": jpeg(colour(6))})
    with pytest.raises(ImageReadError, match=r"isic_id 'ISIC_2' is not in '.*train-image\.hdf5'.*skip_bad_images"):
        load_only(hdf5_member(path, "ISIC_2"))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not a jpeg", "OpenCV cannot decode it"),
        (jpeg(colour(7))[:-2], "end-of-image marker"),  # truncated: OpenCV alone would return a partial image
        (jpeg(colour(7, (64, 64)))[: len(jpeg(colour(7, (64, 64)))) // 2], "end-of-image marker"),
    ],
)
def test_broken_member_raises_naming_file_and_key(tmp_path, data, reason):
    path = write_hdf5(tmp_path / "train-image.hdf5", {"ISIC_9": data})
    pattern = rf"isic_id 'ISIC_9' in HDF5 file '.*train-image\.hdf5': .*{reason}.*Re-export.*skip_bad_images"
    with pytest.raises(ImageReadError, match=pattern):
        read(hdf5_member(path, "ISIC_9"))
    with pytest.raises(ImageReadError, match=pattern):  # not swallowed by LoadImage trying other readers
        load_only(hdf5_member(path, "ISIC_9"))


def test_path_that_is_not_hdf5_raises_naming_file_and_key(tmp_path):
    path = tmp_path / "train-metadata.hdf5"
    path.write_text("isic_id,target\nISIC_1,0\n")
    with pytest.raises(ImageReadError, match=r"isic_id 'ISIC_1'.*train-metadata\.hdf5' is not an HDF5 file"):
        load_only(hdf5_member(path, "ISIC_1"))


@pytest.mark.parametrize("content", [b"this is not an image" * 10, b"", None])
def test_broken_or_missing_file_raises(tmp_path, content):
    path = tmp_path / "ISIC_1.jpg"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageReadError, match=r"image file '.*ISIC_1\.jpg'.*skip_bad_images"):
        load_only(path)


def test_verify_suffix():
    reader = RGBReader()
    for name in ("a.png", "b.JPG", "c.jpeg", "d.tif", "d/train-image.hdf5::ISIC_1", "e.H5::ISIC_2", "f.hdf5::x.png"):
        assert reader.verify_suffix(name), name
    assert reader.verify_suffix(["a.png", "b.hdf5::k"]) and not reader.verify_suffix(["a.png", "b.dcm"])
    for name in ("a.dcm", "a.bmp", "a.hdf5", "a.csv::ISIC_1", "a", "a.png::ISIC_1"):
        assert not reader.verify_suffix(name), name
