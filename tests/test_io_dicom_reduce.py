"""Tests for reduced-resolution JPEG 2000 decoding: medbundle.imaging.j2k_reduce and read_dicom(target_size=...)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pydicom
import pytest
from monai.transforms import LoadImaged
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import get_frame
from pydicom.uid import JPEG2000Lossless, RLELossless, SecondaryCaptureImageStorage

from medbundle.demo.rsna import write_rsna_demo
from medbundle.imaging import aspect_resize_pad
from medbundle.imaging.j2k_reduce import (
    decode_reduced,
    read_header,
    reduced_shape,
    reduction_level,
)
from medbundle.io import MammoDicomReader, read_dicom
from medbundle.io import dicom as dicom_module

REAL_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dicom"
DEMO_SHAPE = (512, 416)
TARGET = (128, 64)  # demo images are decoded at level 1 (256 x 208) for this target
# tolerance of the reduced decode + resize against full decode + the same resize (see test below)
MIN_PSNR_DB = 40.0
MAX_ABS_DIFF = 0.25


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def codestream(path: Path) -> bytes:
    ds = pydicom.dcmread(path)
    return get_frame(ds.PixelData, 0, number_of_frames=1)


def write_j2k(path: Path, pixels: np.ndarray, bits: int, signed: bool = False) -> Path:
    """Write ``pixels`` as a JPEG 2000 Lossless MONOCHROME2 file with a window over the data."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.Modality = "MG"
    ds.set_pixel_data(pixels, "MONOCHROME2", bits)
    ds.WindowCenter, ds.WindowWidth = float(pixels.mean()), float(np.ptp(pixels)) or 1.0
    ds.compress(JPEG2000Lossless)
    ds.save_as(path, enforce_file_format=True)
    return path


def smooth(shape: tuple[int, int], high: int, seed: int = 0) -> np.ndarray:
    """A smooth random surface in [0, high] with sharp-edged blocks, so that reduction has edges to average."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[: shape[0], : shape[1]] / max(shape)
    surface = 0.5 + 0.25 * np.sin(6 * x + rng.uniform(0, 6)) * np.cos(5 * y + rng.uniform(0, 6))
    surface[shape[0] // 4 : shape[0] // 2, shape[1] // 3 : shape[1] // 2] += 0.2
    return np.rint(np.clip(surface, 0, 1) * high)


@pytest.fixture(scope="module")
def demo_j2k(tmp_path_factory) -> list[Path]:
    """The images of two demo patients (every machine profile that site draws: MONOCHROME1/2, LINEAR/SIGMOID,
    12-16 bits), each stored as JPEG 2000 Lossless."""
    root = tmp_path_factory.mktemp("demo")
    write_rsna_demo(root, n_patients=2, n_test_patients=0, image_shape=DEMO_SHAPE, seed=3)
    files = []
    for index, source in enumerate(sorted((root / "train_images").rglob("*.dcm"))[:4]):
        ds = pydicom.dcmread(source)
        if ds.file_meta.TransferSyntaxUID != JPEG2000Lossless:
            ds.decompress(generate_instance_uid=False)
            ds.compress(JPEG2000Lossless, generate_instance_uid=False)
        files.append(root / f"j2k{index}.dcm")
        ds.save_as(files[-1])
    return files


@pytest.mark.parametrize(
    ("shape", "target", "levels", "margin", "max_level", "expected"),
    [
        ((4096, 3328), (1024, 512), 5, 1.0, 1, 1),  # Hologic: 2048 x 1664
        ((3000, 2400), (1024, 512), 5, 1.0, 1, 1),  # 1500 x 1200
        ((2294, 1914), (1024, 512), 5, 1.0, 1, 0),  # GE: 1147 x 957 would be shorter than 1024
        ((3000, 2400), (512, 256), 5, 1.0, 1, 1),  # one level at most by default
        ((3000, 2400), (512, 256), 5, 1.0, 5, 2),  # 750 x 600; level 3 would give 375 x 300
        ((3000, 2400), (512, 256), 1, 1.0, 5, 1),  # no more levels than the codestream has
        ((3000, 2400), (512, 256), 5, 2.0, 5, 1),  # a larger margin keeps more resolution
        ((4096, 3328), (1024, 512), 0, 1.0, 1, 0),
        ((1955, 1841), (200, 100), 5, 1.0, 5, 1),  # levels 2 and 3 skipped: Pillow rounds 1841/4, 1955/8 differently
    ],
)
def test_reduction_level_rule(shape, target, levels, margin, max_level, expected):
    level = reduction_level(shape, target, levels, margin, max_level)
    assert level == expected
    assert min(reduced_shape(shape, level)) >= margin * max(target) or level == 0


def test_reduced_shape_rounds_up():
    assert reduced_shape((1955, 1841), 2) == (489, 461)
    assert reduced_shape((3000, 2400), 0) == (3000, 2400)


def test_read_header_of_demo_codestream(demo_j2k):
    ds = pydicom.dcmread(demo_j2k[0])
    header = read_header(codestream(demo_j2k[0]))
    assert (header.rows, header.columns, header.precision, header.signed) == (
        ds.Rows, ds.Columns, ds.BitsStored, False
    )
    assert header.components == 1 and header.offset == (0, 0) and header.levels >= 2


@pytest.mark.parametrize("data", [b"", b"\xff\xd8\xff\xe0", b"\xff\x4f\xff\x51\x00\x02"])
def test_read_header_rejects_other_data(data):
    with pytest.raises(ValueError):
        read_header(data)


@pytest.mark.parametrize(("bits", "signed"), [(8, False), (12, False), (16, False), (12, True), (16, True)])
def test_decode_reduced_level_zero_equals_pydicom(tmp_path, bits, signed):
    high = 2**bits - 1
    pixels = smooth((96, 80), high)
    if signed:
        pixels = pixels - 2 ** (bits - 1)
    pixels = pixels.astype(np.int16 if signed else np.uint8 if bits == 8 else np.uint16)
    path = write_j2k(tmp_path / "a.dcm", pixels, bits, signed)
    data = codestream(path)
    header = read_header(data)
    decoded = decode_reduced(data, header, 0)
    np.testing.assert_array_equal(decoded, pydicom.dcmread(path).pixel_array)
    assert decoded.dtype == pixels.dtype
    level1 = decode_reduced(data, header, 1).astype(np.float64)
    area = pixels.astype(np.float64).reshape(48, 2, 40, 2).mean(axis=(1, 3))
    assert level1.shape == (48, 40)
    assert np.median(np.abs(level1 - area)) <= 0.01 * high  # a local mean of the stored values


def test_reduced_read_is_within_tolerance_of_full_decode_and_resize(demo_j2k):
    """PSNR >= 40 dB and max abs difference <= 0.25 of the [0, 1] image, after resizing both to the target.

    The reduced image averages stored values before the VOI transform, the full path after it; the two differ
    where windowing saturates at sharp edges (skin line, spicules, labels). 40 dB is an RMS error of 1 % of
    the range, 2.5 8-bit grey levels: less than resizing with INTER_LINEAR instead of INTER_AREA changes.
    """
    for path in demo_j2k:
        full, meta = read_dicom(path)
        reduced, reduced_meta = read_dicom(path, TARGET)
        assert reduced_meta["reduce_level"] == 1 and meta["reduce_level"] == 0
        assert reduced.shape == reduced_shape(full.shape, 1) and reduced.dtype == np.float32
        assert 0.0 <= reduced.min() and reduced.max() <= 1.0
        assert {k: v for k, v in reduced_meta.items() if k != "reduce_level"} == {
            k: v for k, v in meta.items() if k != "reduce_level"
        }
        a, b = (aspect_resize_pad(image[None], TARGET) for image in (full, reduced))
        assert psnr(a, b) >= MIN_PSNR_DB, path
        assert np.abs(a - b).max() <= MAX_ABS_DIFF, path


def test_non_j2k_syntax_is_decoded_at_full_resolution(tmp_path, demo_j2k):
    ds = pydicom.dcmread(demo_j2k[0])
    ds.decompress(generate_instance_uid=False)
    ds.compress(RLELossless, generate_instance_uid=False)
    ds.save_as(tmp_path / "rle.dcm")
    image, meta = read_dicom(tmp_path / "rle.dcm", TARGET)
    assert meta["reduce_level"] == 0
    np.testing.assert_array_equal(image, read_dicom(demo_j2k[0])[0])


def test_codec_refusal_falls_back_to_full_decode(monkeypatch, demo_j2k):
    def refuse(*args, **kwargs):
        raise OSError("broken data stream when reading image file")

    monkeypatch.setattr(dicom_module, "decode_reduced", refuse)
    image, meta = read_dicom(demo_j2k[0], TARGET)
    assert meta["reduce_level"] == 0
    np.testing.assert_array_equal(image, read_dicom(demo_j2k[0])[0])


def test_target_larger_than_the_image_decodes_at_full_resolution(demo_j2k):
    image, meta = read_dicom(demo_j2k[0], (1024, 512))
    assert meta["reduce_level"] == 0
    np.testing.assert_array_equal(image, read_dicom(demo_j2k[0])[0])


def test_reader_switch(demo_j2k):
    path = str(demo_j2k[0])
    on = MammoDicomReader(target_size=TARGET)
    off = MammoDicomReader(target_size=TARGET, reduced_decode=False)
    image, meta = on.get_data(on.read(path))
    np.testing.assert_array_equal(image, read_dicom(path, TARGET)[0])
    assert meta["reduce_level"] == 1
    image, meta = off.get_data(off.read(path))
    np.testing.assert_array_equal(image, read_dicom(path)[0])
    assert meta["reduce_level"] == 0
    assert MammoDicomReader().target_size is None
    loaded = LoadImaged(keys="image", reader=on, image_only=True)({"image": path})["image"]
    assert tuple(loaded.shape) == reduced_shape(pydicom.dcmread(path).pixel_array.shape, 1)
    assert loaded.meta["reduce_level"] == 1


def real(name: str) -> Path:
    path = REAL_DIR / name
    if not path.is_file():
        pytest.skip(f"{path} is not present")
    return path


@pytest.mark.parametrize("name", ["966_fixed.dcm", "RG1_J2KI.dcm", "RG3_J2KI.dcm", "RG3_J2KR.dcm"])
def test_real_j2k_files_within_tolerance(name):
    full, _ = read_dicom(real(name))
    target = (512, 256)
    reduced, meta = read_dicom(real(name), target)
    assert meta["reduce_level"] == 1
    a, b = (aspect_resize_pad(image[None], target) for image in (full, reduced))
    assert psnr(a, b) >= MIN_PSNR_DB and np.abs(a - b).max() <= MAX_ABS_DIFF


@pytest.mark.parametrize(
    "name",
    [
        "NM_Kakadu44_SOTmarkerincons.dcm",  # codestream precision 16, Bits Stored 12: pydicom's correction is needed
        "JPEG2KLossless_1s_1f_u_16_16.dcm",  # Pillow rejects its codestream
    ],
)
def test_real_files_the_reduced_decoder_cannot_take_fall_back(name):
    image, meta = read_dicom(real(name), (256, 128))
    assert meta["reduce_level"] == 0
    np.testing.assert_array_equal(image, read_dicom(real(name))[0])
