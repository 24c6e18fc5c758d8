"""Tests for reduced-size JPEG decoding: medbundle.imaging.jpeg_reduce and read_raster_grayscale(target_size=...)."""

from __future__ import annotations

import io
import math
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from medbundle.data import chest_xray_datalist
from medbundle.demo import write_chest_xray_demo
from medbundle.imaging import (
    ImageReadError,
    aspect_resize_pad,
    jpeg_reduce,
)
from medbundle.imaging.decode import read_raster_grayscale
from medbundle.imaging.jpeg_reduce import (
    JPEGHeader,
    decode_reduced,
    read_header,
    reduced_shape,
    reducible,
    reduction_level,
)
from medbundle.io.image_file import read_grayscale

TARGET = (224, 224)
# tolerance of reduced decode + aspect resize against full decode + the same resize, on demo radiographs
MIN_PSNR_DB = 50.0
MAX_ABS_DIFF = 0.03
# (rows, columns), colour, and the level chosen for TARGET: a multiple of 4, a JPEG saved as RGB, a size
# whose partial last block allows only 1/2 at 224 px, and a colour one that is not twice the fitted size at 1/4
SOURCES = [((2000, 1600), False, 2), ((1500, 1200), True, 1), ((2345, 1877), False, 1), ((1024, 1024), True, 1)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def encode(pixels: np.ndarray, suffix: str = ".jpg", params: tuple[int, ...] = (cv2.IMWRITE_JPEG_QUALITY, 95)) -> bytes:
    ok, encoded = cv2.imencode(suffix, pixels, list(params))
    assert ok
    return encoded.tobytes()


def segment(marker: int, body: bytes) -> bytes:
    return b"\xff" + bytes([marker]) + struct.pack(">H", len(body) + 2) + body


def exif(orientation: int) -> bytes:
    """An APP1 EXIF segment holding only an Orientation tag, little-endian."""
    tiff = b"II*\x00" + struct.pack("<IH", 8, 1) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0)
    return segment(0xE1, b"Exif\x00\x00" + tiff + struct.pack("<I", 0))


def with_segments(jpeg: bytes, *segments: bytes) -> bytes:
    """`jpeg` with `segments` inserted right after its start-of-image marker."""
    return jpeg[:2] + b"".join(segments) + jpeg[2:]


def frame_offset(jpeg: bytes) -> int:
    """Byte offset of the baseline frame header marker (0xFFC0) of an OpenCV-written JPEG."""
    return jpeg.index(b"\xff\xc0")


@pytest.fixture(scope="module")
def radiographs(tmp_path_factory) -> list[tuple[Path, int]]:
    """Demo radiographs enlarged to the `SOURCES` sizes with quantum noise, as quality-95 JPEGs, and their level."""
    root = tmp_path_factory.mktemp("jpeg_reduce")
    write_chest_xray_demo(root / "demo", n_train=1, n_val=1, n_test=0, seed=5, size_range=(256, 384))
    bases = [read_grayscale(item["image"])[0] for item in chest_xray_datalist(root / "demo", "train")]
    rng = np.random.default_rng(0)
    files = []
    for index, ((rows, columns), colour, level) in enumerate(SOURCES):
        enlarged = cv2.resize(bases[index], (columns, rows), interpolation=cv2.INTER_CUBIC)
        noisy = enlarged + rng.normal(0.0, 0.01, (rows, columns)).astype(np.float32)
        pixels = np.clip(np.rint(noisy * 255), 0, 255).astype(np.uint8)
        path = root / f"{rows}x{columns}.jpg"
        path.write_bytes(encode(cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR) if colour else pixels))
        files.append((path, level))
    return files


# ------------------------------------------------------------------------------------------------ header


def test_read_header_gives_size_components_precision_and_frame():
    grey = np.zeros((30, 50), np.uint8)
    assert read_header(encode(grey)) == JPEGHeader(30, 50, 1, 8, 0xC0)
    assert read_header(encode(np.zeros((30, 50, 3), np.uint8))).components == 3
    progressive = read_header(encode(grey, params=(cv2.IMWRITE_JPEG_PROGRESSIVE, 1)))
    assert progressive.frame == 0xC2 and reducible(progressive)


@pytest.mark.parametrize("orientation", [1, 3, 5, 6, 7, 8, 0, 9])
def test_read_header_gives_the_displayed_size_after_the_exif_orientation_as_opencv(orientation):
    jpeg = encode(np.zeros((20, 40), np.uint8))
    xmp = segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00<x/>")  # an APP1 that is not EXIF comes first
    for data in (with_segments(jpeg, exif(orientation)), with_segments(jpeg, xmp, exif(orientation), exif(1))):
        header = read_header(data)
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_ANYCOLOR)
        assert (header.rows, header.columns) == decoded.shape == ((40, 20) if orientation in (5, 6, 7, 8) else (20, 40))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        encode(np.zeros((8, 8), np.uint8), ".png", ()),
        b"\xff\xd8" + segment(0xDA, b"\x00" * 8),  # a scan before any frame header
        b"\xff\xd8\xff\xe0\x00\x40JFIF",  # a segment longer than the data
        b"\xff\xd8" + segment(0xC0, struct.pack(">BHHB", 8, 0, 64, 1)),  # height 0: given by a later DNL marker
        b"\xff\xd8\x00\x00\x00\x00",
    ],
)
def test_read_header_rejects_other_data(data):
    with pytest.raises(ValueError):
        read_header(data)


def test_only_8_bit_grey_or_three_component_huffman_dct_jpegs_are_reducible():
    jpeg = encode(np.zeros((16, 16), np.uint8))
    offset = frame_offset(jpeg)
    twelve_bit = jpeg[: offset + 4] + b"\x0c" + jpeg[offset + 5 :]
    lossless = jpeg[: offset + 1] + b"\xc3" + jpeg[offset + 2 :]
    cmyk = io.BytesIO()
    Image.new("CMYK", (16, 16)).save(cmyk, "JPEG")
    assert reducible(read_header(jpeg))
    assert read_header(twelve_bit).precision == 12 and not reducible(read_header(twelve_bit))
    assert read_header(lossless).frame == 0xC3 and not reducible(read_header(lossless))
    assert read_header(cmyk.getvalue()).components == 4 and not reducible(read_header(cmyk.getvalue()))


# ------------------------------------------------------------------------------------------ level rule


@pytest.mark.parametrize(
    ("shape", "target", "margin", "max_level", "expected"),
    [
        ((2000, 1600), (224, 224), 2.0, 2, 2),  # 500 x 400 for a 224 x 179 fit
        ((1500, 1200), (224, 224), 2.0, 2, 1),  # 375 x 300 is not twice 224 x 179
        ((1024, 1024), (224, 224), 2.0, 2, 1),
        ((400, 300), (224, 224), 2.0, 2, 0),  # 200 x 150 is not twice the fit
        ((200, 150), (224, 224), 2.0, 2, 0),  # the target is larger than the image
        ((2345, 1877), (224, 224), 2.0, 2, 1),  # at 1/4 the partial last block would move the edge 0.29 pixel
        ((3000, 2400), (224, 224), 2.0, 3, 2),  # 1/8 (375 x 300) is not twice the fit
        ((4000, 3200), (224, 224), 2.0, 3, 3),  # 1/8 (500 x 400) only when allowed and large enough
        ((2000, 1600), (224, 224), 1.0, 3, 3),  # down to just the fitted size: 250 x 200
        ((2500, 2048), (224, 224), 1.0, 3, 2),  # 313 x 256 would fit to 224 x 183 instead of 224 x 184
        ((2000, 1600), 224, 2.0, 2, 2),  # an int target is square
        ((1600, 2000), (256, 128), 2.0, 2, 2),  # fits 102 x 128: twice that, not twice the target
        ((1600, 2000), (256, 256), 2.0, 2, 1),  # fits 205 x 256: 400 rows at 1/4 are not twice 205
    ],
)
def test_reduction_level_rule(shape, target, margin, max_level, expected):
    assert reduction_level(shape, target, margin, max_level) == expected


def test_the_partial_block_limit_is_in_output_pixels():
    assert reduction_level((2345, 1877), TARGET, max_shift=0.3) == 2
    assert reduction_level((2345, 1877), TARGET, max_shift=0.05) == 0  # even 1/2 moves the edge 0.096 pixel
    assert reduction_level((2344, 1876), TARGET, max_shift=0.0) == 2  # multiples of 4 are not stretched


def test_reduced_shape_rounds_up_as_libjpeg():
    jpeg = encode(np.zeros((1001, 803), np.uint8))
    for level in (1, 2, 3):
        decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), jpeg_reduce._FLAGS[level])
        expected = (math.ceil(1001 / 2**level), math.ceil(803 / 2**level))
        assert decoded.shape == reduced_shape((1001, 803), level) == expected


def test_decode_reduced_is_opencvs_reduced_grey_decode_and_checks_its_shape():
    pixels = np.random.default_rng(0).integers(0, 256, (64, 48, 3), dtype=np.uint8)
    jpeg = encode(pixels)
    header = read_header(jpeg)
    expected = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_4)
    np.testing.assert_array_equal(decode_reduced(jpeg, header, 2), expected)
    with pytest.raises(ValueError, match="expected"):
        decode_reduced(jpeg, header._replace(rows=65), 1)
    with pytest.raises(ValueError, match="cannot decode"):
        decode_reduced(jpeg, header._replace(precision=12), 1)
    with pytest.raises(ValueError, match="cannot decode"):
        decode_reduced(jpeg, header, 0)


# ------------------------------------------------------------------------------- read_raster_grayscale


def test_reduced_read_is_within_tolerance_of_full_decode_and_resize(radiographs):
    """PSNR >= 50 dB and max abs difference <= 0.03 of the [0, 1] image after resizing both to 224 x 224.

    libjpeg's reduced image is the block-aligned box mean of the full one: resizing it differs from resizing
    the full image in one step by how the two area filters weigh pixels at edges. 50 dB is an RMS error of
    0.3 % of the range, under one 8-bit grey level.
    """
    for path, level in radiographs:
        full, meta = read_raster_grayscale(path)
        reduced, reduced_meta = read_raster_grayscale(path, TARGET)
        assert reduced_meta["reduce_level"] == level and meta["reduce_level"] == 0, path
        assert reduced.shape == reduced_shape(full.shape, level) and reduced.dtype == np.float32
        a, b = (aspect_resize_pad(image[None], TARGET, "center") for image in (full, reduced))
        assert psnr(a, b) >= MIN_PSNR_DB, path
        assert np.abs(a - b).max() <= MAX_ABS_DIFF, path


def test_metadata_of_a_reduced_read_is_the_full_reads_but_reduce_level(radiographs):
    for path, _ in radiographs:
        _, meta = read_raster_grayscale(path)
        _, reduced_meta = read_raster_grayscale(path, TARGET)
        assert {**reduced_meta, "reduce_level": 0} == meta  # rows, columns, channels of the stored image
    assert meta["channels"] == 3 and meta["bits_stored"] == 8 and meta["format"] == "jpeg"


def test_a_rotated_jpeg_is_reduced_in_its_displayed_orientation(tmp_path, radiographs):
    path = tmp_path / "rotated.jpg"
    path.write_bytes(with_segments(radiographs[0][0].read_bytes(), exif(6)))
    full, meta = read_raster_grayscale(path)
    reduced, reduced_meta = read_raster_grayscale(path, TARGET)
    assert full.shape == (1600, 2000) and (reduced_meta["rows"], reduced_meta["columns"]) == (1600, 2000)
    assert {**reduced_meta, "reduce_level": 0} == meta
    assert reduced_meta["reduce_level"] == 2 and reduced.shape == (400, 500)
    a, b = (aspect_resize_pad(image[None], TARGET, "center") for image in (full, reduced))
    assert psnr(a, b) >= MIN_PSNR_DB


def test_png_is_never_reduced(tmp_path, radiographs):
    path = tmp_path / "a.png"
    pixels = np.rint(read_raster_grayscale(radiographs[0][0])[0] * 255).astype(np.uint8)
    path.write_bytes(encode(pixels, ".png", ()))
    image, meta = read_raster_grayscale(path, TARGET)
    assert meta["reduce_level"] == 0 and meta["format"] == "png"
    np.testing.assert_array_equal(image, read_raster_grayscale(path)[0])


def test_a_target_not_far_smaller_than_the_image_decodes_in_full(radiographs):
    path = radiographs[0][0]
    image, meta = read_raster_grayscale(path, (1024, 1024))
    assert meta["reduce_level"] == 0
    np.testing.assert_array_equal(image, read_raster_grayscale(path)[0])


def test_an_opencv_refusal_falls_back_to_the_full_decode(monkeypatch, radiographs):
    path = radiographs[0][0]
    imdecode, reduced = cv2.imdecode, set(jpeg_reduce._FLAGS.values())

    def refuse(buf, flags):
        return None if flags in reduced else imdecode(buf, flags)

    monkeypatch.setattr(jpeg_reduce.cv2, "imdecode", refuse)
    image, meta = read_raster_grayscale(path, TARGET)
    assert meta["reduce_level"] == 0
    np.testing.assert_array_equal(image, read_raster_grayscale(path)[0])


def test_unusual_jpegs_are_decoded_in_full(tmp_path):
    cmyk = tmp_path / "cmyk.jpg"
    Image.fromarray(np.full((600, 480, 4), 60, np.uint8), "CMYK").save(cmyk, "JPEG")
    image, meta = read_raster_grayscale(cmyk, (64, 64))
    assert meta["reduce_level"] == 0 and image.shape == (600, 480)
    np.testing.assert_array_equal(image, read_raster_grayscale(cmyk)[0])


def test_a_progressive_jpeg_is_reduced(tmp_path, radiographs):
    pixels = np.rint(read_raster_grayscale(radiographs[0][0])[0] * 255).astype(np.uint8)
    path = tmp_path / "progressive.jpg"
    path.write_bytes(encode(pixels, params=(cv2.IMWRITE_JPEG_QUALITY, 95, cv2.IMWRITE_JPEG_PROGRESSIVE, 1)))
    full, _ = read_raster_grayscale(path)
    reduced, meta = read_raster_grayscale(path, TARGET)
    assert meta["reduce_level"] == 2
    a, b = (aspect_resize_pad(image[None], TARGET, "center") for image in (full, reduced))
    assert psnr(a, b) >= MIN_PSNR_DB


@pytest.mark.parametrize("end", [-2, 1000, 200_000])
def test_a_truncated_jpeg_still_raises_with_a_target(tmp_path, radiographs, end):
    path = tmp_path / "cut.jpg"
    path.write_bytes(radiographs[0][0].read_bytes()[:end])
    with pytest.raises(ImageReadError, match=r"cut\.jpg.*truncated"):
        read_raster_grayscale(path, TARGET)


def test_8_bit_values_are_divided_by_255_in_float32(tmp_path):
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    path = tmp_path / "a.png"
    path.write_bytes(encode(pixels, ".png", ()))
    image, _ = read_raster_grayscale(path)
    assert image.dtype == np.float32
    np.testing.assert_array_equal(image, pixels.astype(np.float32) / np.float32(255))
