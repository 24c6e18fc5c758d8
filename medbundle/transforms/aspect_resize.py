"""MONAI transforms that resize an image to a fixed size without distorting it: scale to fit, then pad.

The numpy core is :func:`medbundle.imaging.resize.aspect_resize_pad`.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import ClassVar

import numpy as np
import torch
from monai.config import KeysCollection
from monai.config.type_definitions import NdarrayOrTensor
from monai.data import MetaTensor
from monai.data.utils import to_affine_nd
from monai.transforms import MapTransform, Transform
from monai.utils import TransformBackends, convert_to_dst_type, convert_to_numpy

from medbundle.imaging.resize import aspect_fit, aspect_resize_pad, check_aspect_params

__all__ = ["AspectResizePad", "AspectResizePadd"]


class AspectResizePad(Transform):
    """
    Resize a channel-first 2D image ``(C, H, W)`` to fit inside `spatial_size`, then pad to exactly that size.

    The image is scaled by one factor, ``min(H_out / H, W_out / W)``, so that it touches the
    target along at least one axis, and the other axis is padded
    (:func:`medbundle.imaging.resize.aspect_resize_pad`: OpenCV ``INTER_AREA`` when shrinking,
    ``INTER_LINEAR`` when enlarging).

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

    backend: ClassVar[list[TransformBackends]] = [TransformBackends.NUMPY]

    def __init__(
        self,
        spatial_size: Sequence[int] | int,
        pad_position: Sequence[str] | str = ("center", "end"),
        padding_mode: str = "constant",
    ) -> None:
        self.spatial_size, self.pad_position = check_aspect_params(spatial_size, pad_position)
        self.padding_mode = padding_mode

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """
        Resize and pad `img` to `spatial_size`.

        Args:
            img: channel-first image ``(C, H, W)``.
        """
        image = aspect_resize_pad(convert_to_numpy(img), self.spatial_size, self.pad_position, self.padding_mode)
        out: NdarrayOrTensor = convert_to_dst_type(image, dst=img)[0]
        if isinstance(out, MetaTensor):
            height, width = img.shape[-2:]
            (new_h, new_w), pads = aspect_fit((height, width), self.spatial_size, self.pad_position)
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
