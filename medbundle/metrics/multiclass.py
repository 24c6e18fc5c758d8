"""Summaries of a multi-class classifier (e.g. five chest X-ray classes) on a validation set.

Every function takes class-index ``labels`` ``(N,)`` and ``probabilities`` ``(N, K)``; the predicted
class is the argmax of a row. As in :mod:`medbundle.metrics.binary`, quantities undefined on the
given data (the AUROC of a class that is absent or alone in ``labels``, the sensitivity of an absent
class) are NaN rather than errors, so a summary can still be logged.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from sklearn.metrics import f1_score

from medbundle.metrics.binary import auroc
from medbundle.metrics.inputs import multiclass_inputs

__all__ = [
    "accuracy",
    "confusion",
    "log_loss",
    "macro_auroc",
    "macro_f1",
    "multiclass_summary",
    "ovr_auroc",
    "per_class_sensitivity_specificity",
]


def accuracy(labels: npt.ArrayLike, probabilities: npt.ArrayLike) -> float:
    """Share of rows whose argmax class is the true class.

    Args:
        labels: class index per row.
        probabilities: class probabilities per row, shape ``(N, K)``.

    Returns:
        The accuracy in ``[0, 1]``.
    """
    y, p = multiclass_inputs(labels, probabilities)
    return float(np.mean(p.argmax(axis=1) == y))


def macro_f1(labels: npt.ArrayLike, probabilities: npt.ArrayLike) -> float:
    """Unweighted mean F1 of the argmax prediction, exactly ``sklearn`` ``f1_score(average="macro")``.

    The mean runs over the classes that occur in the labels or the predictions (sklearn's default),
    so a class that is neither true nor predicted anywhere does not pull the score down.

    Args:
        labels: class index per row.
        probabilities: class probabilities per row, shape ``(N, K)``.

    Returns:
        The macro F1 in ``[0, 1]``.
    """
    y, p = multiclass_inputs(labels, probabilities)
    predicted = p.argmax(axis=1)
    present = np.union1d(y, predicted)  # sklearn's labels: those in the truth or the predictions
    tp = np.array([np.sum((y == k) & (predicted == k)) for k in present], dtype=float)
    support = np.array([np.sum(y == k) for k in present], dtype=float)
    guessed = np.array([np.sum(predicted == k) for k in present], dtype=float)
    denominator = support + guessed  # F1 = 2 TP / (2 TP + FP + FN); 0 where undefined (zero_division=0)
    f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
    return float(f1.mean())


def ovr_auroc(labels: npt.ArrayLike, probabilities: npt.ArrayLike) -> np.ndarray:
    """One-vs-rest AUROC of each class's probability column.

    Args:
        labels: class index per row.
        probabilities: class probabilities per row, shape ``(N, K)``.

    Returns:
        Float array ``(K,)``; NaN, with one RuntimeWarning naming them, for the classes that are
        absent from ``labels`` or the only class in them (one-vs-rest then has a single class).
    """
    y, p = multiclass_inputs(labels, probabilities)
    aurocs = np.full(p.shape[1], np.nan)
    undefined = []
    for k in range(p.shape[1]):
        positive = y == k
        if positive.all() or not positive.any():
            undefined.append(k)
        else:
            aurocs[k] = auroc(positive, p[:, k])  # medbundle's: sklearn's value without its input checks
    if undefined:
        warnings.warn(
            f"one-vs-rest AUROC is undefined for classes {undefined}: each is absent from the {y.size} labels "
            "or the only class in them; returning NaN for them.",
            RuntimeWarning,
            stacklevel=2,
        )
    return aurocs


def _nanmean_auroc(aurocs: np.ndarray) -> float:
    """Mean of the defined per-class AUROCs; NaN with a warning when none is defined."""
    if np.isnan(aurocs).all():
        warnings.warn(
            "macro AUROC is undefined: no class has a defined AUROC; returning NaN.", RuntimeWarning, stacklevel=3
        )
        return float("nan")
    return float(np.nanmean(aurocs))


def macro_auroc(labels: npt.ArrayLike, probabilities: npt.ArrayLike) -> float:
    """Unweighted mean of :func:`ovr_auroc` over the classes where it is defined.

    When every class occurs in ``labels`` this equals sklearn's
    ``roc_auc_score(labels, probabilities, multi_class="ovr", average="macro")``.

    Args:
        labels: class index per row.
        probabilities: class probabilities per row, shape ``(N, K)``.

    Returns:
        The macro AUROC, or NaN (with a warning) when no class has a defined AUROC.
    """
    return _nanmean_auroc(ovr_auroc(labels, probabilities))


def confusion(labels: npt.ArrayLike, probabilities: npt.ArrayLike, num_classes: int) -> np.ndarray:
    """Counts of true class (rows) against argmax class (columns), including classes never seen.

    Args:
        labels: class index per row.
        probabilities: class probabilities per row, shape ``(N, num_classes)``.
        num_classes: ``K``; checked against the width of ``probabilities``.

    Returns:
        Int array ``(K, K)``.
    """
    y, p = multiclass_inputs(labels, probabilities, num_classes)
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (y.astype(np.int64), p.argmax(axis=1)), 1)
    return matrix


def _ovr_rates(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class one-vs-rest sensitivity and specificity from a confusion matrix."""
    tp = np.diag(matrix).astype(float)
    fn = matrix.sum(axis=1) - tp
    fp = matrix.sum(axis=0) - tp
    tn = matrix.sum() - tp - fn - fp
    with np.errstate(invalid="ignore", divide="ignore"):
        return tp / (tp + fn), tn / (tn + fp)


def per_class_sensitivity_specificity(
    labels: npt.ArrayLike, probabilities: npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """One-vs-rest sensitivity (TPR) and specificity (TNR) of the argmax prediction for each class.

    Args:
        labels: class index per row.
        probabilities: class probabilities per row, shape ``(N, K)``.

    Returns:
        ``(sensitivity, specificity)`` as float arrays ``(K,)``; a class's sensitivity is NaN when it
        is absent from ``labels``, its specificity NaN when it is the only class in them.
    """
    y, p = multiclass_inputs(labels, probabilities)
    return _ovr_rates(confusion(y, p, p.shape[1]))


def log_loss(labels: npt.ArrayLike, probabilities: npt.ArrayLike, eps: float = 1e-7) -> float:
    """Mean negative log-likelihood of the true class: the validation loss used for early stopping.

    Probabilities are clipped to ``[eps, 1]`` so one confident mistake gives a large but finite loss.
    Rows are not renormalised: pass softmax probabilities, not logits.

    Args:
        labels: class index per row.
        probabilities: class probabilities per row, shape ``(N, K)``.
        eps: lower clip of the true-class probability, in ``(0, 1)``.

    Returns:
        The loss, ``>= 0``.

    Raises:
        ValueError: ``eps`` is not in ``(0, 1)``.
    """
    if not 0.0 < eps < 1.0:
        raise ValueError(f"eps must be in (0, 1), got {eps}; it bounds log(probability) away from -inf.")
    y, p = multiclass_inputs(labels, probabilities)
    true_class = np.clip(p[np.arange(y.size), y], eps, 1.0)
    return float(-np.log(true_class).mean())


def multiclass_summary(
    labels: npt.ArrayLike, probabilities: npt.ArrayLike, class_names: Sequence[str]
) -> dict[str, object]:
    """All validation numbers of a multi-class classifier in one dict, ready for ``json.dumps``.

    Args:
        labels: class index per row.
        probabilities: class probabilities per row, shape ``(N, K)``.
        class_names: one unique name per probability column, in column order.

    Returns:
        Dict with ``n``, ``accuracy``, ``macro_f1``, ``macro_auroc``, ``log_loss``, ``per_class``
        (``{name: {auroc, sensitivity, specificity, f1, support}}``) and ``confusion_matrix`` (nested
        lists, rows truth, columns prediction). Undefined values are NaN (``null`` in ``metrics.json``, see
        :func:`~medbundle.io.strict_json.to_strict_json`); a class's ``f1`` is NaN when it is neither true nor
        predicted anywhere.

    Raises:
        ValueError: ``class_names`` does not hold ``K`` unique names.
    """
    y, p = multiclass_inputs(labels, probabilities)
    names = [str(name) for name in class_names]
    if len(names) != p.shape[1] or len(set(names)) != len(names):
        raise ValueError(
            f"class_names must hold one unique name per probability column ({p.shape[1]}), got {names}; "
            "pass the class names in the order of the model outputs."
        )
    matrix = confusion(y, p, p.shape[1])
    sensitivity, specificity = _ovr_rates(matrix)
    aurocs = ovr_auroc(y, p)
    f1 = f1_score(y, p.argmax(axis=1), labels=range(p.shape[1]), average=None, zero_division=np.nan)
    per_class = {
        name: {
            "auroc": float(aurocs[k]),
            "sensitivity": float(sensitivity[k]),
            "specificity": float(specificity[k]),
            "f1": float(f1[k]),
            "support": int(matrix[k].sum()),
        }
        for k, name in enumerate(names)
    }
    return {
        "n": int(y.size),
        "accuracy": accuracy(y, p),
        "macro_f1": macro_f1(y, p),
        "macro_auroc": _nanmean_auroc(aurocs),
        "log_loss": log_loss(y, p),
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
    }
