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

    Binary predictions (one score per image): a group's label is the max of its image labels (any
    positive image makes it positive); its prediction is the mean or max of its image predictions.

    Multi-class predictions (one probability vector per image, shape ``(N, K)``): a group's
    prediction is the column-wise mean or max of its images' vectors. Use ``"mean"``: it keeps rows
    summing to 1, whereas ``"max"`` rows do not and so are no longer probabilities (fine for ranking
    and AUROC, wrong for log loss). Every image of a group must carry the same class label, which
    becomes the group's label; there is no "any positive" rule between classes.

    Args:
        groups: group id per image.
        labels: label per image, shape ``(N,)`` or ``(N, 1)``; None when unknown (inference).
        predictions: prediction per image, shape ``(N,)`` or ``(N, 1)``, or ``(N, K)`` with ``K >= 2``.
        how: ``"mean"`` or ``"max"``.

    Returns:
        ``(group_ids, labels, predictions)``: labels a 1-D float array ``(G,)`` (None when not
        given), predictions ``(G,)`` or, for multi-class input, ``(G, K)``, as floats.

    Raises:
        ValueError: ``how`` is unknown, the inputs are not one entry per image, or (multi-class) a
            group holds images with different labels.
    """
    if how not in ("mean", "max"):
        raise ValueError(f"how must be 'mean' or 'max', got {how!r}.")
    p = np.asarray(predictions, dtype=float)
    vectors = p.ndim == 2 and p.shape[1] >= 2
    if not vectors:
        p = p.reshape(-1)
    y = np.full(len(p), np.nan) if labels is None else np.asarray(labels, dtype=float).reshape(-1)
    if not len(groups) == y.size == len(p):
        raise ValueError(
            f"groups ({len(groups)}), labels ({y.size}) and predictions ({len(p)}) must have one entry per image."
        )
    keys = [str(g) for g in groups]
    if not vectors:
        frame = pd.DataFrame({"group": keys, "label": y, "prediction": p})
        grouped = frame.groupby("group", sort=False).agg(label=("label", "max"), prediction=("prediction", how))
        grouped_labels = None if labels is None else grouped["label"].to_numpy(float)
        return grouped.index.tolist(), grouped_labels, grouped["prediction"].to_numpy(float)
    labels_per_group = pd.Series(y).groupby(keys, sort=False).unique()
    for group, values in labels_per_group.items():
        if values.size > 1:
            raise ValueError(
                f"group {group!r} holds images with different labels {values.tolist()}; with one probability "
                "vector per image all images of a group must share one class label: fix the labels or group "
                "by a finer id."
            )
    grouped_predictions = pd.DataFrame(p).groupby(keys, sort=False).agg(how)
    grouped_labels = None if labels is None else np.array([values[0] for values in labels_per_group], float)
    return labels_per_group.index.tolist(), grouped_labels, grouped_predictions.to_numpy(float)
