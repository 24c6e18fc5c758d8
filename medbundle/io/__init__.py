"""Image readers: DICOM decoding and the matching MONAI ``ImageReader`` classes."""

from __future__ import annotations

from medbundle.io.dicom import DicomReadError, read_dicom
from medbundle.io.dicom_reader import MammoDicomReader
from medbundle.io.image_reader import IMAGE_SUFFIXES, GrayscaleReader, ImageReadError

__all__ = [
    "IMAGE_SUFFIXES",
    "DicomReadError",
    "GrayscaleReader",
    "ImageReadError",
    "MammoDicomReader",
    "read_dicom",
]
