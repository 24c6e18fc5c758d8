"""MONAI ``ImageReader`` for RGB photographs: ISIC 2024 crops in an HDF5 file, or PNG/JPEG files.

Dermoscopy and skin-lesion photographs are colour images, and colour carries the diagnosis,
so unlike :class:`~medbundle.io.image_reader.GrayscaleReader` this reader keeps three channels.
The ISIC 2024 crops come as JPEG bytes inside ``train-image.hdf5`` (see :mod:`medbundle.io.hdf5`),
older ISIC releases as JPEG files in a folder; both give the same array and metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from monai.config import PathLike
from monai.utils import ensure_tuple

from medbundle.io.hdf5 import HDF5_SUFFIXES, read_hdf5_bytes, split_hdf5_member
from medbundle.io.image_reader import (
    _JPEG_SIGNATURE,
    _PNG_SIGNATURE,
    _WHAT_TO_DO,
    ImageReadError,
    _suffix,
    _truncation,
)
from medbundle.io.pixel_reader import PixelSpaceReader

__all__ = ["RGBReader"]

# suffixes RGBReader reads, compared lower-case: of the HDF5 file in a "<file>::<key>" name, or of an image file
_RASTER_SUFFIXES = (".png", ".jpg", ".jpeg")


class RGBReader(PixelSpaceReader):
    """Load an RGB image as a (H, W, 3) float32 array in [0, 1] for MONAI's ``LoadImage``.

    A name ``"<file>::<key>"`` (:func:`~medbundle.io.hdf5.hdf5_member`) is the member `key` of
    the HDF5 file `file`, holding encoded image bytes as in ISIC 2024's ``train-image.hdf5``; any
    other name is a PNG or JPEG file. Both are decoded by OpenCV from bytes (``cv2.imread`` fails
    on non-ASCII paths on Windows), with EXIF orientation applied as image viewers do
    (``IMREAD_ANYDEPTH | IMREAD_ANYCOLOR``, as in ``GrayscaleReader``). OpenCV's BGR order is
    turned into RGB, a grey image is repeated into three equal channels and an alpha channel is
    dropped. 8-bit values are divided by 255, 16-bit values by 65535.

    The array keeps the image's (rows, columns) orientation with channels last, and the metadata
    mark the last axis as the channel axis, so ``EnsureChannelFirstd`` yields (3, H, W). The
    affine is the 3x3 identity: the network works in pixel space.

    Decoding happens in ``get_data`` (see :class:`~medbundle.io.pixel_reader.PixelSpaceReader`),
    so a broken image fails loudly with :class:`~medbundle.io.image_reader.ImageReadError` naming
    the file (and the key). Truncated PNG or JPEG data are an error even where OpenCV would return
    a partially decoded image, as in ``GrayscaleReader``.

    Both sources give the metadata keys ``filename`` (with ``"::key"`` for an HDF5 member),
    ``format`` ("png", "jpeg" or "other"), ``rows``, ``columns`` and ``channels`` (1 for grey, 3 for
    colour, as decoded before the grey channel is repeated) with the same types, so a batch that
    mixes them collates. Nothing identifies the patient.

    HDF5 files are opened once per process by :func:`~medbundle.io.hdf5.open_hdf5`, which is safe
    with ``DataLoader`` workers (``num_workers > 0``, ``persistent_workers=True``).

    Example::

        LoadImaged(keys="image", reader=RGBReader, image_only=True)
    """

    channel_dim = -1

    def verify_suffix(self, filename: Sequence[PathLike] | PathLike) -> bool:
        """Return True when every name is an HDF5 member (``"<file>.hdf5::<key>"`` or ``.h5``) or a PNG/JPEG file.

        Suffixes are compared case-insensitively.

        Args:
            filename: file name or a sequence of file names.
        """
        return all(_is_readable(name) for name in ensure_tuple(filename))

    def decode(self, filename: str) -> tuple[np.ndarray, dict]:
        """The (H, W, 3) image of an HDF5 member or an image file, and its technical fields.

        Raises:
            ImageReadError: the file or member is missing, empty, truncated, corrupt or not an image.
        """
        member = split_hdf5_member(filename)
        if member is None:
            source = f"image file '{filename}'"
            try:
                data = Path(filename).read_bytes()
            except OSError as exc:
                raise ImageReadError(f"Cannot read {source}: {exc}. {_WHAT_TO_DO}") from exc
        else:
            file, key = member
            source = f"isic_id '{key}' in HDF5 file '{file}'"
            data = read_hdf5_bytes(file, key)
        image, image_format, channels = _decode_rgb(data, source)
        meta = {
            "filename": filename,
            "format": image_format,
            "rows": int(image.shape[0]),
            "columns": int(image.shape[1]),
            "channels": channels,
        }
        return image, meta


def _is_readable(name: PathLike) -> bool:
    """Whether `name` is an HDF5 member of a ``.hdf5``/``.h5`` file, or a PNG/JPEG file, by suffix."""
    member = split_hdf5_member(name)
    if member is None:
        return _suffix(name) in _RASTER_SUFFIXES
    return _suffix(member[0]) in HDF5_SUFFIXES


def _decode_rgb(data: bytes, source: str) -> tuple[np.ndarray, str, int]:
    """Decode PNG or JPEG `data` into a (H, W, 3) float32 RGB image in [0, 1] (see :class:`RGBReader`).

    Args:
        data: the encoded image; its signature, not a suffix, decides how it is decoded.
        source: what the data came from, for error messages (e.g. ``"image file 'a.jpg'"``).

    Returns:
        ``(image, format, channels)``: format "png", "jpeg" or "other" from the signature, and the
        number of channels decoded (1 or 3).

    Raises:
        ImageReadError: the data are empty, truncated, corrupt or not an 8- or 16-bit image.
    """
    image_format = "png" if data[:8] == _PNG_SIGNATURE else "jpeg" if data.startswith(_JPEG_SIGNATURE) else "other"
    reason = _truncation(data, image_format) if data else "the data are empty"
    decoded = None
    if reason is None:
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
        if decoded is None:
            reason = "OpenCV cannot decode it (not a PNG/JPEG image, or corrupt)"
        elif decoded.dtype not in (np.uint8, np.uint16) or decoded.ndim not in (2, 3):
            reason = f"unsupported pixel data ({decoded.dtype}, shape {decoded.shape}); only 8- and 16-bit images"
    if reason is not None:
        raise ImageReadError(f"Cannot read {source}: {reason}. {_WHAT_TO_DO}")
    channels = 1 if decoded.ndim == 2 else decoded.shape[2]
    rgb = cv2.cvtColor(decoded, cv2.COLOR_GRAY2RGB if channels == 1 else cv2.COLOR_BGR2RGB)
    image = rgb.astype(np.float32)
    image /= np.float32(np.iinfo(rgb.dtype).max)
    return image, image_format, channels
