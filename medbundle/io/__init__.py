"""Image readers: DICOM decoding, HDF5 image bytes and the matching MONAI ``ImageReader`` classes.

Names are imported on first access (PEP 562), so ``import medbundle.io`` and the torch-free modules
(:mod:`~medbundle.io.dicom`, :mod:`~medbundle.io.hdf5`) do not import MONAI or torch; the reader
classes (:class:`GrayscaleReader`, :class:`MammoDicomReader`, :class:`RGBReader`) do, when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from medbundle.lazy import lazy_exports

if TYPE_CHECKING:
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
    from medbundle.io.image_file import read_grayscale, read_rgb
    from medbundle.io.image_reader import (
        IMAGE_SUFFIXES,
        GrayscaleReader,
        ImageReadError,
    )
    from medbundle.io.rgb_reader import RGBReader

# public name -> the module that defines it
_EXPORTS = {
    "DicomReadError": "medbundle.io.dicom",
    "read_dicom": "medbundle.io.dicom",
    "MammoDicomReader": "medbundle.io.dicom_reader",
    "HDF5_SEPARATOR": "medbundle.io.hdf5",
    "HDF5_SUFFIXES": "medbundle.io.hdf5",
    "hdf5_keys": "medbundle.io.hdf5",
    "hdf5_member": "medbundle.io.hdf5",
    "open_hdf5": "medbundle.io.hdf5",
    "read_hdf5_bytes": "medbundle.io.hdf5",
    "split_hdf5_member": "medbundle.io.hdf5",
    "IMAGE_SUFFIXES": "medbundle.imaging.decode",
    "ImageReadError": "medbundle.imaging.decode",
    "GrayscaleReader": "medbundle.io.image_reader",
    "read_grayscale": "medbundle.io.image_file",
    "read_rgb": "medbundle.io.image_file",
    "RGBReader": "medbundle.io.rgb_reader",
}
_SUBMODULES = (
    "atomic_file", "dicom", "dicom_reader", "hdf5", "image_file", "image_reader", "pixel_reader", "rgb_reader", "split_csv",
    "strict_json",
)

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
    "read_grayscale",
    "read_hdf5_bytes",
    "read_rgb",
    "split_hdf5_member",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, _SUBMODULES)
