"""What the OpenCV random transforms share: the input's type on output, and dictionary wrappers that draw from the
generator of the array transform they wrap (so ``Compose.set_random_state`` and `RNGState` see one generator)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import torch
from monai.config.type_definitions import NdarrayOrTensor
from monai.transforms import MapTransform, Randomizable, RandomizableTransform
from monai.utils import convert_to_dst_type


def floating_dtype(img: NdarrayOrTensor) -> np.dtype | torch.dtype:
    """`img`'s dtype when it is floating point, else float32 (of `img`'s kind)."""
    if isinstance(img, torch.Tensor):
        return img.dtype if img.dtype.is_floating_point else torch.float32
    return img.dtype if np.issubdtype(img.dtype, np.floating) else np.dtype(np.float32)


def like_input(out: np.ndarray, img: NdarrayOrTensor) -> NdarrayOrTensor:
    """`out` as `img`'s type and device, in `img`'s floating dtype (float32 for integer input)."""
    converted: NdarrayOrTensor = convert_to_dst_type(out, dst=img, dtype=floating_dtype(img))[0]
    return converted


class SharedRandomDict(Randomizable, MapTransform):
    """A dictionary transform whose probability and parameters come from one wrapped array transform's generator."""

    transform: RandomizableTransform

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None) -> Any:
        """Seed the wrapped transform's generator, which this one shares."""
        self.transform.set_random_state(seed, state)
        self.R = self.transform.R
        return self

    def randomize(self, data: Any = None) -> None:
        """Decide whether to transform this sample and, if so, draw its parameters."""
        self.transform.randomize()

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        """Draw once, then apply the same transform to every key (geometric transforms add per-key modes)."""
        d = dict(data)
        self.randomize()
        for key in self.key_iterator(d):
            d[key] = self.transform(d[key], randomize=False)
        return d
