"""What a best-model checkpoint stores beside the weights, and reading it back without unpickling code.

Evaluation and inference must rebuild exactly the network that was trained (backbone, head, classes,
input size, normalisation) and binarise at the threshold chosen on validation. Storing both in
``model.pt`` means a user runs ``evaluate.yaml`` / ``inference.yaml`` without repeating training flags,
and a checkpoint cannot silently be paired with the wrong settings.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = ["StoredConfig", "stored_aggregation", "stored_config", "stored_thresholds"]

_PLAIN = (str, int, float, bool, type(None))
logger = logging.getLogger(__name__)


def _check_plain(key: str, value: Any) -> Any:
    """``value`` as nested lists/dicts of plain scalars, which ``torch.load(weights_only=True)`` accepts."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, (list, tuple)):
        return [_check_plain(key, v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _check_plain(key, v) for k, v in value.items()}
    raise TypeError(
        f"stored config entry {key!r} is a {type(value).__name__}; store plain numbers, strings, lists or dicts "
        "(e.g. a dtype as its name) so the checkpoint loads with weights_only=True."
    )


class StoredConfig:
    """Training settings to save in a checkpoint's ``save_dict`` (Ignite calls ``state_dict``).

    Example (bundle config)::

        stored_config: {_target_: medbundle.checkpoints.StoredConfig, backbone: "@backbone", image_size: "@image_size"}
        best_saver: {_target_: CheckpointSaver, save_dict: {model: "@network", config: "@stored_config"}, ...}

    Args:
        values: the settings, as plain values (numbers, strings, None, lists and dicts of them).

    Raises:
        TypeError: a value is not plain; the message names its key.
    """

    def __init__(self, **values: Any) -> None:
        self.values = {key: _check_plain(key, value) for key, value in values.items()}

    def state_dict(self) -> dict[str, Any]:
        return dict(self.values)

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        self.values = dict(state_dict)


def _stored_entry(checkpoint: str | Path, key: str) -> Any:
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found: train the bundle first or pass --ckpt_path")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if key not in state:
        raise KeyError(
            f"checkpoint {path} has no {key!r} entry (it has {sorted(state)}); it was not saved by this medbundle "
            "version: retrain, or pass every setting it lacks explicitly (e.g. --backbone, --image_size)."
        )
    return state[key]


def stored_config(checkpoint: str | Path, defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The training settings saved with a checkpoint by :class:`StoredConfig` (entry ``config``).

    Args:
        checkpoint: the ``model.pt`` written by training.
        defaults: settings to use where the checkpoint has none. With defaults, a missing checkpoint is not an
            error here (a warning is logged): a self-contained ``inference.yaml`` then still resolves for MONAI's
            tools (``verify_net_in_out``, ``ckpt_export``), and loading the weights reports the missing file.

    Raises:
        FileNotFoundError: the checkpoint does not exist and no defaults are given (train first, or set `ckpt_path`).
        KeyError: the checkpoint holds no settings and no defaults are given; the message says what to do.
    """
    if defaults is None:
        return dict(_stored_entry(checkpoint, "config"))
    try:
        stored = _stored_entry(checkpoint, "config")
    except (FileNotFoundError, KeyError) as error:
        logger.warning("%s; using the bundle's default settings %s", error.args[0], dict(defaults))
        stored = {}
    return {**defaults, **stored}


def stored_thresholds(checkpoint: str | Path, key: str = "thresholds") -> dict[str, float]:
    """Read the decision thresholds saved beside the weights by `ROCThresholdHandler`.

    Raises:
        FileNotFoundError: the checkpoint does not exist (train first, or set `ckpt_path`).
        KeyError: the checkpoint holds no thresholds (it was not written by a medbundle training run).
    """
    return {k: float(v) for k, v in _stored_entry(checkpoint, key).items()}


def stored_aggregation(stored: Mapping[str, Any], threshold_key: str) -> str:
    """The per-group aggregation that belongs to the decision threshold `threshold_key`.

    A cross-validation sweep (``scripts/sweep.py summary``) picks the out-of-fold threshold together with the
    aggregation it was chosen for (``oof_threshold`` with ``oof_aggregation``, mean or max per breast), so that
    pair must be used together; every other threshold was chosen on training's own ``aggregation``.

    Args:
        stored: the checkpoint's settings (:func:`stored_config`).
        threshold_key: the key of the threshold the run binarises at.
    """
    if threshold_key == "oof_threshold" and "oof_aggregation" in stored:
        return str(stored["oof_aggregation"])
    return str(stored["aggregation"])
