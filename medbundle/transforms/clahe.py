"""MONAI transforms of contrast limited adaptive histogram equalisation (CLAHE); the core is :mod:`medbundle.imaging.clahe`."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import ClassVar

import numpy as np
from monai.config import KeysCollection
from monai.config.type_definitions import NdarrayOrTensor
from monai.transforms import MapTransform, Transform
from monai.utils import TransformBackends, convert_to_dst_type, convert_to_numpy

from medbundle.imaging.clahe import apply_clahe, check_clahe_params

__all__ = ["CLAHE", "CLAHEd"]


class CLAHE(Transform):
    """
    Apply OpenCV's CLAHE to each channel of a channel-first image ``(C, H, W)`` with intensities in [0, 1].

    OpenCV's CLAHE works on integer images, so the input is clipped to [0, 1], quantised
    to ``bits`` (8 or 16) bits, equalised, and scaled back to a float32 image in [0, 1]
    (:func:`medbundle.imaging.clahe.apply_clahe`, which documents the effect of ``bits``).

    The default is 8 bits. In 16-bit mode OpenCV's per-bin clip count is 1 for any usual clip
    limit, so `clip_limit` has no effect; with 8 bits the clip limit behaves as documented, and
    the transform is several times faster.

    Args:
        clip_limit: contrast limit, relative to a uniform histogram (see above for ``bits=16``).
        tile_grid_size: number of tiles along (H, W); an int is used for both.
        bits: quantisation depth, 8 or 16.
    """

    backend: ClassVar[list[TransformBackends]] = [TransformBackends.NUMPY]

    def __init__(self, clip_limit: float = 2.0, tile_grid_size: Sequence[int] | int = 8, bits: int = 8) -> None:
        self.tile_grid_size: tuple[int, int] = check_clahe_params(tile_grid_size, bits)
        self.clip_limit = clip_limit
        self.bits = bits

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """
        Equalise `img`.

        Args:
            img: channel-first image ``(C, H, W)`` with intensities in [0, 1].

        Returns:
            float32 image of the same shape and type as `img`, with intensities in [0, 1].
        """
        equalised = apply_clahe(convert_to_numpy(img, dtype=np.float32), self.clip_limit, self.tile_grid_size, self.bits)
        out: NdarrayOrTensor = convert_to_dst_type(equalised, dst=img, dtype=np.float32)[0]
        return out


class CLAHEd(MapTransform):
    """
    Dictionary-based wrapper of :py:class:`CLAHE`.

    Args:
        keys: keys of the corresponding items to be transformed.
            See also: :py:class:`monai.transforms.compose.MapTransform`
        clip_limit: contrast limit, relative to a uniform histogram.
        tile_grid_size: number of tiles along (H, W); an int is used for both.
        bits: quantisation depth, 8 or 16.
        allow_missing_keys: don't raise exception if key is missing.
    """

    backend = CLAHE.backend

    def __init__(
        self,
        keys: KeysCollection,
        clip_limit: float = 2.0,
        tile_grid_size: Sequence[int] | int = 8,
        bits: int = 8,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.clahe = CLAHE(clip_limit, tile_grid_size, bits)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.clahe(d[key])
        return d
