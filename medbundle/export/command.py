"""The ``medbundle export`` and ``medbundle package`` commands (python-fire functions)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medbundle.export.exporter import FORMATS, export_bundle
from medbundle.export.package import package_bundle

__all__ = ["export", "package"]

_FORMAT_CHOICES = {"ts": ("ts",), "onnx": ("onnx",), "both": tuple(FORMATS)}


def _paths(images: str | Sequence[str] | None) -> list[str] | None:
    if images is None:
        return None
    return [images] if isinstance(images, str) else [str(image) for image in images]


def export(
    bundle: str,
    checkpoint: str,
    format: str = "both",
    out: str = "export",
    parity_images: str | Sequence[str] | None = None,
) -> dict[str, Any]:
    """Export a trained bundle to TorchScript and/or ONNX with deploy.json, after checking parity.

    Example::

        medbundle export --bundle bundles/rsna --checkpoint bundles/rsna/models/fold0/model.pt --format both

    Args:
        bundle: the bundle folder.
        checkpoint: the best model written by its training.
        format: "ts", "onnx" or "both".
        out: output folder.
        parity_images: an image path, or a list of them, in the task's format, to compare the exports on.

    Returns:
        The written files and the largest logit difference per format, input and batch size.
    """
    if format not in _FORMAT_CHOICES:
        raise ValueError(f"--format {format!r}: choose one of {sorted(_FORMAT_CHOICES)}.")
    result = export_bundle(bundle, checkpoint, _FORMAT_CHOICES[format], out, _paths(parity_images))
    return {"files": result["files"], "max_abs_diff": result["parity"]["max_abs_diff"]}


def package(
    bundle: str,
    checkpoint: str | None = None,
    out: str | None = None,
    name: str | None = None,
    parity_images: str | Sequence[str] | None = None,
) -> str:
    """Package a trained bundle: a self-contained MONAI bundle folder and .zip, and a Triton model repository.

    Example::

        medbundle package --bundle bundles/rsna

    Args:
        bundle: the bundle folder.
        checkpoint: the best model to package; default ``<bundle>/models/fold0/model.pt``.
        out: output folder; default ``dist``.
        name: package and Triton model name; default the bundle folder's name.
        parity_images: an image path, or a list of them, to compare the exports on.

    Returns:
        The package folder.
    """
    checkpoint = checkpoint or str(Path(bundle) / "models" / "fold0" / "model.pt")
    return str(package_bundle(bundle, checkpoint, out or "dist", name, _paths(parity_images)))
