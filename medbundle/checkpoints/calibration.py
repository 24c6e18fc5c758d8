"""Store a fitted calibration in a trained ``model.pt``: inference, the ensemble and the export then calibrate.

The calibration is the network's own ``temperature`` and ``logit_bias`` buffers (:class:`~medbundle.networks.
TimmClassifier` returns ``logits / temperature + logit_bias``), so every path that loads the weights
(``inference.yaml``, the ensemble, TorchScript / ONNX export and ``deploy.json``'s predictor) gives the same
calibrated probabilities without knowing about it. A binary checkpoint's stored thresholds are probabilities: they
move with the calibration, ``sigmoid((logit(p) - b_old) * T_old / T_new + b_new)``, so each still takes the same
decisions; the stored config records the calibration and what it was fitted on.
The file is replaced atomically, as :func:`medbundle.sweep.checkpoint_update.store_oof_threshold` does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from medbundle.io.atomic_file import atomic_write

__all__ = ["rescaled_threshold", "store_temperature", "stored_bias", "stored_temperature"]


def rescaled_threshold(threshold: float, old: float, new: float, old_bias: float = 0.0, new_bias: float = 0.0) -> float:
    """The probability threshold taking the same decisions after the logits' calibration changes from temperature
    `old` and bias `old_bias` to `new` and `new_bias`."""
    p = min(max(float(threshold), 1e-12), 1 - 1e-12)
    z = (math.log(p / (1 - p)) - old_bias) * old / new + new_bias
    return 1.0 / (1.0 + math.exp(-z))


def stored_temperature(state: Mapping[str, Any]) -> float:
    """The temperature a loaded ``model.pt`` applies (1 for an uncalibrated or older checkpoint)."""
    value = state.get("model", {}).get("temperature")
    return 1.0 if value is None else float(value)


def stored_bias(state: Mapping[str, Any]) -> float:
    """The logit bias a loaded ``model.pt`` adds after its temperature (0 for an uncalibrated or older checkpoint)."""
    value = state.get("model", {}).get("logit_bias")
    return 0.0 if value is None else float(value)


def store_temperature(
    checkpoint: str | Path, temperature: float, fitted_on: str = "validation", bias: float = 0.0
) -> dict[str, float]:
    """Set the network's temperature and logit bias in a best-model checkpoint and rescale its stored thresholds.

    Args:
        checkpoint: a ``model.pt`` written by a bundle's training.
        temperature: the new temperature (the logits the checkpoint's network computes before any scaling are
            divided by it); replaces, does not compound, any stored one.
        fitted_on: what it was fitted on, recorded as ``config["temperature_fitted_on"]``.
        bias: the new logit bias, added after the temperature (:func:`medbundle.metrics.fit_platt`; 0 for
            temperature scaling alone); replaces any stored one.

    Returns:
        The thresholds as stored now (empty for a multi-class checkpoint).

    Raises:
        ValueError: a temperature that is not a positive finite number, a bias that is not finite, or a checkpoint
            without a ``model`` entry.
    """
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature {temperature!r}: a positive finite number is needed.")
    if not math.isfinite(bias):
        raise ValueError(f"bias {bias!r}: a finite number is needed.")
    path = Path(checkpoint)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if "model" not in state:
        raise ValueError(f"{path} has no 'model' entry (it has {sorted(state)}): pass a best model.pt of a bundle.")
    old, old_bias = stored_temperature(state), stored_bias(state)
    state["model"] = {**state["model"], "temperature": torch.tensor(float(temperature)),
                      "logit_bias": torch.tensor(float(bias))}  # fmt: skip
    thresholds = {k: rescaled_threshold(v, old, temperature, old_bias, bias) for k, v in state.get("thresholds", {}).items()}
    if "thresholds" in state:
        state["thresholds"] = thresholds
    state["config"] = {**state.get("config", {}), "temperature": float(temperature), "logit_bias": float(bias),
                       "temperature_fitted_on": fitted_on}  # fmt: skip
    with atomic_write(path) as stream:
        torch.save(state, stream)
    return thresholds
