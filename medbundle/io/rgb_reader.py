"""MONAI ``ImageReader`` for RGB photographs: ISIC 2024 crops in an HDF5 file, or PNG/JPEG/TIFF files.

Dermoscopy and skin-lesion photographs are colour images, and colour carries the diagnosis,
so unlike :class:`~medbundle.io.image_reader.GrayscaleReader` this reader keeps three channels.
The ISIC 2024 crops come as JPEG bytes inside ``train-image.hdf5`` (see :mod:`medbundle.io.hdf5`),
older ISIC releases as JPEG files in a folder; both give the same array and metadata.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from monai.config import PathLike
from monai.utils import ensure_tuple

from medbundle.imaging.decode import RGB_SUFFIXES, suffix
from medbundle.io.hdf5 import HDF5_SUFFIXES, split_hdf5_member
from medbundle.io.image_file import read_rgb
from medbundle.io.pixel_reader import PixelSpaceReader

__all__ = ["RGBReader"]


class RGBReader(PixelSpaceReader):
    """Load an RGB image as a (H, W, 3) float32 array in [0, 1] for MONAI's ``LoadImage``.

    A name ``"<file>::<key>"`` (:func:`~medbundle.io.hdf5.hdf5_member`) is the member `key` of
    the HDF5 file `file`, holding encoded image bytes as in ISIC 2024's ``train-image.hdf5``; any
    other name is a PNG, JPEG or TIFF file. Both are decoded by OpenCV from bytes (``cv2.imread`` fails
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
        """Return True when every name is an HDF5 member (``"<file>.hdf5::<key>"`` or ``.h5``) or a PNG/JPEG/TIFF file.

        Suffixes are compared case-insensitively.

        Args:
            filename: file name or a sequence of file names.
        """
        return all(_is_readable(name) for name in ensure_tuple(filename))

    def decode(self, filename: str) -> tuple[np.ndarray, dict]:
        """The (H, W, 3) image of an HDF5 member or an image file, and its technical fields:
        :func:`medbundle.io.image_file.read_rgb`.

        Raises:
            ImageReadError: the file or member is missing, empty, truncated, corrupt or not an image.
        """
        return read_rgb(filename)


def _is_readable(name: PathLike) -> bool:
    """Whether `name` is an HDF5 member of a ``.hdf5``/``.h5`` file, or a PNG/JPEG/TIFF file, by suffix."""
    member = split_hdf5_member(name)
    if member is None:
        return suffix(name) in RGB_SUFFIXES
    return suffix(member[0]) in HDF5_SUFFIXES
