"""Contrast limited adaptive histogram equalisation (CLAHE).

Dense breast tissue occupies a narrow band of grey levels, and the subtle findings a
screening model must detect sit inside it. CLAHE spreads the grey levels of each local
tile over the full range, with a clip limit that stops it from amplifying noise in flat
regions, so local contrast is raised consistently across scanners and exposures.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import cv2
import numpy as np
from monai.config import KeysCollection
from monai.config.type_definitions import NdarrayOrTensor
from monai.transforms import MapTransform, Transform
from monai.utils import TransformBackends, convert_to_dst_type, convert_to_numpy, ensure_tuple_rep

__all__ = ["CLAHE", "CLAHEd"]


class CLAHE(Transform):
    """
    Apply OpenCV's CLAHE to each channel of a channel-first image ``(C, H, W)`` with intensities in [0, 1].

    OpenCV's CLAHE works on integer images, so the input is clipped to [0, 1], quantised
    to ``bits`` (8 or 16) bits, equalised, and scaled back to a float32 image in [0, 1].

    The default is 8 bits. OpenCV converts the clip limit into a per-bin count,
    ``max(1, int(clip_limit * tile_pixels / 2**bits))``; with 65536 bins that count is 1
    for any usual clip limit (e.g. below 8 for 128 x 64 px tiles), so in 16-bit mode
    `clip_limit` has no effect and the result is close to unclipped equalisation, with
    a strength that depends on how many grey levels the data happens to use. With 8 bits
    the clip limit behaves as documented, and the transform is several times faster.

    Args:
        clip_limit: contrast limit, relative to a uniform histogram (see above for ``bits=16``).
        tile_grid_size: number of tiles along (H, W); an int is used for both.
        bits: quantisation depth, 8 or 16.
    """

    backend = [TransformBackends.NUMPY]

    def __init__(self, clip_limit: float = 2.0, tile_grid_size: Sequence[int] | int = 8, bits: int = 8) -> None:
        if bits not in (8, 16):
            raise ValueError(f"bits must be 8 or 16, got {bits}.")
        self.clip_limit = clip_limit
        self.tile_grid_size: tuple[int, int] = ensure_tuple_rep(tile_grid_size, 2)
        self.bits = bits

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """
        Equalise `img`.

        Args:
            img: channel-first image ``(C, H, W)`` with intensities in [0, 1].

        Returns:
            float32 image of the same shape and type as `img`, with intensities in [0, 1].
        """
        image = convert_to_numpy(img, dtype=np.float32)
        if image.ndim != 3:
            raise ValueError(f"expected a channel-first 2D image (C, H, W), got shape {image.shape}.")
        max_level = 2**self.bits - 1
        quantised = np.round(np.clip(image, 0.0, 1.0) * max_level).astype(np.uint8 if self.bits == 8 else np.uint16)
        # OpenCV takes the tile grid as (columns, rows)
        clahe = cv2.createCLAHE(clipLimit=self.clip_limit, tileGridSize=self.tile_grid_size[::-1])
        equalised = np.stack([clahe.apply(channel) for channel in quantised]).astype(np.float32) / max_level
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
