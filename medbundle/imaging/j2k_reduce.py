"""Decode a JPEG 2000 codestream at a reduced resolution, for images that will be shrunk anyway.

A JPEG 2000 codestream is a wavelet pyramid. OpenJPEG's ``reduce`` option stops the inverse
transform ``r`` levels short of full resolution and returns the level-``r`` low-pass band, an
image of ``ceil(rows / 2**r) x ceil(columns / 2**r)`` pixels: the entropy decoding of the skipped
high-pass code blocks, most of the work, is not done. The low-pass filters of the reversible
5/3 and irreversible 9/7 wavelets have unit DC gain, so each pixel approximates a weighted local
mean of the stored values (a slightly sharper filter than a box average, which can overshoot a
little at sharp edges; values stay clamped to the stored precision).

OpenJPEG is reached through Pillow's JPEG 2000 plugin (``Image.reduce`` set before loading), the
only installed binding that exposes ``reduce`` (pylibjpeg-openjpeg, which pydicom uses, does not).
Plain numpy and Pillow; :func:`medbundle.io.dicom.read_dicom` uses it for the JPEG 2000 transfer
syntaxes and falls back to its full decode whenever anything here refuses.
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

__all__ = [
    "MAX_REDUCE_LEVEL",
    "REDUCE_MARGIN",
    "J2KHeader",
    "decode_reduced",
    "read_header",
    "reduced_shape",
    "reduction_level",
]

#: how much longer than the target's longer side the reduced image's shorter side must stay (see :func:`reduction_level`)
REDUCE_MARGIN = 1.0
#: the most resolution levels :func:`reduction_level` skips (see there why)
MAX_REDUCE_LEVEL = 1
_SOC, _SIZ, _COD, _COC, _SOT = 0xFF4F, 0xFF51, 0xFF52, 0xFF53, 0xFF90


class J2KHeader(NamedTuple):
    """What the main header of a JPEG 2000 codestream says about its first component."""

    rows: int
    columns: int
    #: image offset on the reference grid (XOsiz, YOsiz); reduction is only done for (0, 0)
    offset: tuple[int, int]
    components: int
    #: bits per sample (1-38)
    precision: int
    signed: bool
    #: wavelet decomposition levels, the least over the COD and COC markers of the main header
    levels: int


def read_header(codestream: bytes) -> J2KHeader:
    """Parse the SIZ, COD and COC markers of a codestream's main header (up to the first tile).

    Args:
        codestream: a raw JPEG 2000 codestream (``FF4F FF51 ...``), as DICOM stores it.

    Raises:
        ValueError: the data do not start with a codestream main header holding SIZ and COD.
    """
    if len(codestream) < 4 or struct.unpack(">HH", codestream[:4]) != (_SOC, _SIZ):
        raise ValueError("not a JPEG 2000 codestream (no SOC and SIZ markers at its start)")
    position, size, levels = 2, None, []
    while position + 4 <= len(codestream):
        marker, length = struct.unpack(">HH", codestream[position : position + 4])
        body = codestream[position + 4 : position + 2 + length]
        if marker == _SOT or length < 2 or len(body) < length - 2:
            break
        if marker == _SIZ and len(body) >= 39:
            columns, rows, x0, y0 = struct.unpack(">IIII", body[2:18])
            components, ssiz = struct.unpack(">H", body[34:36])[0], body[36]
            size = (rows - y0, columns - x0, (x0, y0), components, (ssiz & 0x7F) + 1, bool(ssiz & 0x80))
        elif marker == _COD and len(body) >= 6:
            levels.append(body[5])  # Scod, progression, layers (2 bytes), MCT, then the number of levels
        elif marker == _COC and size is not None:
            index_bytes = 1 if size[3] < 257 else 2  # Ccoc is 2 bytes when Csiz >= 257
            if len(body) > index_bytes + 1:
                levels.append(body[index_bytes + 1])
        position += 2 + length
    if size is None or not levels:
        raise ValueError("the codestream's main header lacks a SIZ or COD marker")
    return J2KHeader(*size, levels=min(levels))


def reduced_shape(shape: Sequence[int], level: int) -> tuple[int, int]:
    """``(rows, columns)`` of an image with origin (0, 0) decoded `level` resolution levels short of full."""
    return math.ceil(shape[0] / 2**level), math.ceil(shape[1] / 2**level)


def _pillow_agrees(shape: Sequence[int], level: int) -> bool:
    """Whether Pillow's size for `level` (it rounds ``n / 2**level`` half up) is OpenJPEG's (which rounds up).

    Where they differ Pillow rejects the decoded image ("broken data stream"), e.g. 1841 columns at level 2.
    """
    power = 2**level
    return all(int((n + power // 2) / power) == math.ceil(n / power) for n in shape)


def reduction_level(
    shape: Sequence[int],
    target_size: Sequence[int],
    levels: int,
    margin: float = REDUCE_MARGIN,
    max_level: int = MAX_REDUCE_LEVEL,
) -> int:
    """The most resolution levels to skip so that the image still needs shrinking to reach `target_size`.

    The rule is conservative because the breast crop that comes before the resize is only known
    after decoding: the reduced image's shorter side must be at least ``margin`` times the
    target's longer side. Then a crop still needs shrinking (the resize never enlarges) unless
    it is shorter than the target along both axes: for a 1024 x 512 target, fewer than 1024 of
    the reduced rows and fewer than 512 of its columns, i.e. less than half the rows and a
    third of the columns of a 4096 x 3328 mammogram decoded at half size.

    At most `max_level` levels are skipped, one by default: the VOI window is applied after the
    reduced decode has averaged 2**level x 2**level source pixels, which changes thin structures
    that saturate the window (skin line, calcifications, labels). After the resize, one level stays
    above 40 dB PSNR against the full decode on the synthetic and real test images, two levels fall
    to 31-34 dB on synthetic ones. A level at which Pillow's size rounding disagrees with OpenJPEG's
    (see :func:`_pillow_agrees`) is skipped for the next lower one.

    Args:
        shape: ``(rows, columns)`` of the full-resolution image.
        target_size: ``(rows, columns)`` the image is resized to after cropping.
        levels: wavelet decomposition levels of the codestream, the most that can be skipped.
        margin: factor on the target's longer side; larger values keep more resolution.
        max_level: the most levels to skip whatever the sizes.

    Returns:
        0 (decode at full resolution) up to ``min(levels, max_level)``.
    """
    need = margin * max(target_size)
    for level in range(min(levels, max_level), 0, -1):
        if min(reduced_shape(shape, level)) >= need and _pillow_agrees(shape, level):
            return level
    return 0


def decode_reduced(codestream: bytes, header: J2KHeader, level: int) -> np.ndarray:
    """Decode a one-component codestream `level` resolution levels short of full, as its stored integer values.

    Pillow scales what OpenJPEG returns to its 8- or 16-bit modes (signed values offset by
    ``2**(precision - 1)``, then shifted left to fill the mode's bits); both are undone exactly.

    Args:
        codestream: the raw JPEG 2000 codestream.
        header: its :func:`read_header`.
        level: resolution levels to skip (see :func:`reduction_level`).

    Returns:
        The ``reduced_shape`` array: uint8/uint16 for unsigned data of up to 8/16 bits, int16 for signed data.

    Raises:
        ValueError: the codestream is not a one-component image of at most 16 bits at origin (0, 0), or
            Pillow returns an image of an unexpected size or mode.
        OSError: Pillow has no JPEG 2000 support, or OpenJPEG rejects the data or the level.
    """
    from PIL import Image

    if header.components != 1 or header.precision > 16 or header.offset != (0, 0):
        raise ValueError(
            f"only one-component images of up to 16 bits at origin (0, 0) are reduced, got {header.components} "
            f"component(s) of {header.precision} bits at {header.offset}"
        )
    with Image.open(io.BytesIO(codestream), formats=("JPEG2000",)) as image:
        image.reduce = level
        image.load()
        bits = {"L": 8, "I;16": 16}.get(image.mode)
        if bits is None:
            raise ValueError(f"Pillow decoded the codestream as mode {image.mode!r}, expected 'L' or 'I;16'")
        pixels = np.asarray(image)
    expected = reduced_shape((header.rows, header.columns), level)
    if pixels.shape != expected:
        raise ValueError(f"Pillow returned {pixels.shape} pixels at level {level}, expected {expected}")
    values = pixels >> (bits - header.precision)
    if not header.signed:
        return values.astype(np.uint8 if header.precision <= 8 else np.uint16)
    return (values.astype(np.int32) - 2 ** (header.precision - 1)).astype(np.int16)
