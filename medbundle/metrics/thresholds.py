"""Choosing a decision threshold on validation scores.

Two criteria: the ROC point closest to the ideal corner (balances sensitivity and specificity,
used to report them) and the threshold whose binarised predictions maximise pF-beta (the usual
RSNA trick: thresholded predictions scored higher than raw probabilities on the leaderboard).
A prediction is positive when ``score >= threshold``, everywhere in :mod:`medbundle.metrics`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from sklearn.metrics import roc_curve

from medbundle.metrics.inputs import binary_inputs

__all__ = ["pfbeta_threshold", "roc_threshold"]


def _two_class_inputs(labels: npt.ArrayLike, scores: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate inputs and require both classes, without which no threshold is meaningful."""
    y, s = binary_inputs(labels, scores)
    if np.unique(y).size < 2:
        raise ValueError(
            f"labels hold only class {int(y[0]) if y.size else 'none'} ({y.size} rows); a threshold needs "
            "positive and negative rows. Use a validation split that contains both (e.g. fewer folds)."
        )
    return y, s


def roc_threshold(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Threshold of the ROC point closest (Euclidean) to the ideal corner FPR 0, TPR 1.

    Every distinct score is a candidate (``drop_intermediate=False``: a point dropped as collinear
    can be the closest one); sklearn's leading ``inf`` threshold (nothing predicted positive) is
    skipped.  Ties go to the highest threshold.

    Args:
        labels: 0/1 ground truth per row.
        scores: score per row, higher means more likely positive.

    Returns:
        The threshold; predict positive when ``score >= threshold``.

    Raises:
        ValueError: labels hold only one class.
    """
    y, s = _two_class_inputs(labels, scores)
    fpr, tpr, thresholds = roc_curve(y, s, drop_intermediate=False)
    distance = np.hypot(fpr[1:], 1.0 - tpr[1:])
    return float(thresholds[1:][np.argmin(distance)])


def pfbeta_threshold(
    labels: npt.ArrayLike,
    scores: npt.ArrayLike,
    beta: float = 1.0,
    thresholds: npt.ArrayLike | None = None,
) -> tuple[float, float]:
    """Threshold maximising the pF-beta of the binarised predictions ``scores >= threshold``.

    With 0/1 predictions pF-beta is the ordinary F-beta, computed for all candidates at once from
    counts of positive / negative scores at or above each candidate (binary search in the sorted
    scores), so 10k+ candidates cost one vectorised pass.  Ties go to the first candidate (the
    lowest threshold with the default candidates).

    Args:
        labels: 0/1 ground truth per row.
        scores: score per row, higher means more likely positive.
        beta: weight of recall relative to precision.
        thresholds: candidate thresholds; default the distinct scores (which covers every distinct
            binarisation that predicts at least one positive).

    Returns:
        ``(threshold, best_pfbeta)``; ``best_pfbeta`` equals
        ``pfbeta(labels, scores >= threshold, beta)``.

    Raises:
        ValueError: labels hold only one class, or ``thresholds`` is empty.
    """
    y, s = _two_class_inputs(labels, scores)
    candidates = np.unique(s) if thresholds is None else np.asarray(thresholds, dtype=float).reshape(-1)
    if candidates.size == 0:
        raise ValueError("thresholds is empty; pass at least one candidate or None for the distinct scores.")
    positive_scores = np.sort(s[y == 1.0])
    negative_scores = np.sort(s[y == 0.0])
    tp = positive_scores.size - np.searchsorted(positive_scores, candidates, side="left")
    fp = negative_scores.size - np.searchsorted(negative_scores, candidates, side="left")
    beta_squared = beta * beta
    # F-beta = (1 + b²)·TP / ((1 + b²)·TP + b²·FN + FP); zero when TP is zero (nothing or no positive predicted).
    denominator = (1 + beta_squared) * tp + beta_squared * (positive_scores.size - tp) + fp
    score = np.where(tp > 0, (1 + beta_squared) * tp / np.maximum(denominator, 1), 0.0)
    best = int(np.argmax(score))
    return float(candidates[best]), float(score[best])
