"""Tests for medbundle.io.dicom.read_dicom on synthetic and real DICOM files."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.pixels import apply_modality_lut, apply_voi_lut
from pydicom.pixels.decoders.base import get_decoder
from pydicom.uid import (
    JPEG2000Lossless,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from medbundle.demo.rsna import write_rsna_demo
from medbundle.io import DicomReadError, read_dicom
from medbundle.io import dicom as dicom_module

REAL_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dicom"
SHAPE = (6, 9)  # non-square so that a transpose cannot go unnoticed
CODEC_SHAPE = (40, 56)  # the JPEG 2000 encoder needs tiles of at least 32 pixels a side


def write_dicom(path: Path, pixels: np.ndarray, photometric: str = "MONOCHROME2", bits: int = 12, **elements) -> Path:
    """Write ``pixels`` as an uncompressed Part 10 file with extra ``elements`` (keyword=value)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.Modality = "MG"
    ds.set_pixel_data(pixels, photometric, bits)
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    ds.save_as(path, enforce_file_format=True)
    return path


def ramp(shape: tuple[int, ...] = SHAPE, high: int = 4095) -> np.ndarray:
    """A uint16 ramp from 0 to ``high`` in C order, so every pixel position has a distinct value."""
    return np.linspace(0, high, int(np.prod(shape))).round().astype(np.uint16).reshape(shape)


def window_fraction(x: np.ndarray, center: float, width: float, function: str) -> np.ndarray:
    """The VOI LUT Function of DICOM PS3.3 C.11.2.1.2/C.11.2.1.3 with output range [0, 1]."""
    x = x.astype(np.float64)
    if function == "SIGMOID":
        return 1.0 / (1.0 + np.exp(-4.0 * (x - center) / width))
    if function == "LINEAR":
        center, width = center - 0.5, width - 1.0
    return np.where(x <= center - width / 2, 0.0, np.where(x > center + width / 2, 1.0, (x - center) / width + 0.5))


def test_output_contract_without_voi(tmp_path):
    pixels = ramp(high=3000)
    path = write_dicom(tmp_path / "plain.dcm", pixels)
    image, meta = read_dicom(path)
    assert image.dtype == np.float32
    assert image.shape == pydicom.dcmread(path).pixel_array.shape == SHAPE
    assert image.min() >= 0.0 and image.max() <= 1.0
    np.testing.assert_allclose(image, pixels / 3000.0, atol=1e-7)  # min-max, same orientation
    assert meta["voi"] is None and meta["window_center"] is None and meta["inverted"] is False
    assert (meta["rows"], meta["columns"], meta["bits_stored"]) == (6, 9, 12)
    assert meta["filename"] == str(path)


def test_monochrome1_is_inverted(tmp_path):
    pixels = ramp()
    mono2, meta2 = read_dicom(write_dicom(tmp_path / "m2.dcm", pixels, "MONOCHROME2"))
    mono1, meta1 = read_dicom(write_dicom(tmp_path / "m1.dcm", pixels, "MONOCHROME1"))
    np.testing.assert_allclose(mono1, 1.0 - mono2, atol=1e-7)
    assert (meta1["inverted"], meta2["inverted"]) == (True, False)
    assert meta1["photometric_interpretation"] == "MONOCHROME1"


@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
def test_windowing_functions(tmp_path, function):
    pixels = ramp()
    path = write_dicom(
        tmp_path / "w.dcm", pixels, WindowCenter=1500, WindowWidth=800, VOILUTFunction=function
    )
    image, meta = read_dicom(path)
    np.testing.assert_allclose(image, window_fraction(pixels, 1500, 800, function), atol=1e-6)
    assert (meta["voi"], meta["window_center"], meta["window_width"]) == (function, 1500.0, 800.0)


def test_missing_voi_lut_function_defaults_to_linear(tmp_path):
    pixels = ramp()
    image, meta = read_dicom(write_dicom(tmp_path / "w.dcm", pixels, WindowCenter=1500, WindowWidth=800))
    np.testing.assert_allclose(image, window_fraction(pixels, 1500, 800, "LINEAR"), atol=1e-6)
    assert meta["voi"] == "LINEAR"


def test_multi_valued_window_takes_first(tmp_path):
    pixels = ramp()
    path = write_dicom(tmp_path / "multi.dcm", pixels, WindowCenter=[1500, 3000], WindowWidth=[800, 100])
    image, meta = read_dicom(path)
    np.testing.assert_allclose(image, window_fraction(pixels, 1500, 800, "LINEAR"), atol=1e-6)
    assert (meta["window_center"], meta["window_width"]) == (1500.0, 800.0)


@pytest.mark.parametrize("slope, intercept", [(2.0, -100.0), (-1.0, 4095.0)])
def test_rescale_is_applied_before_windowing(tmp_path, slope, intercept):
    pixels = ramp()
    path = write_dicom(
        tmp_path / "r.dcm", pixels, RescaleSlope=slope, RescaleIntercept=intercept, WindowCenter=1000, WindowWidth=600
    )
    image, _ = read_dicom(path)
    expected = window_fraction(pixels * slope + intercept, 1000, 600, "LINEAR")
    np.testing.assert_allclose(image, expected, atol=1e-6)


@pytest.mark.parametrize("bits, step", [(8, 1), (12, 16)])
def test_voi_lut_sequence_is_preferred_over_window(tmp_path, bits, step):
    pixels = ramp(high=500)
    item = Dataset()
    item.add_new("LUTDescriptor", "US", [256, 100, bits])  # 256 entries, first mapped value 100
    item.add_new("LUTData", "US", [step * i for i in range(256)])
    path = write_dicom(
        tmp_path / "lut.dcm",
        pixels,
        VOILUTSequence=[item],
        WindowCenter=2000,
        WindowWidth=10,
        RescaleSlope=1,
        RescaleIntercept=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rescaled (float) input must not trigger pydicom's float-LUT warning
        image, meta = read_dicom(path)
    # inputs beyond the table take the last entry (pydicom alone wraps them around for 8-bit LUTs)
    expected = np.clip(pixels.astype(np.float64) - 100, 0, 255) * step / (2**bits - 1)
    np.testing.assert_allclose(image, expected, atol=1e-7)
    assert (meta["voi"], meta["window_center"]) == ("lut", None)


def voi_dataset(bits: int, signed: bool, photometric: str, voi: str | None, slope: float, intercept: float) -> Dataset:
    """The image attributes of a data set with the given rescale and VOI (None, "lut" or a VOI LUT Function)."""
    ds = Dataset()
    ds.BitsAllocated, ds.BitsStored, ds.PixelRepresentation = 16 if bits > 8 else 8, bits, int(signed)
    ds.PhotometricInterpretation = photometric
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    if voi == "lut":
        item = Dataset()
        item.add_new("LUTDescriptor", "US", [512, 100, 12])
        item.add_new("LUTData", "US", [(i * 8) % 4096 for i in range(512)])
        ds.VOILUTSequence = [item]
    elif voi is not None:
        ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = [300.5, 10], [700, 20], voi
    return ds


@pytest.mark.parametrize("voi", [None, "lut", "LINEAR", "LINEAR_EXACT", "SIGMOID"])
@pytest.mark.parametrize(
    ("bits", "signed", "slope", "intercept"),
    [(8, False, 1.0, 0.0), (12, False, 1.0, 0.0), (16, False, 0.5, -1000.0), (16, True, -1.0, 50.0), (12, True, 1.0, 0.0)],
)
@pytest.mark.parametrize("photometric", ["MONOCHROME1", "MONOCHROME2"])
def test_value_table_equals_the_per_pixel_transform(voi, bits, signed, slope, intercept, photometric):
    """The table lookup that read_dicom uses for integer images gives exactly the per-pixel arithmetic.

    256 x 320 pixels outnumber the 2**16 values of a 16-bit image, so the table is used for every case.
    """
    dtype = np.dtype(f"{'i' if signed else 'u'}{1 if bits == 8 else 2}")
    info = np.iinfo(dtype)
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    pixels = np.random.default_rng(bits).integers(max(low, info.min), min(high, info.max), (256, 320), endpoint=True)
    pixels = pixels.astype(dtype)
    ds = voi_dataset(bits, signed, photometric, voi, slope, intercept)
    invert = photometric == "MONOCHROME1"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns of LUT inputs outside the table
        table, table_voi = dicom_module._to_unit_range(pixels, ds, invert)
        direct, direct_voi = dicom_module._transform(pixels, ds, invert)
    assert table_voi == direct_voi == voi and table.dtype == direct.dtype == np.float32
    np.testing.assert_array_equal(table, direct)


def test_constant_image_without_voi_is_zero(tmp_path):
    image, _ = read_dicom(write_dicom(tmp_path / "c.dcm", np.full(SHAPE, 7, np.uint16)))
    assert image.dtype == np.float32 and not image.any()


def test_first_frame_of_multi_frame(tmp_path):
    frames = np.stack([ramp(), ramp()[::-1], np.zeros(SHAPE, np.uint16)])
    image, meta = read_dicom(write_dicom(tmp_path / "mf.dcm", frames, WindowCenter=2048, WindowWidth=4096))
    np.testing.assert_allclose(image, window_fraction(frames[0], 2048, 4096, "LINEAR"), atol=1e-6)
    assert meta["number_of_frames"] == 3


@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless])
def test_compressed_matches_uncompressed(tmp_path, syntax):
    pixels = ramp(CODEC_SHAPE)
    path = write_dicom(tmp_path / "raw.dcm", pixels, WindowCenter=1500, WindowWidth=800)
    ds = pydicom.dcmread(path)
    ds.compress(syntax)
    ds.save_as(tmp_path / "compressed.dcm")
    image, meta = read_dicom(tmp_path / "compressed.dcm")
    np.testing.assert_array_equal(image, read_dicom(path)[0])
    assert meta["transfer_syntax_uid"] == syntax


def test_meta_has_no_identifying_fields(tmp_path):
    path = write_dicom(
        tmp_path / "p.dcm",
        ramp(),
        PatientName="Doe^Jane",
        PatientID="PID-12345",
        PatientBirthDate="19700101",
        InstitutionName="Secret Hospital",
        ImageLaterality="L",
        ViewPosition="CC",
    )
    _, meta = read_dicom(path)
    flat = " ".join(f"{key}={value}" for key, value in meta.items()).lower()
    for secret in ("doe", "jane", "pid-12345", "19700101", "secret hospital", "patient"):
        assert secret not in flat
    assert (meta["image_laterality"], meta["view_position"]) == ("L", "CC")


def assert_one_line_naming(error: DicomReadError, path: Path, *fixes: str) -> str:
    """The message is one line that names the file and says what to do; return it."""
    message = str(error)
    assert "\n" not in message and str(path) in message, message
    assert any(fix in message for fix in fixes or ("skip_bad_images: true",)), message
    return message


def test_missing_file_raises(tmp_path):
    path = tmp_path / "absent.dcm"
    with pytest.raises(DicomReadError, match=r"absent\.dcm': the file does not exist\. Check the path") as info:
        read_dicom(path)
    assert_one_line_naming(info.value, path)
    assert isinstance(info.value, RuntimeError)
    assert isinstance(info.value.__cause__, FileNotFoundError)


def test_empty_file_raises(tmp_path):
    path = tmp_path / "empty.dcm"
    path.touch()
    with pytest.raises(DicomReadError, match=r"empty\.dcm': the file is empty \(0 bytes\)") as info:
        read_dicom(path)
    assert_one_line_naming(info.value, path)


@pytest.mark.parametrize(
    "content",
    [b"not a DICOM file", np.random.default_rng(0).bytes(4096), b"\0" * 128 + b"DICX" + b"\0" * 100],
    ids=["text", "random-bytes", "wrong-prefix"],
)
def test_non_dicom_file_raises(tmp_path, content):
    path = tmp_path / "notes.dcm"
    path.write_bytes(content)
    with pytest.raises(DicomReadError, match=rf"notes\.dcm': not a DICOM file: .*\({len(content)} bytes\)") as info:
        read_dicom(path)
    assert_one_line_naming(info.value, path)
    assert isinstance(info.value.__cause__, pydicom.errors.InvalidDicomError)


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory) -> dict[str, Path]:
    """One image of the RSNA demo data set, stored uncompressed, as JPEG 2000 Lossless and as RLE Lossless."""
    root = tmp_path_factory.mktemp("demo")
    write_rsna_demo(root, n_patients=2, n_test_patients=0, image_shape=(64, 64))
    ds = pydicom.dcmread(next((root / "train_images").rglob("*.dcm")))
    ds.decompress(generate_instance_uid=False)
    files = {"uncompressed": root / "uncompressed.dcm"}
    ds.save_as(files["uncompressed"])
    for name, syntax in (("jpeg2000", JPEG2000Lossless), ("rle", RLELossless)):
        compressed = pydicom.dcmread(files["uncompressed"])
        compressed.compress(syntax, generate_instance_uid=False)
        files[name] = root / f"{name}.dcm"
        compressed.save_as(files[name])
    return files


def cut_points(path: Path) -> dict[str, int]:
    """Sizes to cut ``path`` to: inside a header value, right before the Pixel Data, inside it, its last byte."""
    ds = pydicom.dcmread(path)
    window = ds.get_item("WindowCenter")
    pixels = ds.get_item("PixelData")
    size = path.stat().st_size
    return {
        "2000 bytes": 2000,
        "inside Window Center": window.value_tell + 2,
        "before Pixel Data": pixels.value_tell - 12,  # explicit VR OB/OW: 12-byte element header
        "inside Pixel Data": (pixels.value_tell + size) // 2,
        "last pixel byte": size - (9 if pixels.length == 0xFFFFFFFF else 1),  # before the sequence delimiter
    }


@pytest.mark.parametrize("syntax", ["uncompressed", "jpeg2000", "rle"])
@pytest.mark.parametrize(
    "where", ["2000 bytes", "inside Window Center", "before Pixel Data", "inside Pixel Data", "last pixel byte"]
)
def test_truncated_file_says_truncated(tmp_path, demo_files, syntax, where):
    source = demo_files[syntax]
    end = cut_points(source)[where]
    path = tmp_path / "cut.dcm"
    path.write_bytes(source.read_bytes()[:end])
    # a cut right before the Pixel Data leaves a well-formed header: it reads as a file without pixels
    expected = "it has no Pixel Data" if where == "before Pixel Data" else rf"the file is truncated \({end} bytes\): it ends"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns of the missing sequence delimiter
        with pytest.raises(DicomReadError, match=rf"cut\.dcm': {expected}") as info:
            read_dicom(path)
    message = assert_one_line_naming(info.value, path, "Re-export or re-download it")
    assert "is not supported" not in message
    if where == "inside Window Center":
        assert "it ends inside element (0028,1050) Window Center (2 of its" in message
    elif where == "before Pixel Data":
        assert "truncated (cut off before its pixels)" in message and "(the file ends after element" in message
    elif where != "2000 bytes":
        assert re.search(r"inside (the|the encapsulated \(compressed\)) Pixel Data", message), message


def test_file_cut_at_every_byte_never_blames_the_image_attributes(tmp_path, demo_files):
    data = demo_files["jpeg2000"].read_bytes()
    path = tmp_path / "cut.dcm"
    for end in range(1, len(data) - 8, 7):
        path.write_bytes(data[:end])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(DicomReadError) as info:
                read_dicom(path)
        message = assert_one_line_naming(info.value, path)
        assert "truncated" in message or "not a DICOM file" in message, message
        assert "is not supported" not in message and "lacks the image attribute" not in message, message


def test_missing_pixel_data_raises(tmp_path):
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, generate_uid()
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.save_as(tmp_path / "nopixels.dcm", enforce_file_format=True)
    with pytest.raises(DicomReadError, match=r"nopixels\.dcm': it has no Pixel Data") as info:
        read_dicom(tmp_path / "nopixels.dcm")
    assert_one_line_naming(info.value, tmp_path / "nopixels.dcm")


def test_missing_photometric_is_reported_as_missing(tmp_path):
    path = write_dicom(tmp_path / "nophoto.dcm", ramp())
    ds = pydicom.dcmread(path)
    del ds.PhotometricInterpretation
    ds.save_as(path)
    with pytest.raises(DicomReadError, match=r"nophoto\.dcm': it lacks the image attribute\(s\) Photometric"):
        read_dicom(path)


def test_pixel_data_shorter_than_the_header_promises(tmp_path):
    path = write_dicom(tmp_path / "short.dcm", ramp())
    ds = pydicom.dcmread(path)
    ds.Rows = SHAPE[0] + 2
    ds.save_as(path)
    with pytest.raises(DicomReadError, match=r"short\.dcm': its Pixel Data holds 108 bytes, but .*need 144"):
        read_dicom(path)


@pytest.mark.parametrize("syntax", [JPEG2000Lossless, RLELossless])
def test_corrupt_compressed_pixel_data_raises(tmp_path, syntax):
    ds = pydicom.dcmread(write_dicom(tmp_path / "raw.dcm", ramp(CODEC_SHAPE)))
    ds.compress(syntax)
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = encapsulate([frame[: len(frame) // 2]])  # a complete file whose codestream is cut
    ds.save_as(tmp_path / "corrupt.dcm")
    with pytest.raises(DicomReadError, match=r"corrupt\.dcm': corrupt or truncated compressed pixel data") as info:
        read_dicom(tmp_path / "corrupt.dcm")
    assert_one_line_naming(info.value, tmp_path / "corrupt.dcm")


def test_colour_image_raises(tmp_path):
    path = write_dicom(tmp_path / "rgb.dcm", np.zeros((*SHAPE, 3), np.uint8), "RGB", bits=8)
    with pytest.raises(DicomReadError, match=r"rgb\.dcm.*'RGB' is not supported") as info:
        read_dicom(path)
    assert_one_line_naming(info.value, path, "Remove it from the data set")


def encapsulated_file(path: Path, syntax: pydicom.uid.UID) -> Path:
    """A complete file that declares ``syntax``, with a dummy one-fragment frame (never decoded here)."""
    ds = pydicom.dcmread(write_dicom(path, ramp()))
    ds.PixelData = encapsulate([b"\0" * 16])
    ds["PixelData"].VR, ds["PixelData"].is_undefined_length = "OB", True
    ds.file_meta.TransferSyntaxUID = syntax
    ds.save_as(path)
    return path


@pytest.mark.parametrize(
    "syntax, package",
    [
        (JPEG2000Lossless, "pylibjpeg pylibjpeg-openjpeg"),
        (JPEGLosslessSV1, "pylibjpeg pylibjpeg-libjpeg"),
        (JPEGLSLossless, "pylibjpeg pylibjpeg-libjpeg"),
        (JPEGExtended12Bit, "pylibjpeg pylibjpeg-libjpeg"),
        (RLELossless, "pylibjpeg pylibjpeg-rle"),
    ],
)
def test_missing_codec_names_the_transfer_syntax_and_package(tmp_path, monkeypatch, syntax, package):
    path = encapsulated_file(tmp_path / "coded.dcm", syntax)
    monkeypatch.setattr(get_decoder(syntax), "_available", {})  # as if no plugin were installed
    with pytest.raises(DicomReadError, match=r"coded\.dcm': no decoder is installed") as info:
        read_dicom(path)
    message = assert_one_line_naming(info.value, path, f"Install one: pip install {package}")
    assert f"{syntax.name} ({syntax})" in message


def test_missing_codec_without_known_package_repeats_pydicom(tmp_path, monkeypatch):
    path = encapsulated_file(tmp_path / "coded.dcm", JPEG2000Lossless)
    monkeypatch.setattr(get_decoder(JPEG2000Lossless), "_available", {})
    monkeypatch.setattr(get_decoder(JPEG2000Lossless), "_unavailable", {"gdcm": ("gdcm>=3.0.10",)})
    monkeypatch.setattr(dicom_module, "_DECODER_PACKAGES", {})
    with pytest.raises(DicomReadError, match=r"Install one of the decoders pydicom lists: gdcm - requires gdcm"):
        read_dicom(path)


def test_transfer_syntax_without_any_decoder(tmp_path):
    path = encapsulated_file(tmp_path / "video.dcm", pydicom.uid.MPEG2MPML)
    with pytest.raises(DicomReadError, match=r"video\.dcm': pydicom has no decoder for its transfer syntax") as info:
        read_dicom(path)
    assert_one_line_naming(info.value, path)


def reference_image(path: Path) -> np.ndarray:
    """Independent reference: pixel_array -> modality LUT -> VOI (index 0) -> invert -> scale."""
    ds = pydicom.dcmread(path)
    values = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds, index=0).astype(np.float64)
    if "VOILUTSequence" in ds:
        low, high = 0.0, 2.0 ** ds.VOILUTSequence[0].LUTDescriptor[2] - 1
    elif "WindowCenter" in ds:
        assert ds.PixelRepresentation == 0 and "ModalityLUTSequence" not in ds  # true for the shared files
        slope, intercept = float(ds.get("RescaleSlope", 1)), float(ds.get("RescaleIntercept", 0))
        low, high = intercept, (2.0**ds.BitsStored - 1) * slope + intercept
    else:
        low, high = values.min(), values.max()
    scaled = np.clip((values - low) / (high - low), 0, 1)
    return 1.0 - scaled if ds.PhotometricInterpretation == "MONOCHROME1" else scaled


def real_files() -> list:
    """Names of the shared real DICOM files that must decode, or one skipped param when absent."""
    if not REAL_DIR.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{REAL_DIR} is not present"))]
    return sorted(path.name for path in REAL_DIR.glob("*.dcm") if path.name != "966.dcm")


@pytest.mark.parametrize("name", real_files())
def test_real_file_matches_pydicom_reference(name):
    expected = reference_image(REAL_DIR / name)
    image, meta = read_dicom(REAL_DIR / name)
    assert image.dtype == np.float32
    assert image.shape == expected.shape == (meta["rows"], meta["columns"])
    np.testing.assert_allclose(image, expected, rtol=0, atol=1e-6)


def test_real_broken_file_raises():
    path = REAL_DIR / "966.dcm"
    if not path.is_file():
        pytest.skip(f"{path} is not present")
    with pytest.raises(DicomReadError, match=r"966\.dcm': corrupt or truncated compressed pixel data \(JPEG 2") as info:
        read_dicom(path)
    assert_one_line_naming(info.value, path)


@pytest.mark.parametrize("end", [2000, 1_000_000])
def test_real_file_cut_says_truncated(tmp_path, end):
    source = REAL_DIR / "RG2_JPLL.dcm"  # JPEG Lossless, as in the RSNA data
    if not source.is_file():
        pytest.skip(f"{source} is not present")
    path = tmp_path / "RG2_JPLL.dcm"
    path.write_bytes(source.read_bytes()[:end])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DicomReadError, match=rf"RG2_JPLL\.dcm': the file is truncated \({end} bytes\)") as info:
            read_dicom(path)
    assert_one_line_naming(info.value, path)


def _shared_file_of(folder: Path, syntaxes: tuple) -> Path:
    for path in sorted(folder.glob("*.dcm")):
        try:
            if pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID in syntaxes:
                return path
        except Exception:  # noqa: BLE001, S112 - not a DICOM file: look at the next
            continue
    pytest.skip("no shared file of that transfer syntax")


@pytest.fixture
def plugins_used(monkeypatch) -> list[str]:
    """The decoding plugin named at each ``pixel_array_options`` call ("" for pydicom's own order)."""
    used: list[str] = []
    original = pydicom.dataset.Dataset.pixel_array_options

    def record(self, **kwargs):
        used.append(kwargs.get("decoding_plugin", ""))
        return original(self, **kwargs)

    monkeypatch.setattr(pydicom.dataset.Dataset, "pixel_array_options", record)
    return used


def test_jpeg_ls_is_decoded_by_the_fastest_plugin_and_falls_back_when_it_refuses(shared_dicom_dir, monkeypatch,
                                                                                 plugins_used):
    syntaxes = (pydicom.uid.JPEGLSLossless, pydicom.uid.JPEGLSNearLossless)
    path = _shared_file_of(shared_dicom_dir, syntaxes)
    if "pyjpegls" not in get_decoder(syntaxes[0]).available_plugins:
        pytest.skip("pyjpegls is not installed")
    image, _ = read_dicom(path)
    assert plugins_used == ["pyjpegls"]
    monkeypatch.setattr(dicom_module, "_PREFERRED_PLUGINS", dict.fromkeys(syntaxes, "pylibjpeg"))
    monkeypatch.setattr(get_decoder(syntaxes[0]), "_available", {**get_decoder(syntaxes[0])._available,
                                                                 "pylibjpeg": lambda *a, **k: 1 / 0})
    monkeypatch.setattr(get_decoder(syntaxes[1]), "_available", {**get_decoder(syntaxes[1])._available,
                                                                 "pylibjpeg": lambda *a, **k: 1 / 0})
    plugins_used.clear()
    fallback, _ = read_dicom(path)
    assert plugins_used == ["pylibjpeg", ""] and np.array_equal(fallback, image)


def test_lossy_jpeg_2000_is_decoded_by_openjpeg_with_the_same_pixels(shared_dicom_dir, monkeypatch, plugins_used):
    path = _shared_file_of(shared_dicom_dir, (pydicom.uid.JPEG2000,))
    if "pylibjpeg" not in get_decoder(pydicom.uid.JPEG2000).available_plugins:
        pytest.skip("pylibjpeg-openjpeg is not installed")
    image, _ = read_dicom(path)
    assert plugins_used == ["pylibjpeg"]
    monkeypatch.setattr(dicom_module, "_PREFERRED_PLUGINS", {})
    default, _ = read_dicom(path)
    assert np.array_equal(image, default)
