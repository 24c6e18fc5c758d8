"""Each task's metrics on a table of predictions, and the decision threshold chosen on out-of-fold predictions.

The tables are the bundles' ``predictions_image.csv`` (or a sweep's ``oof.csv``): ``label`` and ``pred``
(binary) or ``prob_<class>`` columns (multi-class) per image, with the ids the bundle writes. The
threshold is chosen as each task is scored:

- rsna: pF1 per breast (``breast_id`` = patient_laterality) of predictions binarised at the threshold that
  maximises it; the images of a breast are combined by their mean and by their max, and the aggregation
  with the higher pF1 is chosen (mean on a tie);
- isic: the ROC point closest to (FPR 0, TPR 1), reported with the partial AUC above 80 % TPR and AUROC;
- chest_xray: accuracy and macro F1 of the arg-max class; no threshold;
- a task whose class count depends on its data set (classify): :func:`per_image_metrics` and
  :func:`per_image_decision` read the table's kind, binary (``pred``) or multi-class (``prob_<class>``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from medbundle.metrics import (
    accuracy,
    aggregate_groups,
    auroc,
    macro_f1,
    partial_auc,
    pfbeta,
    pfbeta_threshold,
    roc_threshold,
)
from medbundle.tasks import resolve, tasks

__all__ = [
    "AGGREGATIONS",
    "Decision",
    "TaskMetrics",
    "binary_metrics",
    "get_task_metrics",
    "multiclass_metrics",
    "per_image_decision",
    "per_image_metrics",
]

AGGREGATIONS = ("mean", "max")


@dataclass(frozen=True)
class Decision:
    """The threshold chosen on out-of-fold predictions.

    Args:
        threshold: predict positive when the (aggregated) probability is at least this.
        aggregation: how the images of a group combine before thresholding (rsna), else None.
        score: the value of the criterion at the threshold (rsna pF1).
    """

    threshold: float
    aggregation: str | None = None
    score: float = math.nan


def _defined(score: Callable[..., float], *args) -> float:
    """`score(*args)`, or NaN where it is undefined (one class only), as for a fold without positives."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            return float(score(*args))
        except ValueError:
            return math.nan


def _breasts(frame: pd.DataFrame, how: str) -> tuple[np.ndarray, np.ndarray]:
    groups = frame["breast_id"] if "breast_id" in frame else frame["patient_id"].astype(str) + "_" + frame["laterality"]
    _, labels, predictions = aggregate_groups(groups.tolist(), frame["label"].to_numpy(float), frame["pred"].to_numpy(float), how=how)
    return labels, predictions


def rsna_metrics(frame: pd.DataFrame) -> dict[str, float]:
    """Per-breast pF1 at its best threshold, probabilistic pF1 and AUROC, for mean and for max aggregation."""
    metrics: dict[str, float] = {"n": len(frame)}
    for how in AGGREGATIONS:
        labels, predictions = _breasts(frame, how)
        metrics[f"pf1_{how}"] = _defined(lambda y, p: pfbeta_threshold(y, p)[1], labels, predictions)
        metrics[f"pf1_prob_{how}"] = _defined(pfbeta, labels, predictions)
        metrics[f"auroc_{how}"] = _defined(auroc, labels, predictions)
    return metrics


def rsna_decision(frame: pd.DataFrame) -> Decision:
    """The pF1-optimal threshold per breast under the better of mean and max aggregation (mean on a tie)."""
    best: Decision | None = None
    for how in AGGREGATIONS:
        threshold, score = pfbeta_threshold(*_breasts(frame, how))
        if best is None or score > best.score:
            best = Decision(threshold, how, score)
    return best


def isic_metrics(frame: pd.DataFrame) -> dict[str, float]:
    """Partial AUC above 80 % TPR (the ISIC 2024 score) and AUROC per image."""
    labels, scores = frame["label"].to_numpy(float), frame["pred"].to_numpy(float)
    return {"n": len(frame), "pauc": _defined(partial_auc, labels, scores), "auroc": _defined(auroc, labels, scores)}


def isic_decision(frame: pd.DataFrame) -> Decision:
    """The threshold of the ROC point closest to (FPR 0, TPR 1)."""
    return Decision(roc_threshold(frame["label"].to_numpy(float), frame["pred"].to_numpy(float)))


def class_probabilities(frame: pd.DataFrame) -> np.ndarray:
    """The ``prob_<class>`` columns, in their order (the bundle's class order).

    Raises:
        ValueError: the table has no ``prob_`` column.
    """
    columns = [c for c in frame.columns if c.startswith("prob_")]
    if not columns:
        raise ValueError(f"no prob_<class> columns in the predictions (columns {list(frame.columns)}); is this a multi-class bundle?")
    return frame[columns].to_numpy(float)


def multiclass_metrics(frame: pd.DataFrame) -> dict[str, float]:
    """Accuracy and macro F1 of the arg-max class per image."""
    labels, probabilities = frame["label"].to_numpy(int), class_probabilities(frame)
    return {"n": len(frame), "accuracy": accuracy(labels, probabilities), "macro_f1": macro_f1(labels, probabilities)}


def binary_metrics(frame: pd.DataFrame) -> dict[str, float]:
    """AUROC of the ``pred`` probabilities per image."""
    return {"n": len(frame), "auroc": _defined(auroc, frame["label"].to_numpy(float), frame["pred"].to_numpy(float))}


def per_image_metrics(frame: pd.DataFrame) -> dict[str, float]:
    """:func:`binary_metrics` of a binary table (a ``pred`` column), else :func:`multiclass_metrics`."""
    return binary_metrics(frame) if "pred" in frame else multiclass_metrics(frame)


def per_image_decision(frame: pd.DataFrame) -> Decision | None:
    """A binary table's ROC threshold (:func:`isic_decision`); None for a multi-class one, which takes the arg-max."""
    return isic_decision(frame) if "pred" in frame else None


@dataclass(frozen=True)
class TaskMetrics:
    """How a sweep summarises one task.

    Args:
        metrics: the task's metrics of a predictions table, by name (``n``: its rows).
        decide: the OOF threshold of a predictions table, or None for a task without one.
    """

    metrics: Callable[[pd.DataFrame], dict[str, float]]
    decide: Callable[[pd.DataFrame], Decision] | None = None


def get_task_metrics(task: str) -> TaskMetrics:
    """The :class:`TaskMetrics` of `task`, from its spec's ``sweep`` facts (:mod:`medbundle.tasks`).

    Raises:
        ValueError: unknown task; the message lists the known ones.
    """
    known = tasks()
    if task not in known:
        raise ValueError(f"no sweep summary for task {task!r}; known tasks: {sorted(known)}.")
    facts = known[task].sweep
    return TaskMetrics(resolve(facts.metrics), resolve(facts.decide) if facts.decide else None)
