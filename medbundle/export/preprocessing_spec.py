"""A bundle's deterministic preprocessing as plain parameters, for predictors that run without MONAI.

The exported model takes images already preprocessed; a predictor elsewhere must reproduce the bundle's
transform chain exactly. :func:`describe_preprocessing` reads the *parsed* chain (``preprocessing`` of
``inference.yaml``, after every ``@`` reference and checkpoint setting is resolved), so the description
cannot drift from what ``monai.bundle run`` does. It is ``deploy.json["preprocessing"]``::

    {"channels": C, "spatial_size": [H, W], "steps": [STEP, ...]}

Applied in order to one image, the steps give the ``(C, H, W)`` float32 array in ``[0, 1]`` that the
exported model takes (batched as ``(N, C, H, W)``). Each step is ``{"op": ..., "reference": ..., **params}``;
``reference`` names the medbundle/MONAI class whose behaviour is the definition, and the parameters are
that class's constructor arguments:

- ``read``: ``reader`` and ``channels``. Every reader returns float32 in ``[0, 1]``, rows x columns as stored.
    - ``"mammo_dicom"`` (1 channel; :func:`medbundle.io.read_dicom`): DICOM frame 0, modality LUT, VOI LUT or
      window (first), scaled to [0, 1], MONOCHROME1 inverted so dense tissue is bright. ``target_size`` [H, W]
      (or null) and ``reduced_decode``: JPEG 2000 decoded at the reduced resolution the bundle decoded it at.
    - ``"grayscale"`` (1 channel; :class:`medbundle.io.GrayscaleReader`): DICOM as above; PNG/JPEG decoded by
      OpenCV with EXIF orientation, colour to ITU-R BT.601 luma, 8-bit / 255, 16-bit / (2**b - 1) with ``b``
      the PNG ``sBIT`` depth or else the smallest 8 <= b <= 16 holding the image maximum. ``target_size`` and
      ``reduced_decode`` as for ``"mammo_dicom"``; an 8-bit JPEG is then decoded at 1/2 or 1/4 of its size
      (:func:`medbundle.imaging.jpeg_reduce.reduction_level`). Without them every file is decoded in full.
    - ``"rgb"`` (3 channels; :class:`medbundle.io.RGBReader`): PNG/JPEG (or the bytes of an HDF5 member
      ``"<file>::<key>"``) as RGB with EXIF orientation, 8-bit / 255, 16-bit / 65535, grey repeated, alpha dropped.
- ``breast_crop`` (:class:`medbundle.transforms.BreastCrop`): ``margin``, ``working_size``, ``min_threshold``,
  ``opening_size``, ``min_area``, ``chest_wall``, ``line_width``, ``border_band``, ``min_relative_area``,
  ``blank_outside``.
- ``canonical_flip`` (:class:`medbundle.transforms.CanonicalFlip`): no parameters; mirror along W when the
  right half holds more intensity than the left half.
- ``aspect_resize_pad`` (:class:`medbundle.transforms.AspectResizePad`): ``spatial_size`` [H, W],
  ``pad_position`` [for H, for W] of "start"/"center"/"end", ``padding_mode`` (numpy.pad mode). One scale
  ``min(H/h, W/w)``, OpenCV ``INTER_AREA`` when shrinking and ``INTER_LINEAR`` when enlarging, then padding.
- ``resize`` (:class:`monai.transforms.Resize`): ``spatial_size`` [H, W], ``mode`` and ``align_corners`` as in
  ``torch.nn.functional.interpolate`` ("area" is adaptive average pooling), ``anti_aliasing``,
  ``anti_aliasing_sigma``, ``size_mode``.
- ``clahe`` (:class:`medbundle.transforms.CLAHE`): ``clip_limit``, ``tile_grid_size`` [rows, columns],
  ``bits``; per channel, quantised to ``bits`` and OpenCV CLAHE, back to float32 in [0, 1].

Transforms that change only layout or type (``EnsureChannelFirstd``, ``EnsureTyped``) have no step. Any other
transform raises, naming it: add its description to :data:`STEP_DESCRIPTIONS` first.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from monai.transforms import (
    Compose,
    EnsureChannelFirstd,
    EnsureTyped,
    LoadImaged,
    Resized,
    Transform,
)

from medbundle.io import GrayscaleReader, MammoDicomReader, RGBReader
from medbundle.transforms import AspectResizePadd, BreastCropd, CanonicalFlipd, CLAHEd

__all__ = ["READERS", "STEP_DESCRIPTIONS", "describe_preprocessing"]

#: reader class -> (name in ``deploy.json``, channels of the image it returns)
READERS: dict[type, tuple[str, int]] = {
    MammoDicomReader: ("mammo_dicom", 1),
    GrayscaleReader: ("grayscale", 1),
    RGBReader: ("rgb", 3),
}
_LAYOUT_ONLY = (EnsureChannelFirstd, EnsureTyped)
_RESIZE_PARAMETERS = ("spatial_size", "size_mode", "mode", "align_corners", "anti_aliasing", "anti_aliasing_sigma")


def _plain(value: Any) -> Any:
    """`value` as JSON: enums by value, tuples as lists."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(v) for v in value]
    return value


def _step(op: str, transform: Any, names: Sequence[str] | None = None) -> dict[str, Any]:
    """``{"op", "reference", **params}`` from the attributes of `transform` named like its constructor arguments."""
    if names is None:
        names = list(inspect.signature(type(transform)).parameters)
    cls = type(transform)
    package = ".".join(cls.__module__.split(".")[:2])  # the public package, e.g. medbundle.transforms
    return {"op": op, "reference": f"{package}.{cls.__name__}", **{name: _plain(getattr(transform, name)) for name in names}}


def _read(transform: LoadImaged) -> dict[str, Any]:
    reader = transform._loader.readers[-1]  # LoadImage tries the reader given in the config first (last in the list)
    if type(reader) not in READERS:
        raise ValueError(
            f"LoadImaged uses reader {type(reader).__name__}, which deploy.json cannot describe; use one of "
            f"{sorted(cls.__name__ for cls in READERS)} or add it to medbundle.export.preprocessing_spec.READERS."
        )
    name, channels = READERS[type(reader)]
    step = {"op": "read", "reference": f"medbundle.io.{type(reader).__name__}", "reader": name, "channels": channels}
    if isinstance(reader, (MammoDicomReader, GrayscaleReader)):  # decoded at the resolution training decoded it at
        target_size = reader.target_size
        step |= {"target_size": None if target_size is None else list(target_size), "reduced_decode": reader.reduced_decode}
    return step


#: dictionary transform class -> its step description
STEP_DESCRIPTIONS: dict[type, Callable[[Any], dict[str, Any]]] = {
    LoadImaged: _read,
    BreastCropd: lambda t: _step("breast_crop", t.cropper),
    CanonicalFlipd: lambda t: _step("canonical_flip", t.flipper),
    AspectResizePadd: lambda t: _step("aspect_resize_pad", t.resizer),
    Resized: lambda t: _step("resize", t.resizer, _RESIZE_PARAMETERS),
    CLAHEd: lambda t: _step("clahe", t.clahe),
}


def describe_preprocessing(chain: Transform | Sequence[Transform]) -> dict[str, Any]:
    """The ``deploy.json`` description of a parsed preprocessing chain (schema in the module docstring).

    Args:
        chain: the bundle's parsed ``preprocessing`` (a ``Compose``, nested ones flattened) or a list of transforms.

    Raises:
        ValueError: a transform has no description, the chain reads no image first, or it ends without a
            fixed spatial size.
    """
    transforms = chain.flatten().transforms if isinstance(chain, Compose) else Compose(list(chain)).flatten().transforms
    steps = []
    for transform in transforms:
        if isinstance(transform, _LAYOUT_ONLY):
            continue
        describe = STEP_DESCRIPTIONS.get(type(transform))
        if describe is None:
            raise ValueError(
                f"preprocessing transform {type(transform).__name__} has no deploy.json description: add it to "
                "medbundle.export.preprocessing_spec.STEP_DESCRIPTIONS (and to the torch-free predictor)."
            )
        steps.append(describe(transform))
    if not steps or steps[0]["op"] != "read":
        raise ValueError(f"preprocessing must start by reading the image (LoadImaged), got steps {steps}.")
    sizes = [step["spatial_size"] for step in steps if "spatial_size" in step]
    if not sizes or not isinstance(sizes[-1], list) or len(sizes[-1]) != 2:
        raise ValueError(
            f"preprocessing must end with a fixed [H, W] size (AspectResizePadd or Resized), got steps {steps}."
        )
    return {"channels": steps[0]["channels"], "spatial_size": [int(s) for s in sizes[-1]], "steps": steps}
