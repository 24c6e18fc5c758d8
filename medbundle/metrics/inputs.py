"""Input checks shared by the binary and multi-class metrics."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["binary_inputs", "multiclass_inputs"]


def binary_inputs(labels: npt.ArrayLike, scores: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate and flatten binary labels and real-valued scores for the metric functions.

    Every metric calls it, so they all reject bad input with the same message.
    ``(N, 1)`` arrays (a collated batch of ``[label]`` / a one-logit model output) are flattened.

    Args:
        labels: ground truth, values 0 or 1, shape ``(N,)`` or ``(N, 1)``.
        scores: predictions or scores, same number of elements as ``labels``.

    Returns:
        ``(labels, scores)`` as 1-D float arrays.

    Raises:
        ValueError: lengths differ, labels are not 0/1, or scores hold NaN.
    """
    y = np.asarray(labels, dtype=float).reshape(-1)
    s = np.asarray(scores, dtype=float).reshape(-1)
    if y.shape != s.shape:
        raise ValueError(
            f"labels have {y.size} elements but predictions/scores have {s.size}; pass one score per label."
        )
    bad = ~np.isin(y, (0.0, 1.0))
    if bad.any():
        raise ValueError(
            f"labels must be 0 or 1; found {np.unique(y[bad])[:5].tolist()} at positions "
            f"{np.flatnonzero(bad)[:5].tolist()}; binarise the labels first."
        )
    if np.isnan(s).any():
        raise ValueError(
            f"predictions/scores hold NaN at positions {np.flatnonzero(np.isnan(s))[:5].tolist()}; "
            "check the model output (e.g. a diverged training run)."
        )
    return y, s


def multiclass_inputs(
    labels: npt.ArrayLike, probabilities: npt.ArrayLike, num_classes: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Validate class-index labels and one probability vector per row for the multi-class metrics.

    Every multi-class metric calls it, so they all reject bad input with the same message. Rows of
    ``probabilities`` need not sum exactly to 1 (float32 softmax output does not), but must be finite.

    Args:
        labels: class index per row, ints or integral floats, shape ``(N,)`` or ``(N, 1)``.
        probabilities: class probabilities (or scores), shape ``(N, K)`` with ``K >= 2``.
        num_classes: expected ``K``, if known; catches a model head of the wrong width.

    Returns:
        ``(labels, probabilities)`` as an int64 array ``(N,)`` and a float64 array ``(N, K)``.

    Raises:
        ValueError: ``probabilities`` is not ``(N, K)`` with ``K >= 2`` (or not ``num_classes``
            wide), lengths differ, labels are not integers in ``[0, K)``, or probabilities hold
            NaN/inf.
    """
    p = np.asarray(probabilities, dtype=float)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(
            f"probabilities must have shape (N, K) with K >= 2 classes, got {p.shape}; "
            "for a model with one logit use the binary metrics (medbundle.metrics.auroc, binary_summary)."
        )
    num_rows, k = p.shape
    if num_classes is not None and k != num_classes:
        raise ValueError(
            f"probabilities have {k} columns but num_classes is {num_classes}; "
            "pass one column per class (check the model's num_classes)."
        )
    y = np.asarray(labels, dtype=float)
    if y.ndim > 2 or (y.ndim == 2 and y.shape[1] != 1):
        raise ValueError(
            f"labels must be class indices of shape (N,) or (N, 1), got {y.shape}; "
            "convert one-hot labels with argmax(axis=1)."
        )
    y = y.reshape(-1)
    if y.size != num_rows:
        raise ValueError(
            f"labels have {y.size} elements but probabilities have {num_rows} rows; "
            "pass one probability vector per label."
        )
    bad = ~((y == np.round(y)) & (y >= 0) & (y < k))
    if bad.any():
        raise ValueError(
            f"labels must be integer class indices in [0, {k}) for K={k} probability columns; found "
            f"{np.unique(y[bad])[:5].tolist()} at positions {np.flatnonzero(bad)[:5].tolist()}; "
            "map class names to indices first and check num_classes."
        )
    not_finite = ~np.isfinite(p).all(axis=1)
    if not_finite.any():
        raise ValueError(
            f"probabilities hold NaN or inf in rows {np.flatnonzero(not_finite)[:5].tolist()}; "
            "check the model output (e.g. a diverged training run)."
        )
    return y.astype(np.int64), p
