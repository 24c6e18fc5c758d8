"""The deterministic preprocessing of an exported model, rebuilt from ``deploy.json["preprocessing"]``.

The description is written by :func:`medbundle.export.preprocessing_spec.describe_preprocessing` from the
bundle's parsed transform chain::

    {"channels": C, "spatial_size": [H, W], "steps": [{"op": ..., "reference": ..., **params}, ...]}

Each step runs the same torch-free function the bundle's MONAI transform wraps (:mod:`medbundle.imaging`,
:func:`medbundle.io.dicom.read_dicom`), so the arrays are those of ``monai.bundle run``. One small reader per
``op`` checks its parameters: an unknown op or parameter, or a value this package cannot reproduce, is an
error naming the step (``reference`` is informational and ignored).
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medbundle.imaging.breast_crop import BreastCropper, source_scale
from medbundle.imaging.canonical_flip import flip_to_left
from medbundle.imaging.clahe import apply_clahe, check_clahe_params
from medbundle.imaging.pairs import as_pair
from medbundle.imaging.resize import aspect_resize_pad, check_aspect_params, resize_area
from medbundle.io.image_file import read_grayscale, read_rgb

__all__ = ["READERS", "STEPS", "Preprocessing", "PreprocessingError", "build_preprocessing"]

#: a preprocessing step: ``(image (C, H, W), source, meta) -> image``; `source` names the file in warnings, `meta` is
#: the reader's technical fields (the breast crop scales its margin by their ``reduce_level``)
Step = Callable[[np.ndarray, str, Mapping[str, Any]], np.ndarray]


class PreprocessingError(ValueError):
    """``deploy.json["preprocessing"]`` has an entry this package cannot reproduce."""


def _read_mammo_dicom(
    name: str, target_size: Sequence[int] | None = None, reduced_decode: bool = True
) -> tuple[np.ndarray, dict]:
    from medbundle.io.dicom import read_dicom  # pydicom only when reading DICOM

    image, meta = read_dicom(name, target_size=target_size if reduced_decode else None)
    return image[None], meta


def _read_grayscale(
    name: str, target_size: Sequence[int] | None = None, reduced_decode: bool = True
) -> tuple[np.ndarray, dict]:
    image, meta = read_grayscale(name, target_size=target_size if reduced_decode else None)
    return image[None], meta


def _read_rgb(name: str) -> tuple[np.ndarray, dict]:
    image, meta = read_rgb(name)
    return np.ascontiguousarray(np.moveaxis(image, -1, 0)), meta  # EnsureChannelFirstd: (H, W, 3) -> (3, H, W)


#: ``read`` step ``reader`` -> (function ``name -> ((C, H, W) float32 image, technical fields)``, channels)
READERS: dict[str, tuple[Callable[[str], tuple[np.ndarray, dict]], int]] = {
    "mammo_dicom": (_read_mammo_dicom, 1),  # medbundle.io.MammoDicomReader
    "grayscale": (_read_grayscale, 1),  # medbundle.io.GrayscaleReader
    "rgb": (_read_rgb, 3),  # medbundle.io.RGBReader
}


def _parameters(function: Callable, skip: int = 0) -> tuple[str, ...]:
    """The parameter names of `function` (a class: its constructor's), after the first `skip`."""
    return tuple(inspect.signature(function).parameters)[skip:]


def _breast_crop(params: dict[str, Any]) -> Step:
    cropper = BreastCropper(**params)
    return lambda image, source, meta: cropper(image, source, scale=source_scale(meta))


def _canonical_flip(params: dict[str, Any]) -> Step:
    return lambda image, source, meta: flip_to_left(image)


def _aspect_resize_pad(params: dict[str, Any]) -> Step:
    check_aspect_params(params["spatial_size"], params.get("pad_position", ("center", "end")))
    resize = functools.partial(aspect_resize_pad, **params)
    return lambda image, source, meta: resize(image)


def _resize(params: dict[str, Any]) -> Step:
    """MONAI ``Resize``: only what the bundles use, ``mode="area"`` on the full size without anti-aliasing."""
    supported = {"mode": "area", "size_mode": "all", "align_corners": None, "anti_aliasing": False}
    unsupported = {key: params[key] for key, value in supported.items() if key in params and params[key] != value}
    if unsupported:
        raise PreprocessingError(
            f"Resize with {unsupported} cannot be reproduced without torch; this medbundle.deploy supports {supported}."
        )
    size = tuple(as_pair(params["spatial_size"], "spatial_size"))
    if not all(isinstance(s, int) and s > 0 for s in size):
        raise PreprocessingError(f"Resize spatial_size must be two positive sizes, got {params['spatial_size']!r}.")
    return lambda image, source, meta: resize_area(image, size)


def _clahe(params: dict[str, Any]) -> Step:
    check_clahe_params(params.get("tile_grid_size", 8), params.get("bits", 8))
    equalise = functools.partial(apply_clahe, **params)
    return lambda image, source, meta: equalise(image)


#: step ``op`` -> (builder ``params -> Step``, parameter names it accepts, names it requires)
STEPS: dict[str, tuple[Callable[[dict[str, Any]], Step], tuple[str, ...], tuple[str, ...]]] = {
    "breast_crop": (_breast_crop, _parameters(BreastCropper), ()),
    "canonical_flip": (_canonical_flip, (), ()),
    "aspect_resize_pad": (_aspect_resize_pad, _parameters(aspect_resize_pad, skip=1), ("spatial_size",)),
    "resize": (
        _resize,
        ("spatial_size", "mode", "size_mode", "align_corners", "anti_aliasing", "anti_aliasing_sigma"),
        ("spatial_size",),
    ),
    "clahe": (_clahe, _parameters(apply_clahe, skip=1), ()),
}
_INFORMATIONAL = ("op", "reference")


@dataclass(frozen=True)
class Preprocessing:
    """A model's preprocessing: ``name -> ((C, H, W) float32 image in [0, 1], the reader's technical fields)``.

    Attributes:
        reader: the ``read`` step's reader (a key of :data:`READERS`).
        channels: C of the output.
        spatial_size: ``(H, W)`` of the output.
        steps: ``(op, step)`` after reading, in order.
        reader_options: the ``read`` step's options (rsna and chest_xray: ``target_size`` and ``reduced_decode``, so a
            JPEG or JPEG 2000 file is decoded at the resolution the bundle decoded it at).
    """

    reader: str
    channels: int
    spatial_size: tuple[int, int]
    steps: tuple[tuple[str, Step], ...]
    reader_options: Mapping[str, Any] = field(default_factory=dict)

    def __call__(self, name: str | os.PathLike) -> tuple[np.ndarray, dict]:
        """Read the image `name` (a file, or ``"<file>::<key>"`` for an HDF5 member) and preprocess it.

        Raises:
            ValueError: the result does not have the shape ``(channels, *spatial_size)``.
        """
        source = os.fspath(name)
        image, meta = READERS[self.reader][0](source, **self.reader_options)
        for _, step in self.steps:
            image = step(image, source, meta)
        image = np.asarray(image, dtype=np.float32)
        expected = (self.channels, *self.spatial_size)
        if image.shape != expected:
            raise ValueError(f"preprocessing {source} gave shape {image.shape}, expected {expected}.")
        return image, meta


def build_preprocessing(description: Mapping[str, Any]) -> Preprocessing:
    """The :class:`Preprocessing` of a ``deploy.json["preprocessing"]`` entry (see the module docstring).

    Raises:
        PreprocessingError: an unknown entry, op or parameter, an unsupported value, or a chain that does not
            read the image first.
    """
    unknown = sorted(set(description) - {"channels", "spatial_size", "steps"})
    if unknown:
        raise PreprocessingError(f"deploy.json preprocessing has unknown entries {unknown}; {_UPDATE}")
    steps = description.get("steps")
    if not isinstance(steps, list) or not steps or not isinstance(steps[0], Mapping) or steps[0].get("op") != "read":
        raise PreprocessingError(f"deploy.json preprocessing.steps must be a list starting with op 'read', got {steps!r}.")
    reader, channels, reader_options = _read_step(steps[0])
    built = []
    for index, step in enumerate(steps[1:], start=2):
        try:
            built.append((step.get("op"), _build_step(step)))
        except (PreprocessingError, ValueError, TypeError) as exc:
            raise PreprocessingError(f"deploy.json preprocessing step {index} ({step!r}): {exc}") from exc
    spatial_size = description.get("spatial_size")
    try:
        size = tuple(int(s) for s in as_pair(spatial_size, "spatial_size"))
    except (TypeError, ValueError) as exc:
        raise PreprocessingError(f"deploy.json preprocessing.spatial_size must be [H, W], got {spatial_size!r}.") from exc
    if description.get("channels", channels) != channels:
        raise PreprocessingError(
            f"deploy.json preprocessing.channels is {description['channels']}, but reader {reader!r} gives {channels}."
        )
    return Preprocessing(reader, channels, size, tuple(built), reader_options)  # type: ignore[arg-type]


_UPDATE = "update medbundle to the version that exported the model, or export it again with this one."


def _read_step(step: Mapping[str, Any]) -> tuple[str, int, dict[str, Any]]:
    reader = step.get("reader")
    options = {key: value for key, value in step.items() if key not in {*_INFORMATIONAL, "reader", "channels"}}
    accepted = _parameters(READERS[reader][0], skip=1) if reader in READERS else ()
    unknown = sorted(set(options) - set(accepted))
    if unknown or reader not in READERS:
        raise PreprocessingError(
            f"deploy.json preprocessing step 1 ({dict(step)!r}): expected reader one of {sorted(READERS)} and no "
            f"entries but {sorted({*_INFORMATIONAL, 'reader', 'channels', *accepted})}; {_UPDATE}"
        )
    channels = READERS[reader][1]
    if step.get("channels", channels) != channels:
        raise PreprocessingError(f"reader {reader!r} gives {channels} channel(s), deploy.json says {step['channels']}.")
    return reader, channels, options


def _build_step(step: Mapping[str, Any]) -> Step:
    if not isinstance(step, Mapping) or step.get("op") not in STEPS:
        raise PreprocessingError(f"unknown op; this medbundle.deploy knows {sorted(STEPS)}; {_UPDATE}")
    build, accepted, required = STEPS[step["op"]]
    params = {key: value for key, value in step.items() if key not in _INFORMATIONAL}
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise PreprocessingError(f"unknown parameter(s) {unknown}; op {step['op']!r} takes {list(accepted)}; {_UPDATE}")
    missing = [key for key in required if key not in params]
    if missing:
        raise PreprocessingError(f"missing parameter(s) {missing}.")
    return build(params)
