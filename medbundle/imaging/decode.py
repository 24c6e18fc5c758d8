"""Decode 2D image files into float32 arrays in [0, 1], without MONAI or torch.

These are the decoders of medbundle's MONAI readers, which wrap them
(:class:`~medbundle.io.GrayscaleReader`, :class:`~medbundle.io.RGBReader`; DICOM goes through
:func:`medbundle.io.dicom.read_dicom`), so a bundle and :mod:`medbundle.deploy` read every file the
same way:

- :func:`read_raster_grayscale`: a PNG, JPEG or TIFF file as a (H, W) grey image.
- :func:`decode_rgb`: PNG, JPEG or TIFF bytes as a (H, W, 3) RGB image.

Files of any supported layout (DICOM, HDF5 members) are read by :mod:`medbundle.io.image_file`, which
dispatches to these decoders and to :mod:`medbundle.io.dicom`.

PNG, JPEG and TIFF (8- or 16-bit, as microscopes and slide scanners write them) data are decoded by OpenCV from bytes read by Python (``cv2.imread`` fails on
non-ASCII paths on Windows), with EXIF orientation applied as image viewers do
(``IMREAD_ANYDEPTH | IMREAD_ANYCOLOR``; ``IMREAD_UNCHANGED`` would ignore it and return a rotated
image). A truncated file is an error even where OpenCV would return a partially decoded image with
only a logged warning (OpenCV 4 for JPEG): a PNG must reach its IEND chunk and a JPEG its
end-of-image marker. pydicom and h5py are imported only when a DICOM file or an HDF5 member is read.

Given the size the image is fitted into next (a bundle's ``image_size``), :func:`read_raster_grayscale` decodes a JPEG
at 1/2 or 1/4 of its size (:mod:`medbundle.imaging.jpeg_reduce`) and a JPEG 2000 DICOM at half resolution
(:mod:`medbundle.imaging.j2k_reduce`) where that still leaves enough pixels; PNG is always decoded in full.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from medbundle.imaging import jpeg_reduce

__all__ = [
    "DICOM_SUFFIXES",
    "IMAGE_SUFFIXES",
    "RGB_SUFFIXES",
    "ImageReadError",
    "decode_rgb",
    "read_file_bytes",
    "read_raster_grayscale",
    "suffix",
]

# file suffixes GrayscaleReader reads, compared lower-case; the data modules list folders with them
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".dcm", ".dicom")
#: DICOM file suffixes, compared lower-case
DICOM_SUFFIXES = (".dcm", ".dicom")
#: suffixes of the image files :func:`~medbundle.io.image_file.read_rgb` reads, compared lower-case (besides HDF5 members)
RGB_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*")  # little- and big-endian byte order
WHAT_TO_DO = (
    "Re-export the file or remove it from the dataset, "
    "or set skip_bad_images: true to skip and count unreadable images."
)
logger = logging.getLogger(__name__)


class ImageReadError(RuntimeError):
    """Raised when an image file cannot be read or decoded.

    The message names the file, the reason and what to do; the underlying exception, if any,
    is chained as ``__cause__``.
    """


def suffix(filename: str | os.PathLike) -> str:
    """Lower-case last suffix of a file name, e.g. ``".png"``."""
    return Path(os.fspath(filename)).suffix.lower()


def read_raster_grayscale(
    path: str | os.PathLike, target_size: Sequence[int] | int | None = None
) -> tuple[np.ndarray, dict]:
    """Read a PNG, JPEG or TIFF file as a (H, W) float32 grayscale image in [0, 1].

    Colour images become grayscale (ITU-R BT.601 luma). 8-bit values are divided by 255. 16-bit
    values are divided by ``2**b - 1`` for the ``b`` significant bits the PNG declares in its
    ``sBIT`` chunk, or without one the smallest ``b`` (8 <= b <= 16) that holds the image maximum:
    detectors store 10-, 12- or 14-bit data in 16-bit PNGs, and dividing by 65535 would leave such
    images nearly black, while per-image min-max scaling would give every image its own contrast.

    With `target_size`, an 8-bit grey or colour JPEG is decoded by libjpeg at 1/2 or 1/4 of its size where
    the reduced image is still at least twice the size it is fitted to
    (:func:`~medbundle.imaging.jpeg_reduce.reduction_level`): a 2000 x 1600 radiograph bound for 224 x 224
    is decoded at 500 x 400. After the aspect resize the result stays within 0.03 (max abs, 50 dB PSNR) of
    the full decode's on radiographs. A colour JPEG then gives libjpeg's luma, the same BT.601 weights
    without the round trip through RGB. PNG has no reduced decode; PNGs, 12-bit, lossless and CMYK JPEGs,
    and any file the reduced decoder refuses are decoded in full.

    Args:
        path: the image file; its content, not its suffix, decides how it is decoded.
        target_size: ``(rows, columns)`` the image is fitted into next, keeping its aspect ratio
            (:func:`~medbundle.imaging.resize.aspect_resize_pad`); an int for both. None: full size.

    Returns:
        ``(image, meta)`` with meta ``filename``, ``format`` ("png", "jpeg", "tiff" or "other"),
        ``bits_stored`` (8, or for 16-bit files the ``b`` of the ``2**b - 1`` divisor),
        ``rows``, ``columns`` (of the full-size image), ``inverted`` (always False), ``channels``
        (as stored) and ``reduce_level`` (halvings: the image is
        ``ceil(rows / 2**reduce_level) x ceil(columns / 2**reduce_level)``).

    Raises:
        ImageReadError: the file is missing, empty, truncated, corrupt or not an image.
    """
    filename = os.fspath(path)
    source = f"image file '{filename}'"
    data = read_file_bytes(filename, source)
    reduced = _decode_reduced_jpeg(data, filename, target_size) if target_size is not None else None
    if reduced is None:
        decoded, image_format = _decode(data, source, empty="the file is empty")
        channels = 1 if decoded.ndim == 2 else decoded.shape[2]
        gray = cv2.cvtColor(decoded, cv2.COLOR_BGR2GRAY) if decoded.ndim == 3 else decoded
        (rows, columns), level = gray.shape, 0
    else:
        gray, header, level = reduced
        image_format, channels, rows, columns = "jpeg", header.components, header.rows, header.columns
    significant = _png_significant_bits(data) if image_format == "png" else None
    bits = 8 if gray.dtype == np.uint8 else significant or min(16, max(8, int(gray.max()).bit_length()))
    image = gray.astype(np.float32)
    np.divide(image, np.float32(2**bits - 1), out=image)
    meta = {
        "filename": filename,
        "format": image_format,
        "bits_stored": bits,
        "rows": int(rows),
        "columns": int(columns),
        "inverted": False,
        "channels": channels,
        "reduce_level": level,
    }
    return image, meta


def _decode_reduced_jpeg(
    data: bytes, filename: str, target_size: Sequence[int] | int
) -> tuple[np.ndarray, jpeg_reduce.JPEGHeader, int] | None:
    """The uint8 grey image of a complete JPEG decoded at its reduction level for `target_size`, its header and
    that level; None, so that the caller decodes in full (and reports what is wrong), when `data` is not a
    complete JPEG, its header is unusual or not reducible, no level qualifies, or OpenCV refuses."""
    if not data.startswith(JPEG_SIGNATURE) or _truncation(data, "jpeg") is not None:
        return None
    try:
        header = jpeg_reduce.read_header(data)
    except ValueError:
        return None
    if not jpeg_reduce.reducible(header):
        return None
    level = jpeg_reduce.reduction_level((header.rows, header.columns), target_size)
    if level == 0:
        return None
    try:
        return jpeg_reduce.decode_reduced(data, header, level), header, level
    except (ValueError, cv2.error) as exc:
        logger.debug("Reduced JPEG decode of '%s' refused (%s); decoding at full size.", filename, exc)
        return None


def decode_rgb(data: bytes, source: str) -> tuple[np.ndarray, str, int]:
    """Decode PNG, JPEG or TIFF `data` into a (H, W, 3) float32 RGB image in [0, 1].

    OpenCV's BGR order is turned into RGB, a grey image is repeated into three equal channels and
    an alpha channel is dropped. 8-bit values are divided by 255, 16-bit values by 65535.

    Args:
        data: the encoded image; its signature, not a suffix, decides how it is decoded.
        source: what the data came from, for error messages (e.g. ``"image file 'a.jpg'"``).

    Returns:
        ``(image, format, channels)``: format "png", "jpeg", "tiff" or "other" from the signature, and the
        number of channels decoded (1 or 3).

    Raises:
        ImageReadError: the data are empty, truncated, corrupt or not an 8- or 16-bit image.
    """
    decoded, image_format = _decode(data, source)
    channels = 1 if decoded.ndim == 2 else decoded.shape[2]
    rgb = cv2.cvtColor(decoded, cv2.COLOR_GRAY2RGB if channels == 1 else cv2.COLOR_BGR2RGB)
    image = rgb.astype(np.float32)
    image /= np.float32(np.iinfo(rgb.dtype).max)
    return image, image_format, channels


def read_file_bytes(filename: str, source: str) -> bytes:
    """The bytes of `filename`; `source` names it in the :class:`ImageReadError` that says what to do."""
    try:
        return Path(filename).read_bytes()
    except OSError as exc:
        raise ImageReadError(f"Cannot read {source}: {exc}. {WHAT_TO_DO}") from exc


def _decode(data: bytes, source: str, empty: str = "the data are empty") -> tuple[np.ndarray, str]:
    """OpenCV's decoded array (8- or 16-bit, 2-D or 3-D) of PNG/JPEG/TIFF `data`, and its format from the signature.

    `source` names the data in errors, `empty` is the reason given for no data.

    Raises:
        ImageReadError: the data are empty, truncated, corrupt or not an 8- or 16-bit image.
    """
    image_format = _format(data)
    reason = _truncation(data, image_format) if data else empty
    decoded = None
    if reason is None:
        pixels = _without_icc_profile(data) if image_format == "png" else data
        decoded = cv2.imdecode(np.frombuffer(pixels, np.uint8), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
        if decoded is None:
            reason = "OpenCV cannot decode it (not a PNG/JPEG/TIFF image, or corrupt)"
        elif decoded.dtype not in (np.uint8, np.uint16) or decoded.ndim not in (2, 3):
            reason = f"unsupported pixel data ({decoded.dtype}, shape {decoded.shape}); only 8- and 16-bit images"
    if reason is not None:
        raise ImageReadError(f"Cannot read {source}: {reason}. {WHAT_TO_DO}")
    return decoded, image_format


def _format(data: bytes) -> str:
    """"png", "jpeg" or "tiff" from the file signature, else "other"."""
    if data[:8] == PNG_SIGNATURE:
        return "png"
    if data.startswith(JPEG_SIGNATURE):
        return "jpeg"
    return "tiff" if data[:4] in TIFF_SIGNATURES else "other"


def _png_significant_bits(data: bytes) -> int | None:
    """The bit depth a 16-bit PNG declares in its ``sBIT`` chunk (first value), or None without one.

    A detector that stores 12-bit data in a 16-bit PNG and says so in ``sBIT`` gets the same scaling for
    every image, including an under-exposed one whose maximum stays far below 4095.
    """
    for chunk_type, body in _png_chunks(data):
        if chunk_type == b"sBIT" and body:
            return body[0] if 8 <= body[0] <= 16 else None
        if chunk_type in (b"IDAT", b"IEND"):  # sBIT must come before the image data
            return None
    return None


def _without_icc_profile(data: bytes) -> bytes:
    """PNG `data` without its ``iCCP`` chunk (a copy), or `data` itself when it has none.

    OpenCV ignores colour profiles, but libpng checks one while decoding and prints what it dislikes
    (``libpng warning: iCCP: profile 'ICC Profile': 'RGB ': RGB color space not permitted on grayscale PNG``)
    from C straight to the process's stderr, once per image and epoch: neither Python's warnings nor OpenCV's
    log level reach it, and radiographs exported with such a profile (3 of the 320 real chest X-rays in
    ``shared/data/real_cxr``) flood the training log. Without the chunk the pixels are the same.
    """
    for chunk_type, start, end in _png_chunk_spans(data):
        if chunk_type == b"iCCP":
            return data[:start] + data[end:]
        if chunk_type == b"IDAT":  # iCCP must come before the image data
            break
    return data


def _png_chunk_spans(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """``(type, start, end)`` of each complete PNG chunk (4-byte length, 4-byte type, data, 4-byte CRC), in order."""
    position = len(PNG_SIGNATURE)
    while position + 8 <= len(data):
        length, chunk_type = struct.unpack(">I4s", data[position : position + 8])
        if position + 12 + length > len(data):
            return
        yield chunk_type, position, position + 12 + length
        position += 12 + length


def _png_chunks(data: bytes) -> Iterator[tuple[bytes, memoryview]]:
    """``(type, data)`` of each complete PNG chunk, in order.

    The data are views, not copies: the image data chunks of a radiograph are megabytes.
    """
    view = memoryview(data)
    for chunk_type, start, end in _png_chunk_spans(data):
        yield chunk_type, view[start + 8 : end - 4]


def _truncation(data: bytes, image_format: str) -> str | None:
    """Describe why PNG or JPEG ``data`` is incomplete, or return None when it is complete.

    PNG: walk the chunks (4-byte length, 4-byte type, data, 4-byte CRC) until IEND; a chunk
    running past the end or a missing IEND means the file was cut. JPEG: the last start-of-scan
    marker must be followed by the end-of-image marker; entropy-coded data cannot contain
    0xFFD9 (0xFF bytes are stuffed), and searching after the last scan skips the end-of-image
    marker of an embedded EXIF thumbnail. The search for a scan starts at the last end-of-image
    marker, the file's last bytes when it is complete, instead of scanning the whole file from the
    end (0.35 ms for a 2 MP JPEG). Other content is left to the decoder.

    Args:
        data: the file's bytes.
        image_format: "png", "jpeg" or "other", from the file signature.
    """
    if image_format == "png":
        if any(chunk_type == b"IEND" for chunk_type, _ in _png_chunks(data)):
            return None
        return "the PNG data ends before its IEND chunk (file truncated)"
    if image_format == "jpeg" and data.find(b"\xff\xda", data.rfind(b"\xff\xd9") + 1) != -1:
        return "the JPEG data ends before its end-of-image marker (file truncated)"
    return None
