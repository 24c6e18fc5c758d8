"""Torch-free image decoding and preprocessing: plain functions on numpy arrays (numpy and OpenCV only).

This is the code that medbundle's MONAI readers and transforms wrap, so a bundle and the ONNX
predictor of :mod:`medbundle.deploy` preprocess images identically. Nothing here imports torch or
MONAI; pydicom and h5py are imported only when a DICOM file or an HDF5 member is decoded.

- :mod:`~medbundle.imaging.decode`: PNG/JPEG/DICOM files and HDF5 members to float32 arrays in [0, 1].
- :mod:`~medbundle.imaging.breast_crop`: find the breast on a mammogram and crop to it.
- :mod:`~medbundle.imaging.crop_summary`: what the crop did over a set of images (fallbacks, outlier boxes).
- :mod:`~medbundle.imaging.canonical_flip`: put the breast on the left.
- :mod:`~medbundle.imaging.resize`: aspect-preserving resize and pad; MONAI's exact "area" resize.
- :mod:`~medbundle.imaging.clahe`: contrast limited adaptive histogram equalisation.
- :mod:`~medbundle.imaging.affine`: random rotation, scaling and translation with MONAI's ``RandAffine`` conventions.
- :mod:`~medbundle.imaging.filters`: Gaussian smoothing, Gaussian noise and grid distortion with MONAI's conventions.

All images are channel-first ``(C, H, W)`` except the decoders' output, (H, W) grey or (H, W, 3) RGB.
"""

from __future__ import annotations

from medbundle.imaging.affine import AffineParams, sample_affine_params, warp_affine
from medbundle.imaging.breast_crop import BreastCropper, BreastLocation, crop_record
from medbundle.imaging.canonical_flip import flip, flip_to_left, needs_flip
from medbundle.imaging.clahe import apply_clahe
from medbundle.imaging.crop_summary import CropSummary, summarize_crops
from medbundle.imaging.decode import (
    ImageReadError,
    decode_rgb,
    read_raster_grayscale,
)
from medbundle.imaging.filters import gaussian_noise, gaussian_smooth, grid_distort
from medbundle.imaging.resize import aspect_fit, aspect_resize_pad, resize_area

__all__ = [
    "AffineParams",
    "BreastCropper",
    "BreastLocation",
    "CropSummary",
    "ImageReadError",
    "apply_clahe",
    "aspect_fit",
    "aspect_resize_pad",
    "crop_record",
    "decode_rgb",
    "flip",
    "flip_to_left",
    "gaussian_noise",
    "gaussian_smooth",
    "grid_distort",
    "needs_flip",
    "read_raster_grayscale",
    "resize_area",
    "sample_affine_params",
    "summarize_crops",
    "warp_affine",
]
