"""MONAI-style transforms for 2D medical image classification (array and dictionary versions)."""

from medbundle.transforms.aspect_resize import AspectResizePad, AspectResizePadd
from medbundle.transforms.breast_crop import BreastCrop, BreastCropd
from medbundle.transforms.canonical_flip import CanonicalFlip, CanonicalFlipd
from medbundle.transforms.clahe import CLAHE, CLAHEd
from medbundle.transforms.rand_affine import RandAffine2D, RandAffine2Dd
from medbundle.transforms.rand_filters import (
    RandGaussianNoise2D,
    RandGaussianNoise2Dd,
    RandGaussianSmooth2D,
    RandGaussianSmooth2Dd,
    RandGridDistortion2D,
    RandGridDistortion2Dd,
)

__all__ = [
    "CLAHE",
    "AspectResizePad",
    "AspectResizePadd",
    "BreastCrop",
    "BreastCropd",
    "CLAHEd",
    "CanonicalFlip",
    "CanonicalFlipd",
    "RandAffine2D",
    "RandAffine2Dd",
    "RandGaussianNoise2D",
    "RandGaussianNoise2Dd",
    "RandGaussianSmooth2D",
    "RandGaussianSmooth2Dd",
    "RandGridDistortion2D",
    "RandGridDistortion2Dd",
]
