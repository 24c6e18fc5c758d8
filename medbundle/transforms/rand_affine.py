"""Random 2D rotation, scaling and translation with OpenCV: MONAI's ``RandAffine(d)`` at a fraction of the cost.

The numpy core is :mod:`medbundle.imaging.affine`.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, ClassVar

from monai.config import KeysCollection
from monai.config.type_definitions import NdarrayOrTensor
from monai.transforms import MapTransform, RandomizableTransform
from monai.utils import (
    TransformBackends,
    convert_to_numpy,
    ensure_tuple_rep,
)

from medbundle.imaging.affine import (
    AffineParams,
    check_modes,
    check_range,
    sample_affine_params,
    warp_affine,
)
from medbundle.transforms.shared_random import SharedRandomDict, like_input

__all__ = ["RandAffine2D", "RandAffine2Dd"]

RandRange = Sequence[tuple[float, float] | float] | float | None


class RandAffine2D(RandomizableTransform):
    """
    Randomly rotate, scale and translate a channel-first 2D image ``(C, H, W)``, as MONAI's ``RandAffine`` does, with OpenCV.

    A drop-in for the 2D use of :py:class:`monai.transforms.RandAffine` in a training chain. The ranges mean what
    they mean there (:func:`medbundle.imaging.affine.check_range`): the angle is drawn from ``[-r, r]`` radians, the
    scale factors from ``1 + [-s, s]`` and the shifts from ``[-t, t]`` pixels, per axis, and a single number covers
    the first axis (H) only, so ``scale_range=0.1`` stretches along H and ``[0.1, 0.1]`` scales both axes
    independently; ``isotropic=True`` zooms both axes by one factor (the seeds' Shift/Scale/Rotate). For the
    same drawn parameters the bilinear output equals ``monai.transforms.Affine``'s to float32 rounding, for every
    padding mode (:func:`medbundle.imaging.affine.warp_affine`).

    Per image (``RandAffined`` against ``RandAffine2Dd``, ``prob=1``, one CPU thread, best of 5 on a shared 2-core
    machine): 1 x 1024 x 512 15 ms / 0.7 ms, 3 x 224 x 224 1.2 ms / 0.23 ms, 1 x 128 x 128 0.7 ms / 0.05 ms.

    What it leaves out, because the bundles apply it to training images after the preprocessing cache, where
    nothing reads the geometry back: a :py:class:`monai.data.MetaTensor` keeps its metadata but its affine is not
    updated, the operation is not recorded and there is no ``inverse``; there is no lazy resampling, no shear and
    no `spatial_size` (the output has the input's size). Output has the input's type and device; a floating-point
    input keeps its dtype, any other becomes float32, as in MONAI. The parameters are drawn from this transform's
    own generator (:py:meth:`set_random_state`), not in MONAI's order of draws, so a seed gives other images than
    it gives MONAI's transform.

    Args:
        prob: probability of transforming an image.
        rotate_range: angle range in radians: ``r`` for ``[-r, r]``, or ``[(min, max)]``.
        scale_range: scale range per axis (H, W): ``s`` for a factor in ``1 + [-s, s]``, or a ``(min, max)`` pair
            added to 1; a single number scales H only.
        translate_range: shift range per axis (H, W) in pixels: ``t`` for ``[-t, t]``, or a ``(min, max)`` pair;
            a single number shifts along H only.
        isotropic: one scale factor, drawn from the first axis's range, for both axes (aspect ratio kept).
        mode: interpolation, ``"bilinear"`` or ``"nearest"``.
        padding_mode: values outside the image, ``"zeros"``, ``"border"`` or ``"reflection"`` (mirrored about the
            image edge, as ``grid_sample`` does).
    """

    backend: ClassVar[list[TransformBackends]] = [TransformBackends.NUMPY]

    def __init__(
        self,
        prob: float = 0.1,
        rotate_range: RandRange = None,
        scale_range: RandRange = None,
        translate_range: RandRange = None,
        mode: str = "bilinear",
        padding_mode: str = "reflection",
        isotropic: bool = False,
    ) -> None:
        RandomizableTransform.__init__(self, prob)
        self.isotropic = isotropic
        self.rotate_range = check_range(rotate_range, "rotate_range", 1)
        self.scale_range = check_range(scale_range, "scale_range", 2)
        self.translate_range = check_range(translate_range, "translate_range", 2)
        check_modes(mode, padding_mode)
        self.mode = mode
        self.padding_mode = padding_mode
        self.params = AffineParams()

    def randomize(self, data: Any = None) -> None:
        """Decide whether to transform and, if so, draw the angle, scale factors and shifts."""
        super().randomize(None)
        if self._do_transform:
            self.params = sample_affine_params(self.R, self.rotate_range, self.scale_range, self.translate_range,
                                               self.isotropic)

    def __call__(
        self,
        img: NdarrayOrTensor,
        mode: str | None = None,
        padding_mode: str | None = None,
        randomize: bool = True,
    ) -> NdarrayOrTensor:
        """
        Warp `img` with newly drawn parameters, or with the last ones when `randomize` is False.

        Args:
            img: channel-first image ``(C, H, W)``.
            mode: interpolation for this call; defaults to ``self.mode``.
            padding_mode: padding for this call; defaults to ``self.padding_mode``.
            randomize: draw new parameters first.

        Returns:
            `img` itself when not transformed, else the warped image of the same type and device.
        """
        if randomize:
            self.randomize()
        if not self._do_transform:
            return img
        warped = warp_affine(convert_to_numpy(img), self.params, mode or self.mode, padding_mode or self.padding_mode)
        return like_input(warped, img)


class RandAffine2Dd(SharedRandomDict):
    """
    Dictionary-based wrapper of :py:class:`RandAffine2D`: a drop-in for MONAI's 2D ``RandAffined`` in training chains.

    All keys of a sample get the same transform, as with ``RandAffined``; `mode` and `padding_mode` may differ
    per key (e.g. ``"nearest"`` for a mask). The probability and the parameters are drawn from one generator, that
    of the wrapped :py:class:`RandAffine2D`, seeded by :py:meth:`set_random_state` or ``Compose.set_random_state``.

    Args:
        keys: keys of the corresponding items to be transformed.
            See also: :py:class:`monai.transforms.compose.MapTransform`
        prob: probability of transforming a sample.
        rotate_range: angle range in radians (see :py:class:`RandAffine2D`).
        scale_range: scale range per axis (H, W); a single number scales H only.
        translate_range: shift range per axis (H, W) in pixels; a single number shifts along H only.
        isotropic: one scale factor for both axes (see :py:class:`RandAffine2D`).
        mode: ``"bilinear"`` or ``"nearest"``, one for all keys or one per key.
        padding_mode: ``"zeros"``, ``"border"`` or ``"reflection"``, one for all keys or one per key.
        allow_missing_keys: don't raise exception if key is missing.
    """

    backend = RandAffine2D.backend

    def __init__(
        self,
        keys: KeysCollection,
        prob: float = 0.1,
        rotate_range: RandRange = None,
        scale_range: RandRange = None,
        translate_range: RandRange = None,
        mode: Sequence[str] | str = "bilinear",
        padding_mode: Sequence[str] | str = "reflection",
        isotropic: bool = False,
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.mode = ensure_tuple_rep(mode, len(self.keys))
        self.padding_mode = ensure_tuple_rep(padding_mode, len(self.keys))
        for key_mode, key_padding_mode in zip(self.mode, self.padding_mode):
            check_modes(key_mode, key_padding_mode)
        self.transform = self.rand_affine = RandAffine2D(prob, rotate_range, scale_range, translate_range,
                                                         isotropic=isotropic)
        self.R = self.rand_affine.R

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        self.randomize()
        for key, mode, padding_mode in self.key_iterator(d, self.mode, self.padding_mode):
            d[key] = self.rand_affine(d[key], mode, padding_mode, randomize=False)
        return d
