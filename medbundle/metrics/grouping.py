"""Reduce per-image labels and predictions to one row per group (breast, patient, study)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = ["aggregate_groups"]


def aggregate_groups(
    groups: Sequence[object], labels: npt.ArrayLike | None, predictions: npt.ArrayLike, how: str = "mean"
) -> tuple[list[str], np.ndarray | None, np.ndarray]:
    """One label and one prediction per group, in order of first appearance.

    A group's label is the max of its image labels (any positive image makes it positive); its
    prediction is the mean or max of its image predictions.

    Args:
        groups: group id per image.
        labels: label per image, shape ``(N,)`` or ``(N, 1)``; None when unknown (inference).
        predictions: prediction per image, shape ``(N,)`` or ``(N, 1)``.
        how: ``"mean"`` or ``"max"``.

    Returns:
        ``(group_ids, labels, predictions)`` with 1-D float arrays (labels None when not given).
    """
    if how not in ("mean", "max"):
        raise ValueError(f"how must be 'mean' or 'max', got {how!r}.")
    p = np.asarray(predictions, dtype=float).reshape(-1)
    y = np.full(p.shape, np.nan) if labels is None else np.asarray(labels, dtype=float).reshape(-1)
    if not len(groups) == y.size == p.size:
        raise ValueError(f"groups ({len(groups)}), labels ({y.size}) and predictions ({p.size}) must have one entry per image.")
    frame = pd.DataFrame({"group": [str(g) for g in groups], "label": y, "prediction": p})
    grouped = frame.groupby("group", sort=False).agg(label=("label", "max"), prediction=("prediction", how))
    grouped_labels = None if labels is None else grouped["label"].to_numpy(float)
    return grouped.index.tolist(), grouped_labels, grouped["prediction"].to_numpy(float)
