"""Store the out-of-fold threshold in a trained ``model.pt``, where inference and the ensemble read thresholds.

``thresholds`` holds floats only (:func:`medbundle.checkpoints.stored_thresholds` reads every entry as one),
so the threshold goes there as ``oof_threshold`` (``--threshold_key oof_threshold``), and the aggregation
it was chosen with, a name, into the stored ``config`` as ``oof_aggregation``. The file is replaced
atomically: a process killed meanwhile leaves the old checkpoint, never a truncated one.
"""

from __future__ import annotations

from pathlib import Path

import torch

from medbundle.io.atomic_file import atomic_write

__all__ = ["store_oof_threshold"]


def store_oof_threshold(checkpoint: str | Path, threshold: float, aggregation: str | None = None) -> None:
    """Set ``thresholds["oof_threshold"]`` (and ``config["oof_aggregation"]``) in a best-model checkpoint.

    Args:
        checkpoint: a ``model.pt`` written by a bundle's training.
        threshold: the threshold chosen on the out-of-fold predictions.
        aggregation: how the images of a group were combined for it (rsna ``mean`` / ``max``), or None.

    Raises:
        KeyError: the checkpoint has no ``thresholds`` entry (a multi-class bundle, or not a best model).
    """
    path = Path(checkpoint)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if "thresholds" not in state:
        raise KeyError(f"{path} has no 'thresholds' entry (it has {sorted(state)}): only binary bundles store thresholds.")
    state["thresholds"] = {**state["thresholds"], "oof_threshold": float(threshold)}
    if aggregation is not None:
        state["config"] = {**state.get("config", {}), "oof_aggregation": aggregation}
    with atomic_write(path) as stream:
        torch.save(state, stream)
