"""Read ``deploy.json``, the sidecar of an exported ``model.onnx``, into a checked :class:`DeploySpec`.

The file is written by :mod:`medbundle.export` (schema in :mod:`medbundle.export.deploy_spec`). This
reader needs only the standard library, and fails with a message naming the file and the entry for
anything it does not understand, rather than predicting with a preprocessing it would get wrong.
Entries it does not use (``source``, ``files`` other than ``onnx``, ``input.value_range``...) are ignored.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medbundle.tasks import task_names

__all__ = ["DEPLOY_FILE", "FORMAT_VERSIONS", "DeploySpec", "DeploySpecError", "load_spec"]

#: the sidecar's file name in an export folder
DEPLOY_FILE = "deploy.json"
#: ``format_version`` values this reader understands
FORMAT_VERSIONS = (1,)
_ACTIVATIONS = ("sigmoid", "softmax")
_AGGREGATIONS = ("mean", "max")


class DeploySpecError(ValueError):
    """``deploy.json`` is missing, not JSON, of another format version, or has an entry this reader cannot use."""


@dataclass(frozen=True)
class DeploySpec:
    """The parts of ``deploy.json`` a predictor uses.

    Attributes:
        task: ``"rsna"``, ``"chest_xray"`` or ``"isic"``.
        input_name, output_name: the ONNX graph's input and output names.
        input_shape: ``[None, C, H, W]`` (None for a dynamic size).
        activation: ``"sigmoid"`` (one logit per image) or ``"softmax"`` (one per class).
        class_names: class names in logit order, or None.
        threshold: the decision threshold on the probability (``probability >= threshold`` is positive),
            ``thresholds[decision_threshold_key]``; None without a key (arg-max tasks, or no decision).
        threshold_key: ``decision_threshold_key``.
        thresholds: every stored threshold and score.
        group_key: datalist key whose images are aggregated (e.g. ``"breast_id"``), or None.
        how: ``"mean"`` or ``"max"`` aggregation of image probabilities within a group.
        preprocessing: the ``preprocessing`` entry, read by :func:`medbundle.deploy.preprocess.build_preprocessing`.
        onnx_file: the ONNX model file (``files.onnx``, default ``model.onnx``, next to ``deploy.json``).
        raw: the whole parsed file.
    """

    task: str
    input_name: str
    output_name: str
    input_shape: tuple[int | None, ...] | None
    activation: str
    class_names: tuple[str, ...] | None
    threshold: float | None
    threshold_key: str | None
    thresholds: dict[str, float]
    group_key: str | None
    how: str
    preprocessing: dict[str, Any]
    onnx_file: Path
    raw: dict[str, Any]


def load_spec(source: str | os.PathLike | Mapping[str, Any], model_dir: str | os.PathLike | None = None) -> DeploySpec:
    """Read and check ``deploy.json``.

    Args:
        source: an export folder, the ``deploy.json`` file, or its parsed content.
        model_dir: the folder the ONNX file is relative to, for a parsed `source`; default the current folder.

    Raises:
        DeploySpecError: the file is missing or invalid; the message names the file and the entry.
    """
    if isinstance(source, Mapping):
        raw, where, folder = dict(source), "deploy.json", Path(model_dir or ".")
    else:
        path = Path(source)
        if path.is_dir():
            path = path / DEPLOY_FILE
        if not path.is_file():
            raise DeploySpecError(
                f"{path} not found: pass the folder written by the export (model.onnx and {DEPLOY_FILE})."
            )
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DeploySpecError(f"{path} is not readable JSON ({exc}); export the model again.") from exc
        where, folder = str(path), path.parent
    if not isinstance(raw, dict):
        raise DeploySpecError(f"{where} must hold a JSON object, got {type(raw).__name__}.")
    return _parse(raw, where, folder)


def _parse(raw: dict[str, Any], where: str, folder: Path) -> DeploySpec:
    def fail(message: str) -> DeploySpecError:
        return DeploySpecError(f"{where}: {message}")

    version = raw.get("format_version")
    if version not in FORMAT_VERSIONS:
        raise fail(
            f"format_version {version!r} is not supported by this medbundle.deploy (reads {list(FORMAT_VERSIONS)}); "
            "install the medbundle version that exported the model, or export it again."
        )
    task = raw.get("task")
    if task not in task_names():
        raise fail(f"task {task!r} is not one of the registered tasks {task_names()} (medbundle.tasks).")
    inputs, outputs = _mapping(raw, "input", fail), _mapping(raw, "output", fail)
    activation = outputs.get("activation")
    if activation not in _ACTIVATIONS:
        raise fail(f"output.activation {activation!r} is not one of {list(_ACTIVATIONS)}.")
    class_names = raw.get("class_names")
    if class_names is not None and (not isinstance(class_names, list) or not class_names):
        raise fail(f"class_names must be a non-empty list or null, got {class_names!r}.")
    thresholds = raw.get("thresholds") or {}
    if not isinstance(thresholds, dict):
        raise fail(f"thresholds must be an object, got {thresholds!r}.")
    threshold_key = raw.get("decision_threshold_key")
    threshold = None
    if threshold_key is not None:
        value = thresholds.get(threshold_key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise fail(f"decision_threshold_key {threshold_key!r} names no finite number in thresholds {thresholds}.")
        threshold = float(value)
    aggregation = raw.get("aggregation")
    group_key, how = None, "mean"
    if aggregation is not None:
        if not isinstance(aggregation, dict) or not isinstance(aggregation.get("group_key"), str):
            raise fail(f"aggregation must be null or {{'group_key': str, 'how': 'mean'|'max'}}, got {aggregation!r}.")
        group_key, how = aggregation["group_key"], aggregation.get("how", "mean")
        if how not in _AGGREGATIONS:
            raise fail(f"aggregation.how {how!r} is not one of {list(_AGGREGATIONS)}.")
    shape = inputs.get("shape")
    if shape is not None and (
        not isinstance(shape, list) or len(shape) != 4 or not all(s is None or isinstance(s, int) for s in shape)
    ):
        raise fail(f"input.shape must be [N, C, H, W] with null for dynamic sizes, got {shape!r}.")
    files = raw.get("files") or {}
    onnx_name = files.get("onnx", "model.onnx") if isinstance(files, dict) else "model.onnx"
    preprocessing = raw.get("preprocessing")
    if not isinstance(preprocessing, dict):
        raise fail(f"preprocessing must be an object, got {preprocessing!r}.")
    return DeploySpec(
        task=task,
        input_name=str(inputs.get("name", "image")),
        output_name=str(outputs.get("name", "logits")),
        input_shape=None if shape is None else tuple(shape),
        activation=activation,
        class_names=None if class_names is None else tuple(str(name) for name in class_names),
        threshold=threshold,
        threshold_key=threshold_key,
        thresholds={str(key): value for key, value in thresholds.items()},
        group_key=group_key,
        how=how,
        preprocessing=preprocessing,
        onnx_file=folder / onnx_name,
        raw=raw,
    )


def _mapping(raw: dict[str, Any], key: str, fail) -> dict[str, Any]:
    value = raw.get(key)
    if not isinstance(value, dict):
        raise fail(f"{key} must be an object, got {value!r}.")
    return value
