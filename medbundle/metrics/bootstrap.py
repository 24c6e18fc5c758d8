"""Percentile-bootstrap confidence intervals for any metric, resampling the task's scoring unit.

A clinician reading "AUROC 0.87" needs to know how far it could move on another sample of patients. Rows of a
prediction table are not independent: rsna scores breasts (several films each), isic and chest_xray have several
images per patient. Resampling rows then treats correlated copies as fresh evidence and gives intervals that are too
narrow, so :func:`bootstrap_interval` resamples whole groups (the cluster bootstrap) and keeps every row of a drawn
group.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Interval", "bootstrap_interval"]

# What a statistic raises when it is undefined on a resample (sklearn's "Only one class present", a division by an
# empty count); anything else is a bug in the statistic and propagates.
_UNDEFINED = (ValueError, ZeroDivisionError, FloatingPointError)


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap confidence interval.

    Attributes:
        estimate: the statistic on the full data (NaN when undefined there).
        low: lower percentile bound (NaN when no resample was defined).
        high: upper percentile bound (NaN when no resample was defined).
        n_resamples: resamples on which the statistic was defined; the bounds rest on these only.
    """

    estimate: float
    low: float
    high: float
    n_resamples: int


def _evaluate(statistic: Callable[[np.ndarray, np.ndarray], float], labels: np.ndarray, scores: np.ndarray) -> float:
    """The statistic as a float, NaN where it raises one of the "undefined here" errors."""
    try:
        return float(statistic(labels, scores))
    except _UNDEFINED:
        return math.nan


def _group_rows(groups: npt.ArrayLike | None, num_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows ordered by group, with each group's start in that order and its size.

    Row ``order[starts[g] + i]`` is the ``i``-th row of group ``g``; without groups every row is its own group.
    """
    if groups is None:
        return np.arange(num_rows), np.arange(num_rows), np.ones(num_rows, dtype=np.int64)
    g = np.asarray(groups)
    if g.ndim != 1 or g.size != num_rows:
        raise ValueError(
            f"groups must hold one id per row ({num_rows} rows), got shape {g.shape}; "
            "pass the scoring unit's id column (breast, patient) of the prediction table."
        )
    _, inverse, sizes = np.unique(g, return_inverse=True, return_counts=True)
    order = np.argsort(inverse, kind="stable")
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    return order, starts, sizes


def bootstrap_interval(
    statistic: Callable[[np.ndarray, np.ndarray], float],
    labels: npt.ArrayLike,
    scores: npt.ArrayLike,
    groups: npt.ArrayLike | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Percentile-bootstrap interval of ``statistic(labels, scores)``, resampling groups with replacement.

    Each resample draws as many groups as there are, with replacement, and keeps all rows of every drawn group
    (a group drawn twice contributes its rows twice). A resample on which the statistic is undefined (it raises
    ``ValueError``, ``ZeroDivisionError`` or ``FloatingPointError``, or returns NaN, as AUROC does on a resample
    with one class) is skipped and not counted; its warnings are silenced. The estimate is the statistic on the
    full data, computed with warnings shown.

    Args:
        statistic: ``fn(labels, scores) -> float``, e.g. :func:`medbundle.metrics.auroc`.
        labels: label per row, shape ``(N,)``.
        scores: score per row ``(N,)`` (binary) or probability vector per row ``(N, K)`` (multi-class).
        groups: id of the row's scoring unit (breast for rsna, patient for isic and chest_xray), shape ``(N,)``;
            None resamples rows, right only when rows are independent.
        n_resamples: resamples to draw.
        confidence: coverage of the interval, in ``(0, 1)``; the bounds are the ``(1 - confidence) / 2`` and
            ``(1 + confidence) / 2`` quantiles of the defined resample statistics.
        seed: seed of the resampling; the same seed gives the same interval.

    Returns:
        The :class:`Interval`; its bounds are NaN when no resample was defined.

    Raises:
        ValueError: ``labels`` and ``scores`` differ in length or are empty, ``groups`` is not one id per row,
            ``n_resamples < 1`` or ``confidence`` is outside ``(0, 1)``.
    """
    y = np.asarray(labels)
    s = np.asarray(scores)
    if y.shape[:1] != s.shape[:1] or y.size == 0:
        raise ValueError(
            f"labels (shape {y.shape}) and scores (shape {s.shape}) must hold the same number of rows, at least one; "
            "pass one score (or probability vector) per label."
        )
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}; 1000 is usual for a 95 % interval.")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}; use e.g. 0.95 for a 95 % interval.")
    order, starts, sizes = _group_rows(groups, len(y))
    num_groups = sizes.size
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, num_groups, size=(n_resamples, num_groups))

    estimate = _evaluate(statistic, y, s)
    values = np.full(n_resamples, math.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the full-data estimate above has shown them once
        for r in range(n_resamples):
            picked_sizes = sizes[drawn[r]]
            # Row positions of the drawn groups in `order`, laid end to end: each group's start, then 0..size-1.
            offsets = np.repeat(starts[drawn[r]] - np.cumsum(picked_sizes) + picked_sizes, picked_sizes)
            rows = order[offsets + np.arange(offsets.size)]
            values[r] = _evaluate(statistic, y[rows], s[rows])
    defined = values[~np.isnan(values)]
    if defined.size == 0:
        return Interval(estimate, math.nan, math.nan, 0)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(defined, [tail, 1.0 - tail])
    return Interval(estimate, float(low), float(high), int(defined.size))
