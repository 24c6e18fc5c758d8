"""``deploy.json``: what a predictor needs beside ``model.onnx`` to run a bundle's model without torch or MONAI.

Everything is read from the bundle's parsed ``inference.yaml`` and the checkpoint, never restated by hand, so
the sidecar says exactly what ``monai.bundle run`` does. Schema (``format_version`` 1)::

    {
      "format_version": 1,
      "task": a registered task (medbundle.tasks), e.g. "rsna",
      "input": {"name": "image", "shape": [null, C, H, W], "dtype": "float32", "value_range": [0, 1]},
      "output": {"name": "logits", "shape": [null, K], "activation": "sigmoid" | "softmax", "temperature": T,
                 "logit_bias": b},
      "class_names": [K names in logit order] | null,
      "thresholds": {"roc_threshold": ..., "pf1_threshold": ..., "auroc": ..., "best_auroc": ...} | {},
      "decision_threshold_key": "pf1_threshold" | "roc_threshold" | null,
      "aggregation": {"group_key": "breast_id", "how": "mean" | "max"} | null,
      "preprocessing": {"channels": C, "spatial_size": [H, W], "steps": [...]},
      "files": {"onnx": "model.onnx", "ts": "model.ts"},
      "source": {"bundle", "checkpoint", "checkpoint_sha256", "medbundle_version", "config"}
    }

- ``input``: a float32 batch of preprocessed images in ``[0, 1]``, any batch size (``null``); the network
  normalises inside. ``C`` is what the preprocessing reads (1 for grayscale readers even when the backbone has
  an RGB stem: the model repeats the channel itself).
- ``output``: ``K`` logits per image; ``activation`` turns them into probabilities (the bundle's
  ``postprocessing``). The logits are already divided by ``temperature`` and shifted by ``logit_bias`` (the
  calibration stored in the checkpoint, 1 and 0 when none), inside the exported graph: recorded here, never
  applied again.
- ``thresholds``: as stored by training (probabilities, ``auroc`` entries are validation scores); ``{}`` for a
  multi-class task. ``decision_threshold_key`` names the one inference binarises at (``probability >=
  threshold`` is positive); ``null`` when the task predicts the arg-max class.
- ``aggregation``: image probabilities are combined per ``group_key`` (an id of the datalist items, e.g. a
  breast ``<patient_id>_<laterality>``) with ``how`` before binarising; ``null``: one decision per image.
- ``preprocessing``: see :mod:`medbundle.export.preprocessing_spec`.
- ``files``: the exported model files, relative to ``deploy.json``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from monai.transforms import Activationsd, Compose

from medbundle.export.bundle_network import BundleNetwork
from medbundle.export.preprocessing_spec import describe_preprocessing

__all__ = ["DEPLOY_FILE", "FORMAT_VERSION", "INPUT_NAME", "OUTPUT_NAME", "deploy_spec"]

FORMAT_VERSION = 1
DEPLOY_FILE = "deploy.json"
INPUT_NAME = "image"
OUTPUT_NAME = "logits"
#: the datalist key that identifies single images: a writer grouping by it aggregates nothing
_PER_IMAGE_KEY = "image_id"


def _activation(postprocessing: Any) -> str:
    """"sigmoid" or "softmax", from the ``Activationsd`` of the bundle's parsed ``postprocessing``."""
    transforms = postprocessing.flatten().transforms if isinstance(postprocessing, Compose) else [postprocessing]
    for transform in transforms:
        if isinstance(transform, Activationsd):
            if transform.sigmoid[0]:
                return "sigmoid"
            if transform.softmax[0]:
                return "softmax"
    raise ValueError("inference.yaml's postprocessing has no Activationsd with sigmoid or softmax.")


def _aggregation(handlers: Iterable[Any]) -> dict[str, str] | None:
    """The group key and method of the first prediction writer that groups images, else None."""
    for handler in handlers:
        group_key = getattr(handler, "group_key", None)
        if group_key not in (None, _PER_IMAGE_KEY):
            return {"group_key": group_key, "how": handler.how}
    return None


def _medbundle_version() -> str | None:
    try:
        return version("medbundle")
    except PackageNotFoundError:
        return None


def _optional(loaded: BundleNetwork, key: str) -> Any:
    return loaded.parser.get_parsed_content(key) if key in loaded.parser else None


def deploy_spec(loaded: BundleNetwork, files: Mapping[str, str]) -> dict[str, Any]:
    """The ``deploy.json`` content for a loaded bundle network (schema in the module docstring).

    Args:
        loaded: the bundle's network and checkpoint, from :func:`~medbundle.export.load_bundle_network`.
        files: exported format -> file name relative to ``deploy.json``, e.g. ``{"onnx": "model.onnx"}``.

    Raises:
        ValueError: the bundle's preprocessing or postprocessing cannot be described, or its ``threshold_key``
            is not among the checkpoint's thresholds.
    """
    parser = loaded.parser
    preprocessing = describe_preprocessing(parser.get_parsed_content("preprocessing"))
    num_classes = int(parser.get_parsed_content("network_def#num_classes"))
    thresholds = {key: float(value) for key, value in loaded.entries.get("thresholds", {}).items()}
    threshold_key = _optional(loaded, "threshold_key")
    if threshold_key is not None and threshold_key not in thresholds:
        raise ValueError(
            f"inference.yaml binarises at threshold_key {threshold_key!r}, but checkpoint {loaded.checkpoint} "
            f"stores thresholds {sorted(thresholds)}: export a best model written by the bundle's training."
        )
    class_names = _optional(loaded, "class_names")
    return {
        "format_version": FORMAT_VERSION,
        "task": loaded.task,
        "input": {
            "name": INPUT_NAME,
            "shape": [None, preprocessing["channels"], *preprocessing["spatial_size"]],
            "dtype": "float32",
            "value_range": [0, 1],
        },
        "output": {
            "name": OUTPUT_NAME,
            "shape": [None, num_classes],
            "activation": _activation(parser.get_parsed_content("postprocessing")),
            "temperature": float(getattr(loaded.network, "temperature", 1.0)),
            "logit_bias": float(getattr(loaded.network, "logit_bias", 0.0)),
        },
        "class_names": None if class_names is None else [str(name) for name in class_names],
        "thresholds": thresholds,
        "decision_threshold_key": threshold_key,
        "aggregation": _aggregation(parser.get_parsed_content("handlers")),
        "preprocessing": preprocessing,
        "files": dict(files),
        "source": {
            "bundle": str(loaded.bundle),
            "checkpoint": str(loaded.checkpoint),
            "checkpoint_sha256": loaded.sha256,
            "medbundle_version": _medbundle_version(),
            "config": loaded.entries["config"],
        },
    }
