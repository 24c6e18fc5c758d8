"""Image readers: DICOM decoding, HDF5 image bytes and the matching MONAI ``ImageReader`` classes."""

from __future__ import annotations

from medbundle.io.dicom import DicomReadError, read_dicom
from medbundle.io.dicom_reader import MammoDicomReader
from medbundle.io.hdf5 import (
    HDF5_SEPARATOR,
    HDF5_SUFFIXES,
    hdf5_keys,
    hdf5_member,
    open_hdf5,
    read_hdf5_bytes,
    split_hdf5_member,
)
from medbundle.io.image_reader import IMAGE_SUFFIXES, GrayscaleReader, ImageReadError
from medbundle.io.rgb_reader import RGBReader

__all__ = [
    "HDF5_SEPARATOR",
    "HDF5_SUFFIXES",
    "IMAGE_SUFFIXES",
    "DicomReadError",
    "GrayscaleReader",
    "ImageReadError",
    "MammoDicomReader",
    "RGBReader",
    "hdf5_keys",
    "hdf5_member",
    "open_hdf5",
    "read_dicom",
    "read_hdf5_bytes",
    "split_hdf5_member",
]
