"""MONAI transforms that crop a mammogram to the bounding box of the breast.

The numpy core, and the description of the method, is :mod:`medbundle.imaging.breast_crop`.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping
from typing import ClassVar

import numpy as np
import torch
from monai.config import KeysCollection
from monai.config.type_definitions import NdarrayOrTensor
from monai.data import MetaTensor
from monai.data.utils import to_affine_nd
from monai.transforms import MapTransform, Transform
from monai.utils import TransformBackends, convert_to_dst_type, convert_to_numpy

from medbundle.imaging.breast_crop import (
    FALLBACK_MESSAGE,
    Box,
    BreastCropper,
    BreastLocation,
    crop_record,
    source_scale,
)

__all__ = ["BreastCrop", "BreastCropd"]

logger = logging.getLogger(__name__)

_fallback_logged = False  # one warning per process, not one per image


class BreastCrop(BreastCropper, Transform):
    """
    Crop a channel-first 2D image ``(C, H, W)`` to the bounding box of the breast.

    The MONAI transform of :class:`medbundle.imaging.breast_crop.BreastCropper`, which describes
    the method and takes the same arguments; it accepts tensors too and keeps the input's type.
    If the intensities span less than `min_threshold` (a blank or constant image) or no breast
    remains, the input is returned unchanged and one warning per process says why; the bundles
    count every such image in the run's crop report (:class:`BreastCropd` ``record_key``). For a
    :py:class:`monai.data.MetaTensor` the metadata is kept and the affine is updated for the crop
    offset; the crop is not recorded as invertible.

    `margin` is in source pixels: a MetaTensor decoded at a reduced resolution (JPEG 2000 read by
    :class:`medbundle.io.MammoDicomReader` with a ``target_size``) carries ``reduce_level`` L in its
    metadata, and the margin is divided by ``2**L``, so the box covers the same part of the breast
    as at full resolution.
    """

    backend: ClassVar[list[TransformBackends]] = [TransformBackends.NUMPY]

    def source_name(self, img: NdarrayOrTensor, source: str | None = None) -> str:
        """What a warning calls `img`: `source`, else a MetaTensor's file name, else its shape."""
        if source is None and isinstance(img, MetaTensor):
            source = img.meta.get("filename_or_obj")
        return super().source_name(img, source)

    def find(self, img: NdarrayOrTensor, scale: float | None = None) -> tuple[BreastLocation | None, str]:
        """:meth:`BreastCropper.find <medbundle.imaging.breast_crop.BreastCropper.find>` for any array type;
        `scale` defaults to ``2**-reduce_level`` of a MetaTensor's metadata
        (:func:`~medbundle.imaging.breast_crop.source_scale`)."""
        if isinstance(img, MetaTensor) and scale is None:
            scale = source_scale(img.meta)
        return super().find(convert_to_numpy(img, dtype=np.float32), scale)

    def report_fallback(self, source: str, reason: str) -> None:
        """Warn, once per process, that an image was left uncropped and why."""
        global _fallback_logged
        if _fallback_logged:
            return
        _fallback_logged = True
        logger.warning(
            FALLBACK_MESSAGE + " Further images without a breast are not warned about one by one; a bundle run "
            "counts and lists them all in its crop report.", source, reason,
        )

    @staticmethod
    def crop(img: NdarrayOrTensor, box: Box | None) -> NdarrayOrTensor:
        """:meth:`BreastCropper.crop <medbundle.imaging.breast_crop.BreastCropper.crop>`, keeping the type of `img`
        (and metadata for a MetaTensor, with the affine shifted by the crop offset)."""
        if box is None:
            return img
        out: NdarrayOrTensor = convert_to_dst_type(BreastCropper.crop(convert_to_numpy(img), box), dst=img)[0]
        if isinstance(out, MetaTensor):
            # output pixel (i, j) is input pixel (i + y0, j + x0)
            y0, _, x0, _ = box
            shift = np.array([[1.0, 0.0, y0], [0.0, 1.0, x0], [0.0, 0.0, 1.0]])
            out.affine = out.affine @ torch.as_tensor(to_affine_nd(out.affine, shift))
        return out

    def blank(
        self, cropped: NdarrayOrTensor, location: BreastLocation, shape: tuple[int, int], overwrite: bool = False
    ) -> NdarrayOrTensor:
        """:meth:`BreastCropper.blank <medbundle.imaging.breast_crop.BreastCropper.blank>`, keeping the type of `cropped`.
        With `overwrite`, `cropped` may or may not be the array blanked: use the result."""
        image = super().blank(convert_to_numpy(cropped), location, shape, overwrite)
        return convert_to_dst_type(image, dst=cropped)[0]


class BreastCropd(MapTransform):
    """
    Dictionary-based wrapper of :py:class:`BreastCrop`.

    The box is found once, on ``source_key`` (default: the first of `keys` present in the
    data), and the same crop is applied to every key, so that images and masks stay
    aligned. All keys must share the spatial shape of the source. The margin is scaled by the
    source's ``reduce_level`` (see :py:class:`BreastCrop`).

    With `record_key`, the data also gets what the crop did under that key, found or not and why, and
    the box relative to the image (:func:`~medbundle.imaging.breast_crop.crop_record`): plain values
    that travel through a disk cache and a DataLoader, so a run can report every image kept whole
    (:class:`medbundle.handlers.CropReportHandler`).

    Args:
        keys: keys of the corresponding items to be transformed.
            See also: :py:class:`monai.transforms.compose.MapTransform`
        source_key: key of the image the box is computed on; defaults to the first present key.
        margin: pixels of the source image (at full resolution) added around the bounding box on each side.
        working_size: longest side of the downscaled copy used to find the mask.
        min_threshold: least brightness above the background, and least intensity span.
        opening_size: diameter of the opening's structuring element on the downscaled copy.
        min_area: minimum area of a kept component as a fraction of the image area.
        chest_wall: ``"left"``, ``"right"`` or ``None`` to decide from the pixels.
        line_width: thickness, as a fraction of the image side, below which border
            structures count as lines.
        border_band: distance from an edge, as a fraction of the image side, that counts as touching it.
        min_relative_area: least area, relative to the breast, of a further region at its chest-wall edge.
        blank_outside: blank the pixels outside the grown breast region in every key (images only).
        min_breast_area: least area of the breast as a fraction of the image; less is no breast.
        skin_reach: how far beyond the thresholded breast its faint skin edge is followed (fraction of the side).
        skin_threshold: how much brighter than the background beyond it the skin edge is.
        record_key: key under which the data gets the crop's record; None adds none.
        allow_missing_keys: don't raise exception if key is missing.
    """

    backend = BreastCrop.backend

    def __init__(
        self,
        keys: KeysCollection,
        source_key: Hashable | None = None,
        margin: int = 16,
        working_size: int = 256,
        min_threshold: float = 0.05,
        opening_size: int = 5,
        min_area: float = 0.01,
        chest_wall: str | None = None,
        line_width: float = 0.04,
        border_band: float = 0.02,
        min_relative_area: float = 0.1,
        blank_outside: bool = False,
        min_breast_area: float = 0.05,
        skin_reach: float = 0.04,
        skin_threshold: float = 0.01,
        record_key: str | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.source_key = source_key
        self.record_key = record_key
        self.cropper = BreastCrop(
            margin, working_size, min_threshold, opening_size, min_area, chest_wall, line_width, border_band,
            min_relative_area, blank_outside, min_breast_area, skin_reach, skin_threshold,
        )  # fmt: skip

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        source_key = self.source_key
        if source_key is None:
            source_key = next(self.key_iterator(d), None)
            if source_key is None:
                return d
        elif source_key not in d:
            if self.allow_missing_keys:
                return d
            raise KeyError(f"source_key {source_key!r} is not in the data.")
        source = d[source_key]
        found, reason = self.cropper.find(source)
        if found is None:
            self.cropper.report_fallback(self.cropper.source_name(source), reason)
        if self.record_key is not None:
            d[self.record_key] = crop_record(found, reason, source.shape[-2:])
        for key in self.key_iterator(d):
            if found is None:
                continue
            d[key] = self.cropper.crop(d[key], found.box)
            if self.cropper.blank_outside:
                d[key] = self.cropper.blank(d[key], found, data[key].shape[-2:], overwrite=True)
        return d
