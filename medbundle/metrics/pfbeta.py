"""Probabilistic F-beta, the RSNA Screening Mammography competition metric, and per-breast aggregation.

The competition scores one prediction per breast (``<patient_id>_<laterality>``) with the
probabilistic F1 of the host's reference code: predictions are not thresholded, each one counts
as a fractional true or false positive.  :func:`pfbeta` reproduces that code exactly (vectorised),
and :func:`aggregate_by_breast` turns per-image outputs into the per-breast rows it is scored on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from medbundle.metrics.grouping import aggregate_groups
from medbundle.metrics.inputs import binary_inputs

__all__ = ["aggregate_by_breast", "pfbeta"]


def pfbeta(labels: npt.ArrayLike, predictions: npt.ArrayLike, beta: float = 1.0) -> float:
    """Probabilistic F-beta exactly as defined by the RSNA competition host.

    Predictions are clipped to ``[0, 1]``; ``ctp`` / ``cfp`` are the summed predictions on positive /
    negative rows; precision ``ctp / (ctp + cfp)``, recall ``ctp / n_positive`` and the result
    ``(1 + beta²)·P·R / (beta²·P + R)``, or 0 when P or R is 0.  Where the host code would divide by
    zero (no positive label, or all predictions 0) this returns 0.0 instead of raising.

    Args:
        labels: ground truth per row (0 or 1), shape ``(N,)`` or ``(N, 1)``.
        predictions: predicted probability of the positive class per row (not thresholded).
        beta: weight of recall relative to precision (the competition uses 1).

    Returns:
        The probabilistic F-beta score in ``[0, 1]``.
    """
    y, p = binary_inputs(labels, predictions)
    p = np.clip(p, 0.0, 1.0)
    positive = y == 1.0
    ctp = float(p[positive].sum())
    cfp = float(p[~positive].sum())
    y_true_count = int(positive.sum())
    if y_true_count == 0 or ctp + cfp == 0.0:
        return 0.0
    c_precision = ctp / (ctp + cfp)
    c_recall = ctp / y_true_count
    if c_precision > 0 and c_recall > 0:
        beta_squared = beta * beta
        return (1 + beta_squared) * c_precision * c_recall / (beta_squared * c_precision + c_recall)
    return 0.0


def aggregate_by_breast(
    patient_ids: Sequence[object],
    lateralities: Sequence[str],
    labels: npt.ArrayLike,
    predictions: npt.ArrayLike,
    how: str = "mean",
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Reduce per-image labels and predictions to one row per breast, the unit the competition scores.

    Breasts come out in order of first appearance in the input.  The breast label is the maximum of
    its image labels (in the Kaggle data all images of a breast share the label; if they do not, a
    breast with any positive image is positive).  The breast prediction is the mean or max of its
    image predictions.

    Args:
        patient_ids: patient id per image.
        lateralities: ``"L"`` / ``"R"`` per image.
        labels: 0/1 label per image, shape ``(N,)`` or ``(N, 1)``.
        predictions: predicted probability per image, shape ``(N,)`` or ``(N, 1)``.
        how: ``"mean"`` or ``"max"``, how the image predictions of a breast are combined.

    Returns:
        ``(breast_ids, labels, predictions)``: ids ``f"{patient_id}_{laterality}"`` and 1-D float arrays.
    """
    y, p = binary_inputs(labels, predictions)
    if not len(patient_ids) == len(lateralities) == y.size:
        raise ValueError(
            f"patient_ids ({len(patient_ids)}), lateralities ({len(lateralities)}) and labels/predictions "
            f"({y.size}) must have one entry per image."
        )
    breast_ids = [f"{pid}_{lat}" for pid, lat in zip(patient_ids, lateralities)]
    return aggregate_groups(breast_ids, y, p, how=how)
