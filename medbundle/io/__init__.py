"""Image readers: DICOM decoding and the matching MONAI ``ImageReader``."""

from __future__ import annotations

from medbundle.io.dicom import DicomReadError, read_dicom
from medbundle.io.dicom_reader import MammoDicomReader

__all__ = ["DicomReadError", "MammoDicomReader", "read_dicom"]
