"""MONAI ``ImageReader`` that loads DICOM files through :func:`medbundle.io.dicom.read_dicom`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from monai.config import PathLike
from monai.data.utils import is_supported_format

from medbundle.io.dicom import read_dicom
from medbundle.io.pixel_reader import PixelSpaceReader

__all__ = ["MammoDicomReader"]


class MammoDicomReader(PixelSpaceReader):
    """Load a 2D grayscale DICOM as a float32 image in [0, 1] for MONAI's ``LoadImage``.

    The array equals ``read_dicom(path, target_size)[0]`` (same (H, W) orientation as pydicom's
    ``pixel_array``, no axis swap) and is marked channel-less, so ``EnsureChannelFirstd``
    yields (1, H, W). The affine is the 3x3 identity: the network works in pixel space.

    Given the size the image is resized to after cropping (a bundle's ``image_size``), JPEG 2000
    files are decoded at a reduced resolution that still exceeds it, several times faster (see
    :func:`~medbundle.io.dicom.read_dicom`); the metadata's ``reduce_level`` says how many
    resolution levels were skipped (0: full resolution).

    Decoding happens in ``get_data`` (see :class:`~medbundle.io.pixel_reader.PixelSpaceReader`),
    so a broken file fails loudly with :class:`~medbundle.io.dicom.DicomReadError`.

    Args:
        target_size: ``(rows, columns)`` the image is resized to after cropping; None decodes
            every file at full resolution.
        reduced_decode: decode JPEG 2000 at a reduced resolution when `target_size` allows it;
            False always decodes at full resolution.

    Example::

        LoadImaged(keys="image", reader=MammoDicomReader(target_size=(1024, 512)), image_only=True)
    """

    file_kind = "DICOM"

    def __init__(self, target_size: Sequence[int] | None = None, reduced_decode: bool = True) -> None:
        super().__init__()
        self.target_size = None if target_size is None else tuple(int(s) for s in target_size)
        self.reduced_decode = reduced_decode

    def verify_suffix(self, filename: Sequence[PathLike] | PathLike) -> bool:
        """Return True when every file name ends in ``.dcm`` or ``.dicom`` (case-insensitive).

        Args:
            filename: file name or a sequence of file names.
        """
        return is_supported_format(filename, ["dcm", "dicom"])

    def decode(self, filename: str) -> tuple[np.ndarray, dict]:
        """``read_dicom(filename, target_size)``: the image and its technical fields.

        Raises:
            DicomReadError: the file cannot be read or decoded.
        """
        return read_dicom(filename, self.target_size if self.reduced_decode else None)
