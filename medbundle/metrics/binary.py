"""Threshold-free and thresholded summaries of a binary classifier on a validation set.

A prediction is positive when ``score >= threshold``, as in :mod:`medbundle.metrics.thresholds`.
Quantities undefined on the given data (AUROC with one class, sensitivity without positives,
specificity without negatives) are NaN rather than errors, so a summary can still be logged.
"""

from __future__ import annotations

import warnings

import numpy as np
import numpy.typing as npt
from scipy.stats import rankdata

from medbundle.metrics.inputs import binary_inputs
from medbundle.metrics.partial_auc import partial_auc
from medbundle.metrics.pfbeta import pfbeta
from medbundle.metrics.thresholds import pfbeta_threshold

__all__ = ["auroc", "binary_summary", "sensitivity_specificity"]


def auroc(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Area under the ROC curve; NaN with a warning when the labels hold only one class.

    Args:
        labels: 0/1 ground truth per row.
        scores: score per row, higher means more likely positive.

    Returns:
        The AUROC in ``[0, 1]``, or NaN when it is undefined.
    """
    y, s = binary_inputs(labels, scores)
    if np.unique(y).size < 2:
        warnings.warn(
            f"AUROC is undefined: the {y.size} labels hold only one class; returning NaN.",
            RuntimeWarning,
            stacklevel=2,
        )
        return float("nan")
    # the Mann-Whitney statistic with average ranks for ties: exactly sklearn's roc_auc_score (a tie counts one
    # half), without its input checks, which cost 50x the computation when a report bootstraps it
    ranks = rankdata(s)
    positives = y == 1
    n_positive, n_negative = int(positives.sum()), int(y.size - positives.sum())
    return float((ranks[positives].sum() - n_positive * (n_positive + 1) / 2) / (n_positive * n_negative))


def _confusion(labels: np.ndarray, scores: np.ndarray, threshold: float) -> tuple[int, int, int, int]:
    """Counts ``(tn, fp, fn, tp)`` of ``scores >= threshold`` against 0/1 ``labels``."""
    positive, predicted = labels == 1, scores >= threshold  # counted directly: a report bootstraps this 1,000s of times
    tp = int((positive & predicted).sum())
    fn = int(positive.sum()) - tp
    fp = int(predicted.sum()) - tp
    return labels.size - tp - fn - fp, fp, fn, tp


def sensitivity_specificity(labels: npt.ArrayLike, scores: npt.ArrayLike, threshold: float) -> tuple[float, float]:
    """Sensitivity (TPR) and specificity (TNR) of ``scores >= threshold``.

    Args:
        labels: 0/1 ground truth per row.
        scores: score per row.
        threshold: decision threshold, e.g. from :func:`medbundle.metrics.roc_threshold`.

    Returns:
        ``(sensitivity, specificity)``; either is NaN when its class is absent from ``labels``.
    """
    y, s = binary_inputs(labels, scores)
    tn, fp, fn, tp = _confusion(y, s, threshold)
    sensitivity = tp / (tp + fn) if tp + fn else float("nan")
    specificity = tn / (tn + fp) if tn + fp else float("nan")
    return sensitivity, specificity


def binary_summary(labels: npt.ArrayLike, scores: npt.ArrayLike, threshold: float) -> dict[str, float | int]:
    """All validation numbers of a binary classifier in one flat dict (ready to log).

    Args:
        labels: 0/1 ground truth per row.
        scores: predicted probability per row (pF-beta needs probabilities, not logits).
        threshold: decision threshold for the thresholded quantities.

    Returns:
        Dict with ``auroc``, ``pauc`` (the ISIC partial AUC above 80 % TPR), ``pf1_prob`` (probabilistic F1 of the raw probabilities), ``pf1_best``
        (F1 binarised at the best threshold on these data), ``pf1_at_threshold`` (binarised at
        ``threshold``), ``threshold``, ``sensitivity``, ``specificity`` and the confusion counts ``tp``,
        ``fp``, ``tn``, ``fn``. The names match the training log's ``val_pf1_prob`` / ``val_pf1_best``.
    """
    y, s = binary_inputs(labels, scores)
    tn, fp, fn, tp = _confusion(y, s, threshold)
    sensitivity, specificity = sensitivity_specificity(y, s, threshold)
    return {
        "auroc": auroc(y, s),
        "pauc": partial_auc(y, s),
        "pf1_prob": pfbeta(y, s),
        "pf1_best": pfbeta_threshold(y, s)[1],
        "pf1_at_threshold": pfbeta(y, (s >= threshold).astype(float)),
        "threshold": float(threshold),
        "sensitivity": sensitivity,
        "specificity": specificity,
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
    }
