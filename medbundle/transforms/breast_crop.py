"""Crop a mammogram to the bounding box of the breast.

Screening mammograms are mostly empty background, and often carry burned-in
labels (laterality/view markers, text) far from the breast. Cropping to the
breast before resizing spends the network's input pixels on tissue and removes
the labels, which would otherwise be an easy shortcut for the classifier.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import cv2
import numpy as np
import torch
from monai.config import KeysCollection
from monai.config.type_definitions import NdarrayOrTensor
from monai.data import MetaTensor
from monai.data.utils import to_affine_nd
from monai.transforms import MapTransform, Transform
from monai.utils import TransformBackends, convert_to_dst_type, convert_to_numpy

__all__ = ["BreastCrop", "BreastCropd"]

Box = tuple[int, int, int, int]


class BreastCrop(Transform):
    """
    Crop a channel-first 2D image ``(C, H, W)`` to the bounding box of its largest bright region.

    The mask is computed on a copy downscaled so that its longest side is ``working_size``
    (full-resolution mammograms are 2000-5000 px; the box only needs to be accurate to a
    few pixels, so this makes the transform cheap). On that copy the channel mean is
    thresholded with Otsu's method (never below ``min_threshold``, so that a dark or blank
    image does not produce a noise mask), a morphological opening removes thin structures
    and detaches burned-in text from the breast, and the largest 8-connected component is
    kept. Its bounding box is mapped back to full resolution, grown by ``margin`` pixels on
    every side and clipped to the image.

    If no component of at least ``min_area`` (fraction of the image) is found, the input is
    returned unchanged. For a :py:class:`monai.data.MetaTensor` the metadata is kept and the
    affine is updated for the crop offset; the crop is not recorded as invertible.

    Args:
        margin: pixels (at full resolution) added around the bounding box on each side.
        working_size: longest side, in pixels, of the downscaled copy used to find the mask.
            Images already smaller than this are used as they are.
        min_threshold: lower bound for the Otsu threshold, in input intensity units ([0, 1]).
        opening_size: diameter, in pixels of the downscaled copy, of the elliptical
            structuring element of the opening. 0 disables the opening.
        min_area: minimum area of the kept component as a fraction of the image area.
    """

    backend = [TransformBackends.NUMPY]

    def __init__(
        self,
        margin: int = 16,
        working_size: int = 512,
        min_threshold: float = 0.05,
        opening_size: int = 5,
        min_area: float = 0.01,
    ) -> None:
        if margin < 0:
            raise ValueError(f"margin must be non-negative, got {margin}.")
        if working_size < 1:
            raise ValueError(f"working_size must be positive, got {working_size}.")
        self.margin = margin
        self.working_size = working_size
        self.min_threshold = min_threshold
        self.opening_size = opening_size
        self.min_area = min_area

    def compute_bounding_box(self, img: NdarrayOrTensor) -> Box | None:
        """
        Find the breast bounding box of `img` without cropping.

        Args:
            img: channel-first image ``(C, H, W)`` with intensities in [0, 1].

        Returns:
            ``(y0, y1, x0, x1)`` at full resolution (end-exclusive, margin included),
            or ``None`` if no region was found.
        """
        image = convert_to_numpy(img, dtype=np.float32)
        if image.ndim != 3:
            raise ValueError(f"expected a channel-first 2D image (C, H, W), got shape {image.shape}.")
        height, width = image.shape[1:]
        gray = image.mean(axis=0) if image.shape[0] > 1 else image[0]
        scale = min(1.0, self.working_size / max(height, width))
        small_w, small_h = max(1, round(width * scale)), max(1, round(height * scale))
        if scale < 1.0:
            gray = cv2.resize(gray, (small_w, small_h), interpolation=cv2.INTER_AREA)
        gray8 = np.round(np.clip(gray, 0.0, 1.0) * 255).astype(np.uint8)
        otsu, _ = cv2.threshold(gray8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        threshold = max(otsu / 255.0, self.min_threshold)
        mask = (gray > threshold).astype(np.uint8)
        if self.opening_size > 0:
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (self.opening_size, self.opening_size))
            mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
        n_labels, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        if n_labels < 2:
            return None
        largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        x, y, w, h, area = stats[largest]
        if area < self.min_area * small_h * small_w:
            return None
        scale_y, scale_x = height / small_h, width / small_w
        y0 = max(0, int(np.floor(y * scale_y)) - self.margin)
        y1 = min(height, int(np.ceil((y + h) * scale_y)) + self.margin)
        x0 = max(0, int(np.floor(x * scale_x)) - self.margin)
        x1 = min(width, int(np.ceil((x + w) * scale_x)) + self.margin)
        return y0, y1, x0, x1

    @staticmethod
    def crop(img: NdarrayOrTensor, box: Box | None) -> NdarrayOrTensor:
        """
        Crop `img` to `box`, keeping its type (and metadata for a MetaTensor).

        Args:
            img: channel-first image ``(C, H, W)``.
            box: ``(y0, y1, x0, x1)`` as returned by :py:meth:`compute_bounding_box`;
                ``None`` returns `img` unchanged.
        """
        if box is None:
            return img
        y0, y1, x0, x1 = box
        cropped = np.ascontiguousarray(convert_to_numpy(img)[:, y0:y1, x0:x1])
        out: NdarrayOrTensor = convert_to_dst_type(cropped, dst=img)[0]
        if isinstance(out, MetaTensor):
            # output pixel (i, j) is input pixel (i + y0, j + x0)
            shift = np.array([[1.0, 0.0, y0], [0.0, 1.0, x0], [0.0, 0.0, 1.0]])
            out.affine = out.affine @ torch.as_tensor(to_affine_nd(out.affine, shift))
        return out

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """
        Crop `img` to its breast bounding box (unchanged if none is found).

        Args:
            img: channel-first image ``(C, H, W)`` with intensities in [0, 1].
        """
        return self.crop(img, self.compute_bounding_box(img))


class BreastCropd(MapTransform):
    """
    Dictionary-based wrapper of :py:class:`BreastCrop`.

    The box is found once, on ``source_key`` (default: the first of `keys` present in the
    data), and the same crop is applied to every key, so that images and masks stay
    aligned. All keys must share the spatial shape of the source.

    Args:
        keys: keys of the corresponding items to be transformed.
            See also: :py:class:`monai.transforms.compose.MapTransform`
        source_key: key of the image the box is computed on; defaults to the first present key.
        margin: pixels (at full resolution) added around the bounding box on each side.
        working_size: longest side of the downscaled copy used to find the mask.
        min_threshold: lower bound for the Otsu threshold.
        opening_size: diameter of the opening's structuring element on the downscaled copy.
        min_area: minimum area of the kept component as a fraction of the image area.
        allow_missing_keys: don't raise exception if key is missing.
    """

    backend = BreastCrop.backend

    def __init__(
        self,
        keys: KeysCollection,
        source_key: Hashable | None = None,
        margin: int = 16,
        working_size: int = 512,
        min_threshold: float = 0.05,
        opening_size: int = 5,
        min_area: float = 0.01,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.source_key = source_key
        self.cropper = BreastCrop(margin, working_size, min_threshold, opening_size, min_area)

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
        box = self.cropper.compute_bounding_box(d[source_key])
        for key in self.key_iterator(d):
            d[key] = self.cropper.crop(d[key], box)
        return d
