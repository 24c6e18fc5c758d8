"""Resize an image to a fixed size without distorting it: scale to fit, then pad.

Stretching a cropped breast to the network's input shape would change the apparent
shape of masses and calcification clusters, which are diagnostic. Scaling uniformly
and padding the rest keeps geometry intact while still producing a fixed-size batch.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import cv2
import numpy as np
import torch
from monai.config import KeysCollection
from monai.config.type_definitions import NdarrayOrTensor
from monai.data import MetaTensor
from monai.data.utils import to_affine_nd
from monai.transforms import MapTransform, Transform
from monai.utils import TransformBackends, convert_to_dst_type, convert_to_numpy, ensure_tuple_rep

__all__ = ["AspectResizePad", "AspectResizePadd"]

_PAD_POSITIONS = ("start", "center", "end")


class AspectResizePad(Transform):
    """
    Resize a channel-first 2D image ``(C, H, W)`` to fit inside `spatial_size`, then pad to exactly that size.

    The image is scaled by one factor, ``min(H_out / H, W_out / W)``, so that it touches the
    target along at least one axis, and the other axis is padded. Resizing uses OpenCV,
    per channel: ``INTER_AREA`` when shrinking (a proper box filter, so large downscales
    of 2000-5000 px mammograms do not alias, and far faster than torch interpolation on
    CPU) and ``INTER_LINEAR`` when enlarging.

    `pad_position` says where the padding goes along (H, W). The default
    ``("center", "end")`` centres the image vertically and puts all horizontal padding on
    the right, so that after :py:class:`CanonicalFlip` the chest wall stays against the
    left edge of every image. For a :py:class:`monai.data.MetaTensor` the metadata is kept
    and the affine is updated for the scaling and padding; the operation is not recorded
    as invertible.

    Args:
        spatial_size: output size ``(H, W)``; an int is used for both.
        pad_position: ``"start"`` (pad before the image), ``"center"`` or ``"end"`` (pad
            after it), for H and W; a single string is used for both.
        padding_mode: :py:func:`numpy.pad` mode, e.g. ``"constant"`` (zeros, the background
            of a mammogram), ``"edge"`` or ``"reflect"``.
    """

    backend = [TransformBackends.NUMPY]

    def __init__(
        self,
        spatial_size: Sequence[int] | int,
        pad_position: Sequence[str] | str = ("center", "end"),
        padding_mode: str = "constant",
    ) -> None:
        self.spatial_size: tuple[int, int] = ensure_tuple_rep(spatial_size, 2)
        if min(self.spatial_size) < 1:
            raise ValueError(f"spatial_size must be positive, got {spatial_size}.")
        self.pad_position: tuple[str, str] = ensure_tuple_rep(pad_position, 2)
        for position in self.pad_position:
            if position not in _PAD_POSITIONS:
                raise ValueError(f"pad_position must be one of {_PAD_POSITIONS}, got {position!r}.")
        self.padding_mode = padding_mode

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """
        Resize and pad `img` to `spatial_size`.

        Args:
            img: channel-first image ``(C, H, W)``.
        """
        image = convert_to_numpy(img)
        if image.ndim != 3:
            raise ValueError(f"expected a channel-first 2D image (C, H, W), got shape {image.shape}.")
        height, width = image.shape[1:]
        out_h, out_w = self.spatial_size
        scale = min(out_h / height, out_w / width)
        new_h = min(out_h, max(1, round(height * scale)))
        new_w = min(out_w, max(1, round(width * scale)))
        if (new_h, new_w) != (height, width):
            interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            image = np.stack(
                [cv2.resize(np.ascontiguousarray(c), (new_w, new_h), interpolation=interpolation) for c in image]
            )
        pads = [self._split(out_h - new_h, self.pad_position[0]), self._split(out_w - new_w, self.pad_position[1])]
        if any(p for pad in pads for p in pad):
            image = np.pad(image, [(0, 0), *pads], mode=self.padding_mode)
        out: NdarrayOrTensor = convert_to_dst_type(image, dst=img)[0]
        if isinstance(out, MetaTensor):
            # output pixel centre i maps to input (i + 0.5 - pad_before) * (in / new) - 0.5 along each axis
            ratio_h, ratio_w = height / new_h, width / new_w
            index_map = np.array(
                [
                    [ratio_h, 0.0, (0.5 - pads[0][0]) * ratio_h - 0.5],
                    [0.0, ratio_w, (0.5 - pads[1][0]) * ratio_w - 0.5],
                    [0.0, 0.0, 1.0],
                ]
            )
            out.affine = out.affine @ torch.as_tensor(to_affine_nd(out.affine, index_map))
        return out

    @staticmethod
    def _split(total: int, position: str) -> tuple[int, int]:
        """Split `total` padding pixels into (before, after) for `position`."""
        if position == "start":
            return total, 0
        if position == "end":
            return 0, total
        return total // 2, total - total // 2


class AspectResizePadd(MapTransform):
    """
    Dictionary-based wrapper of :py:class:`AspectResizePad`.

    Args:
        keys: keys of the corresponding items to be transformed.
            See also: :py:class:`monai.transforms.compose.MapTransform`
        spatial_size: output size ``(H, W)``; an int is used for both.
        pad_position: ``"start"``, ``"center"`` or ``"end"`` for H and W.
        padding_mode: :py:func:`numpy.pad` mode.
        allow_missing_keys: don't raise exception if key is missing.
    """

    backend = AspectResizePad.backend

    def __init__(
        self,
        keys: KeysCollection,
        spatial_size: Sequence[int] | int,
        pad_position: Sequence[str] | str = ("center", "end"),
        padding_mode: str = "constant",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.resizer = AspectResizePad(spatial_size, pad_position, padding_mode)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.resizer(d[key])
        return d
