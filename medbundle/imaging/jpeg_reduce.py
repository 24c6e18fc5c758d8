"""Decode a JPEG at 1/2 or 1/4 of its size when the image is to be shrunk further anyway.

libjpeg scales while it decodes: at 1/N (N = 2, 4, 8) it runs an N-times smaller inverse DCT on each
8 x 8 block (1/8 keeps only the block's mean) and skips the colour conversion and upsampling of the
pixels it does not produce. The entropy decoding, the rest of the work, is the same, so a 2 MP
radiograph decodes about 30 % faster and the float conversion and resize that follow run on 4-16
times fewer pixels. OpenCV exposes this as ``cv2.IMREAD_REDUCED_GRAYSCALE_{2,4,8}``, which returns the
``ceil(rows / N) x ceil(columns / N)`` luma plane of a grey or YCbCr JPEG, with EXIF orientation
applied as in a full decode.

PNG has no such mode (OpenCV decodes it fully and then resizes), so only JPEG is reduced.
:func:`medbundle.imaging.decode.read_raster_grayscale` uses this module and takes its full decode
whenever :func:`read_header` or :func:`decode_reduced` refuses. The header is parsed here, without
Pillow, so that :mod:`medbundle.deploy` (which needs only numpy and OpenCV) reduces exactly as the
bundle does.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import NamedTuple

import cv2
import numpy as np

from medbundle.imaging.resize import aspect_fit

__all__ = [
    "MAX_REDUCE_LEVEL",
    "MAX_SHIFT",
    "REDUCE_MARGIN",
    "JPEGHeader",
    "decode_reduced",
    "read_header",
    "reduced_shape",
    "reducible",
    "reduction_level",
]

#: how many times the fitted size (on both axes) the reduced image must stay; see :func:`reduction_level`
REDUCE_MARGIN = 2.0
#: the most halvings :func:`reduction_level` picks: 2 (1/4); see there why not 3 (1/8)
MAX_REDUCE_LEVEL = 2
#: the most output pixels a reduced image's partial last block may move its far edge by; see :func:`reduction_level`
MAX_SHIFT = 0.15
#: OpenCV's reduced grey decode for each reduction level (halvings)
_FLAGS = {1: cv2.IMREAD_REDUCED_GRAYSCALE_2, 2: cv2.IMREAD_REDUCED_GRAYSCALE_4, 3: cv2.IMREAD_REDUCED_GRAYSCALE_8}
#: start-of-frame markers of the Huffman-coded DCT processes libjpeg scales: baseline, extended, progressive
_SCALABLE_FRAMES = (0xC0, 0xC1, 0xC2)
#: every start-of-frame marker (0xC4 DHT, 0xC8 JPG and 0xCC DAC share the range but are not frames)
_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_APP1, _SOS, _EOI, _TEM = 0xE1, 0xDA, 0xD9, 0x01
_RST = frozenset(range(0xD0, 0xD8))
_ORIENTATION_TAG = 0x0112
_EXIF = b"Exif\x00\x00"


class JPEGHeader(NamedTuple):
    """What a JPEG's markers before its first scan say about the image."""

    #: full-resolution size as displayed: after an EXIF orientation that swaps the axes (5-8)
    rows: int
    columns: int
    #: 1 (grey), 3 (YCbCr or RGB) or 4 (CMYK)
    components: int
    #: bits per sample: 8, or 12/16 for the rare extended and lossless files
    precision: int
    #: the start-of-frame marker's second byte: 0xC0 baseline, 0xC1 extended, 0xC2 progressive, 0xC3 lossless, ...
    frame: int


def read_header(data: bytes) -> JPEGHeader:
    """Parse the frame header (SOFn) and the orientation of the first EXIF (APP1) segment, as OpenCV reads it.

    Only the segments before the frame header are visited (a few hundred bytes to the size of an EXIF
    thumbnail), not the entropy-coded data.

    Args:
        data: the JPEG file's bytes.

    Raises:
        ValueError: the data do not start with SOI, a segment is cut or malformed, or the first scan or
            the end comes before a frame header, or the frame header gives no size.
    """
    if not data.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG (no start-of-image marker)")
    position, transposed, exif_seen = 2, False, False
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            raise ValueError(f"no marker at byte {position} of the JPEG header")
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        if marker == _TEM or marker in _RST:  # markers without a length
            position += 2
            continue
        if marker in (_SOS, _EOI):
            break
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        body = data[position + 4 : position + 2 + length]
        if length < 2 or len(body) < length - 2:
            raise ValueError(f"JPEG segment 0xFF{marker:02X} at byte {position} is cut or has a bad length")
        if marker == _APP1 and not exif_seen and body.startswith(_EXIF):  # OpenCV reads the first EXIF segment only
            exif_seen, transposed = True, _exif_orientation(body[len(_EXIF) :]) in (5, 6, 7, 8)
        elif marker in _FRAMES:
            if len(body) < 6:
                raise ValueError("the JPEG frame header is cut")
            precision, rows, columns, components = struct.unpack(">BHHB", body[:6])
            if rows == 0 or columns == 0:  # a height given later by a DNL marker
                raise ValueError(f"the JPEG frame header gives no size ({rows} x {columns})")
            rows, columns = (columns, rows) if transposed else (rows, columns)
            return JPEGHeader(rows, columns, components, precision, marker)
        position += 2 + length
    raise ValueError("no JPEG frame header before the first scan")


def _exif_orientation(tiff: bytes) -> int:
    """The Orientation (1-8) in the first image file directory of EXIF's TIFF structure, or 1 without a valid one."""
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None:
        return 1
    try:
        (ifd,) = struct.unpack(order + "I", tiff[4:8])
        (count,) = struct.unpack(order + "H", tiff[ifd : ifd + 2])
        for entry in range(ifd + 2, ifd + 2 + 12 * count, 12):
            tag, _, _, value = struct.unpack(order + "HHIH", tiff[entry : entry + 10])
            if tag == _ORIENTATION_TAG:
                return value if 1 <= value <= 8 else 1
    except struct.error:  # an IFD running past the segment
        return 1
    return 1


def reducible(header: JPEGHeader) -> bool:
    """Whether libjpeg can decode the file at a reduced size into grey levels equal to a full decode's luma.

    8-bit grey or three-component (YCbCr, or RGB) images of a Huffman-coded DCT process. CMYK, 12-bit and
    lossless JPEGs, which OpenCV converts itself or libjpeg cannot scale, are decoded at full size.
    """
    return header.precision == 8 and header.components in (1, 3) and header.frame in _SCALABLE_FRAMES


def reduced_shape(shape: Sequence[int], level: int) -> tuple[int, int]:
    """``(rows, columns)`` of an image decoded `level` halvings short of full size (libjpeg rounds up)."""
    return math.ceil(shape[0] / 2**level), math.ceil(shape[1] / 2**level)


def reduction_level(
    shape: Sequence[int],
    target_size: Sequence[int] | int,
    margin: float = REDUCE_MARGIN,
    max_level: int = MAX_REDUCE_LEVEL,
    max_shift: float = MAX_SHIFT,
) -> int:
    """The most halvings (1: 1/2, 2: 1/4, 3: 1/8) to decode an image at, for the aspect resize to `target_size`.

    The image is to be fitted into `target_size` keeping its aspect ratio
    (:func:`~medbundle.imaging.resize.aspect_resize_pad`: one scale factor, then padding), so it shrinks
    to ``aspect_fit(shape, target_size)``. A level qualifies when the reduced image

    - is still at least `margin` times that fitted size on both axes: libjpeg's reduced image is the
      block-aligned box mean of the full one, and a final resize by 2 or more averages away most of
      the difference to resizing the full image in one step;
    - fits to the same size (with ``ceil`` rounding of the reduced size the two can differ by a pixel,
      which would move the padding);
    - is stretched by at most `max_shift` output pixels: where a side is not a multiple of ``2**level``
      the last reduced row (column) stands for a partial block, so the reduced image spans up to
      ``2**level - 1`` source pixels more than the image, and the resize moves its far edge by that
      many pixels times the scale.

    On demo radiographs enlarged to 1400-3000 px (JPEG quality 95) and fitted into 128-512 px, the defaults
    keep the output within 0.03 (max abs) and above 50 dB PSNR of full decode + the same resize; for 224 px
    they reduce 92 % of random sizes (a fifth of them to 1/4; a 2000 x 1600 image too), for 384 px 45 %.
    Decoding down to just the fitted size (margin 1) gives up to 0.03 at 1/4 and 0.07 (39 dB) at 1/8 on
    sizes that are multiples of 8, and a shift limit of 0.25 (1) pixel up to 0.045 (0.055). 1/8 would save
    a further ~0.5 ms per 2 MP image over 1/4 and needs a 3600 px source for a 224 px target with the
    margin. Burned-in text and markers, sharper than anatomy, differ by up to 0.2 at a few edge pixels
    (39 dB on a synthetic page of text and rectangles).

    Args:
        shape: ``(rows, columns)`` of the full-size image, as displayed.
        target_size: ``(rows, columns)`` the image is fitted into; an int for both.
        margin: how many times the fitted size the reduced image must stay; larger keeps more resolution.
        max_level: the most halvings, up to 3.
        max_shift: the most output pixels the partial last block may move the far edge by.

    Returns:
        0 (decode at full size) up to `max_level`.
    """
    fitted = aspect_fit(shape, target_size)[0]
    for level in range(min(max_level, max(_FLAGS)), 0, -1):
        reduced = reduced_shape(shape, level)
        large = all(size >= margin * fit for size, fit in zip(reduced, fitted))
        shifts = ((2**level * size - full) * fit / full for size, full, fit in zip(reduced, shape, fitted))
        if large and aspect_fit(reduced, target_size)[0] == fitted and max(shifts) <= max_shift:
            return level
    return 0


def decode_reduced(data: bytes, header: JPEGHeader, level: int) -> np.ndarray:
    """Decode a JPEG `level` halvings short of full size (1-3) as its uint8 grey (luma) levels.

    Args:
        data: the JPEG file's bytes, checked complete (the decoder does not say when it is cut).
        header: its :func:`read_header`, which must be :func:`reducible`.
        level: halvings, from :func:`reduction_level`.

    Returns:
        The (H, W) uint8 image of :func:`reduced_shape` ``((header.rows, header.columns), level)``.

    Raises:
        ValueError: the header is not reducible, the level is not 1-3, or OpenCV decodes nothing or an image
            of another shape (e.g. it read another EXIF orientation).
    """
    if not reducible(header) or level not in _FLAGS:
        raise ValueError(f"cannot decode {header} at reduction level {level}")
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), _FLAGS[level])
    expected = reduced_shape((header.rows, header.columns), level)
    if decoded is None or decoded.shape != expected:
        got = None if decoded is None else decoded.shape
        raise ValueError(f"OpenCV decoded {got} at reduction level {level}, expected {expected}")
    return decoded
