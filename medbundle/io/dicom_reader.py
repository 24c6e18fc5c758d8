"""MONAI ``ImageReader`` that loads DICOM files through :func:`medbundle.io.dicom.read_dicom`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from monai.config import PathLike
from monai.data import ImageReader
from monai.data.utils import is_supported_format
from monai.utils import MetaKeys, SpaceKeys, TraceKeys, ensure_tuple

from medbundle.io.dicom import read_dicom

__all__ = ["MammoDicomReader"]


class MammoDicomReader(ImageReader):
    """Load a 2D grayscale DICOM as a float32 image in [0, 1] for MONAI's ``LoadImage``.

    The array equals ``read_dicom(path)[0]`` (same (H, W) orientation as pydicom's
    ``pixel_array``, no axis swap) and is marked channel-less, so ``EnsureChannelFirstd``
    yields (1, H, W). The affine is the 3x3 identity: the network works in pixel space.

    ``read`` only resolves the path and decoding happens in ``get_data``. ``LoadImage``
    catches exceptions raised by ``read`` and silently retries the file with its other
    registered readers (e.g. ITK), which would yield a differently oriented and scaled
    array; errors from ``get_data`` propagate, so a broken file fails loudly with
    :class:`~medbundle.io.dicom.DicomReadError`.

    Only one file per image is supported: several paths (MONAI's channel stacking) raise
    ``NotImplementedError``.

    Example::

        LoadImaged(keys="image", reader=MammoDicomReader, image_only=True)
    """

    def verify_suffix(self, filename: Sequence[PathLike] | PathLike) -> bool:
        """Return True when every file name ends in ``.dcm`` or ``.dicom`` (case-insensitive).

        Args:
            filename: file name or a sequence of file names.
        """
        return is_supported_format(filename, ["dcm", "dicom"])

    def read(self, data: Sequence[PathLike] | PathLike, **kwargs) -> tuple[PathLike, ...]:
        """Return the file names to decode in :meth:`get_data`; no I/O happens here (see class docs).

        Args:
            data: file name or a sequence of file names.
            kwargs: unused; accepted for ``ImageReader`` API compatibility.
        """
        return ensure_tuple(data)

    def get_data(self, img: Sequence[PathLike] | PathLike) -> tuple[np.ndarray, dict]:
        """Decode the file and return the (H, W) float32 image and its MONAI metadata.

        The metadata holds the technical fields of ``read_dicom`` (None replaced by
        ``"none"`` so batches collate), plus ``spatial_shape``, identity ``affine`` and
        ``original_affine``, ``space`` and ``original_channel_dim`` = NaN (no channel).

        Args:
            img: the output of :meth:`read`, or a single file name.

        Raises:
            NotImplementedError: more than one file name was given.
            DicomReadError: the file cannot be read or decoded.
        """
        filenames = ensure_tuple(img)
        if len(filenames) != 1:
            raise NotImplementedError(
                f"{type(self).__name__} reads one DICOM file per image, got {len(filenames)}: {filenames}."
            )
        image, dicom_meta = read_dicom(filenames[0])
        meta = {key: str(TraceKeys.NONE) if value is None else value for key, value in dicom_meta.items()}
        meta[MetaKeys.SPATIAL_SHAPE] = np.asarray(image.shape)
        meta[MetaKeys.AFFINE] = np.eye(image.ndim + 1)
        meta[MetaKeys.ORIGINAL_AFFINE] = np.eye(image.ndim + 1)
        meta[MetaKeys.SPACE] = SpaceKeys.RAS
        meta[MetaKeys.ORIGINAL_CHANNEL_DIM] = float("nan")
        return image, meta
