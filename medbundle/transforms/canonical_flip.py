"""Flip a mammogram so that the breast lies on the left side of the image.

Left and right breasts are mirror images of each other; bringing every image into one
orientation (chest wall on the left, nipple pointing right) removes a nuisance factor
the classifier would otherwise have to learn, and lets aspect-preserving resizing pad on
one known side. The decision is taken from the pixels, so it does not depend on
(sometimes missing or wrong) laterality metadata. The numpy core is
:mod:`medbundle.imaging.canonical_flip`.
"""

from __future__ import annotations

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

from medbundle.imaging import canonical_flip

__all__ = ["CanonicalFlip", "CanonicalFlipd"]


class CanonicalFlip(Transform):
    """
    Flip a channel-first 2D image ``(C, H, W)`` along W when its right half is brighter than its left half.

    The breast is bright on a dark background, so the half with the larger intensity sum
    holds the chest wall. For an odd width the centre column is ignored. Images that are
    already left-oriented (including ties, e.g. blank images) are returned unchanged.
    For a :py:class:`monai.data.MetaTensor` the metadata is kept and the affine is updated
    for the flip; the flip is not recorded as invertible.
    """

    backend: ClassVar[list[TransformBackends]] = [TransformBackends.NUMPY]

    @staticmethod
    def needs_flip(img: NdarrayOrTensor) -> bool:
        """
        Whether `img` has more intensity in its right half than in its left half.

        Args:
            img: channel-first image ``(C, H, W)``.
        """
        return canonical_flip.needs_flip(convert_to_numpy(img))

    @staticmethod
    def flip(img: NdarrayOrTensor) -> NdarrayOrTensor:
        """
        Flip `img` along W, keeping its type (and metadata for a MetaTensor).

        Args:
            img: channel-first image ``(C, H, W)``.
        """
        flipped = canonical_flip.flip(convert_to_numpy(img))
        out: NdarrayOrTensor = convert_to_dst_type(flipped, dst=img)[0]
        if isinstance(out, MetaTensor):
            # output pixel (i, j) is input pixel (i, W - 1 - j)
            mirror = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, flipped.shape[-1] - 1.0], [0.0, 0.0, 1.0]])
            out.affine = out.affine @ torch.as_tensor(to_affine_nd(out.affine, mirror))
        return out

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """
        Return `img` with the breast on the left.

        Args:
            img: channel-first image ``(C, H, W)``, bright breast on a dark background.
        """
        return self.flip(img) if self.needs_flip(img) else img


class CanonicalFlipd(MapTransform):
    """
    Dictionary-based wrapper of :py:class:`CanonicalFlip`.

    The decision is taken once, on ``source_key`` (default: the first of `keys` present in
    the data), and applied to every key, so that images and masks stay aligned.

    Args:
        keys: keys of the corresponding items to be transformed.
            See also: :py:class:`monai.transforms.compose.MapTransform`
        source_key: key of the image the decision is taken on; defaults to the first present key.
        allow_missing_keys: don't raise exception if key is missing.
    """

    backend = CanonicalFlip.backend

    def __init__(
        self, keys: KeysCollection, source_key: Hashable | None = None, allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.source_key = source_key
        self.flipper = CanonicalFlip()

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
        if self.flipper.needs_flip(d[source_key]):
            for key in self.key_iterator(d):
                d[key] = self.flipper.flip(d[key])
        return d
