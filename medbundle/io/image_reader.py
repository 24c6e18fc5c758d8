"""MONAI ``ImageReader`` for 2D grayscale images stored as PNG, JPEG or DICOM.

Public chest X-ray and skin data sets mix 8-bit and 16-bit PNGs, JPEGs (often saved as RGB
with three equal channels) and DICOMs in one folder. This reader gives all of them one
representation, the (H, W) float32 image in [0, 1] that :class:`MammoDicomReader` produces,
so a single transform chain serves every file.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
from monai.config import PathLike
from monai.utils import ensure_tuple

from medbundle.io.dicom import DicomReadError, read_dicom
from medbundle.io.pixel_reader import PixelSpaceReader

__all__ = ["IMAGE_SUFFIXES", "GrayscaleReader", "ImageReadError"]

# file suffixes GrayscaleReader reads, compared lower-case; the data modules list folders with them
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm", ".dicom")
_DICOM_SUFFIXES = (".dcm", ".dicom")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SIGNATURE = b"\xff\xd8\xff"
_WHAT_TO_DO = (
    "Re-export the file or remove it from the dataset, "
    "or set skip_bad_images: true to skip and count unreadable images."
)


class ImageReadError(RuntimeError):
    """Raised when an image file cannot be read or decoded.

    The message names the file, the reason and what to do; the underlying exception, if any,
    is chained as ``__cause__``.
    """


class GrayscaleReader(PixelSpaceReader):
    """Load a PNG, JPEG or DICOM file as a (H, W) float32 image in [0, 1] for MONAI's ``LoadImage``.

    - DICOM (``.dcm``, ``.dicom``): :func:`~medbundle.io.dicom.read_dicom` (VOI windowing,
      MONOCHROME1 inverted), so the array equals ``read_dicom(path)[0]``.
    - PNG and JPEG: decoded by OpenCV from bytes read by Python (``cv2.imread`` fails on
      non-ASCII paths on Windows). EXIF orientation is applied as image viewers do
      (``IMREAD_ANYDEPTH | IMREAD_ANYCOLOR``; ``IMREAD_UNCHANGED`` would ignore it and
      return a rotated image). Colour images become grayscale (ITU-R BT.601 luma).
      8-bit values are divided by 255. 16-bit values are divided by ``2**b - 1`` for the ``b``
      significant bits the PNG declares in its ``sBIT`` chunk, or without one the smallest ``b``
      (8 <= b <= 16) that holds the image maximum: detectors store 10-, 12- or 14-bit data in
      16-bit PNGs, and dividing by 65535 would leave such images nearly black, while per-image
      min-max scaling would give every image its own contrast. A power-of-two range maps the
      same stored value to the same intensity for all images of a bit depth (as long as an
      image uses more than the lower half of its range, which radiographs do).

    The array keeps the file's (rows, columns) orientation (no axis swap, unlike MONAI's
    ``PILReader``) and is marked channel-less, so ``EnsureChannelFirstd`` yields (1, H, W).
    The affine is the 3x3 identity: the network works in pixel space.

    Decoding happens in ``get_data`` (see :class:`~medbundle.io.pixel_reader.PixelSpaceReader`),
    so a broken file fails loudly with :class:`ImageReadError`.
    A truncated file is an error even where OpenCV would return a partially decoded image
    with only a logged warning (OpenCV 4 for JPEG): a PNG must reach its IEND chunk and a
    JPEG its end-of-image marker.

    Every format gives the metadata keys ``filename``, ``format`` ("png", "jpeg", "dicom"),
    ``bits_stored``, ``rows``, ``columns`` and ``inverted`` with the same types, so a batch that
    mixes formats collates (MONAI keeps the keys common to all items). DICOM files add the
    technical fields of ``read_dicom`` (None replaced by ``"none"``), raster files ``channels``
    (as stored). Nothing identifies the patient.

    Example::

        LoadImaged(keys="image", reader=GrayscaleReader, image_only=True)
    """

    def verify_suffix(self, filename: Sequence[PathLike] | PathLike) -> bool:
        """Return True when every file name ends in one of ``IMAGE_SUFFIXES`` (case-insensitive).

        Only the last suffix counts: ``scan.dcm.png`` is a PNG.

        Args:
            filename: file name or a sequence of file names.
        """
        return all(_suffix(name) in IMAGE_SUFFIXES for name in ensure_tuple(filename))

    def decode(self, filename: str) -> tuple[np.ndarray, dict]:
        """The image and its technical fields, through ``read_dicom`` for DICOM and OpenCV otherwise.

        Raises:
            ImageReadError: the file is missing, empty, truncated, corrupt or not an image.
        """
        if _suffix(filename) in _DICOM_SUFFIXES:
            try:
                image, fields = read_dicom(filename)
            except DicomReadError as exc:  # its message already names the file and says what to do
                raise ImageReadError(str(exc)) from exc
            return image, {"format": "dicom", **fields}
        return _read_raster(filename)


def _read_raster(path: str | os.PathLike) -> tuple[np.ndarray, dict]:
    """Read a PNG or JPEG file as a (H, W) float32 grayscale image in [0, 1] (see :class:`GrayscaleReader`).

    Args:
        path: the image file; its content, not its suffix, decides how it is decoded.

    Returns:
        ``(image, meta)`` with meta ``filename``, ``format`` ("png", "jpeg" or "other"),
        ``bits_stored`` (8, or for 16-bit files the ``b`` of the ``2**b - 1`` divisor),
        ``rows``, ``columns``, ``inverted`` (always False) and ``channels`` (as stored).

    Raises:
        ImageReadError: the file is missing, empty, truncated, corrupt or not an image.
    """
    filename = os.fspath(path)
    try:
        data = Path(filename).read_bytes()
    except OSError as exc:
        raise ImageReadError(f"Cannot read image file '{filename}': {exc}. {_WHAT_TO_DO}") from exc
    header = data[:8]
    image_format = "png" if header == _PNG_SIGNATURE else "jpeg" if header.startswith(_JPEG_SIGNATURE) else "other"
    reason = _truncation(data, image_format) if data else "the file is empty"
    decoded = None
    if reason is None:
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
        if decoded is None:
            reason = "OpenCV cannot decode it (not a PNG/JPEG image, or corrupt)"
        elif decoded.dtype not in (np.uint8, np.uint16) or decoded.ndim not in (2, 3):
            reason = f"unsupported pixel data ({decoded.dtype}, shape {decoded.shape}); only 8- and 16-bit images"
    if reason is not None:
        raise ImageReadError(f"Cannot read image file '{filename}': {reason}. {_WHAT_TO_DO}")
    channels = 1 if decoded.ndim == 2 else decoded.shape[2]
    gray = cv2.cvtColor(decoded, cv2.COLOR_BGR2GRAY) if decoded.ndim == 3 else decoded
    significant = _png_significant_bits(data) if image_format == "png" else None
    bits = 8 if gray.dtype == np.uint8 else significant or min(16, max(8, int(gray.max()).bit_length()))
    image = gray.astype(np.float32) / np.float32(2**bits - 1)
    meta = {
        "filename": filename,
        "format": image_format,
        "bits_stored": bits,
        "rows": int(image.shape[0]),
        "columns": int(image.shape[1]),
        "inverted": False,
        "channels": channels,
    }
    return image, meta


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


def _png_chunks(data: bytes) -> Iterator[tuple[bytes, memoryview]]:
    """``(type, data)`` of each complete PNG chunk (4-byte length, 4-byte type, data, 4-byte CRC), in order.

    The data are views, not copies: the image data chunks of a radiograph are megabytes.
    """
    view = memoryview(data)
    position = len(_PNG_SIGNATURE)
    while position + 8 <= len(data):
        length, chunk_type = struct.unpack(">I4s", data[position : position + 8])
        if position + 12 + length > len(data):
            return
        yield chunk_type, view[position + 8 : position + 8 + length]
        position += 12 + length


def _suffix(filename: PathLike) -> str:
    """Lower-case last suffix of a file name, e.g. ``".png"``."""
    return Path(os.fspath(filename)).suffix.lower()


def _truncation(data: bytes, image_format: str) -> str | None:
    """Describe why PNG or JPEG ``data`` is incomplete, or return None when it is complete.

    PNG: walk the chunks (4-byte length, 4-byte type, data, 4-byte CRC) until IEND; a chunk
    running past the end or a missing IEND means the file was cut. JPEG: the last start-of-scan
    marker must be followed by the end-of-image marker; entropy-coded data cannot contain
    0xFFD9 (0xFF bytes are stuffed), and searching after the last scan skips the end-of-image
    marker of an embedded EXIF thumbnail. Other content is left to the decoder.

    Args:
        data: the file's bytes.
        image_format: "png", "jpeg" or "other", from the file signature.
    """
    if image_format == "png":
        if any(chunk_type == b"IEND" for chunk_type, _ in _png_chunks(data)):
            return None
        return "the PNG data ends before its IEND chunk (file truncated)"
    if image_format == "jpeg" and data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda"):
        return "the JPEG data ends before its end-of-image marker (file truncated)"
    return None

