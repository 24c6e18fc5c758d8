"""Image files of every layout the bundles read, as float32 arrays: the one place where files meet the decoders.

:func:`read_grayscale` reads PNG, JPEG, TIFF and DICOM files; :func:`read_rgb` PNG, JPEG and TIFF files and HDF5
members. They live in ``medbundle.io``, above the decoders of :mod:`medbundle.imaging.decode`, because the
file layouts (:mod:`medbundle.io.dicom`, :mod:`medbundle.io.hdf5`) raise the decoders' :class:`ImageReadError`;
the decoders stay free of file layouts. pydicom and h5py are imported only when a DICOM file or an HDF5
member is read. Torch-free: :mod:`medbundle.deploy` reads images through this module,
and the MONAI readers (:class:`~medbundle.io.GrayscaleReader`, :class:`~medbundle.io.RGBReader`) wrap it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from medbundle.imaging.decode import (
    DICOM_SUFFIXES,
    ImageReadError,
    decode_rgb,
    read_file_bytes,
    read_raster_grayscale,
    suffix,
)
from medbundle.imaging.pairs import as_pair

__all__ = ["read_grayscale", "read_rgb"]


def read_grayscale(path: str | os.PathLike, target_size: Sequence[int] | int | None = None) -> tuple[np.ndarray, dict]:
    """A PNG, JPEG, TIFF or DICOM file as a (H, W) float32 grey image in [0, 1] and its technical fields.

    DICOM (``.dcm``, ``.dicom``): :func:`~medbundle.io.dicom.read_dicom` (VOI windowing, MONOCHROME1
    inverted), with ``format`` "dicom" added to its fields; anything else:
    :func:`~medbundle.imaging.decode.read_raster_grayscale`.

    Args:
        path: the image file.
        target_size: ``(rows, columns)`` the image is fitted into next, keeping its aspect ratio
            (:func:`~medbundle.imaging.resize.aspect_resize_pad`); a JPEG, or a JPEG 2000 DICOM, is then
            decoded at a reduced size that still exceeds it (``reduce_level`` in the fields says by how
            many halvings). None decodes every file at full size.

    Raises:
        ImageReadError: the file is missing, empty, truncated, corrupt or not an image.
    """
    filename = os.fspath(path)
    if suffix(filename) in DICOM_SUFFIXES:
        from medbundle.io.dicom import DicomReadError, read_dicom

        size = None if target_size is None else tuple(as_pair(target_size, "target_size"))
        try:
            image, fields = read_dicom(filename, size)
        except DicomReadError as exc:  # its message already names the file and says what to do
            raise ImageReadError(str(exc)) from exc
        return image, {"format": "dicom", **fields}
    return read_raster_grayscale(filename, target_size)


def read_rgb(name: str | os.PathLike) -> tuple[np.ndarray, dict]:
    """The (H, W, 3) float32 RGB image in [0, 1] of an HDF5 member ``"<file>::<key>"`` or a PNG/JPEG/TIFF file.

    See :func:`~medbundle.imaging.decode.decode_rgb`. The HDF5 file is opened once per process by
    :func:`~medbundle.io.hdf5.open_hdf5`.

    Returns:
        ``(image, meta)`` with meta ``filename`` (with ``"::key"`` for an HDF5 member), ``format``
        ("png", "jpeg" or "other"), ``rows``, ``columns`` and ``channels`` (1 for grey, 3 for colour,
        as decoded before the grey channel is repeated).

    Raises:
        ImageReadError: the file or member is missing, empty, truncated, corrupt or not an image.
    """
    from medbundle.io.hdf5 import read_hdf5_bytes, split_hdf5_member

    filename = os.fspath(name)
    member = split_hdf5_member(filename)
    if member is None:
        source = f"image file '{filename}'"
        data = read_file_bytes(filename, source)
    else:
        file, key = member
        source = f"isic_id '{key}' in HDF5 file '{file}'"
        data = read_hdf5_bytes(file, key)
    image, image_format, channels = decode_rgb(data, source)
    meta = {
        "filename": filename,
        "format": image_format,
        "rows": int(image.shape[0]),
        "columns": int(image.shape[1]),
        "channels": channels,
    }
    return image, meta
