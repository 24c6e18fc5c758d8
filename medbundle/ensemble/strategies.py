"""Ways to combine the probabilities of several models into one prediction (pure functions on arrays).

Binary tasks (one probability per item and member):

- ``soft``: the mean probability, binarised at the mean of the members' own thresholds.
- ``hard_weighted``: each member votes 0/1 at its own threshold; the votes are averaged with weights (the
  members' validation AUROCs), giving the weighted fraction of positive votes, a confidence in ``[0, 1]``
  decided at 0.5.

Multi-class tasks (a probability vector per item and member):

- ``mean`` (also ``soft``): the mean probability vector.
- ``weighted_mean``: the mean weighted per member (equal weights when none are given).
- ``max``: the element-wise maximum over members; rows then no longer sum to 1 (fine for the argmax and
  ranking, not a calibrated probability).

Means are MONAI's :class:`~monai.transforms.MeanEnsemble`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import torch
from monai.transforms import MeanEnsemble

__all__ = [
    "BINARY_STRATEGIES",
    "MULTICLASS_STRATEGIES",
    "Combined",
    "combine",
    "hard_weighted_vote",
    "max_probabilities",
    "mean_probabilities",
    "soft_vote",
]

BINARY_STRATEGIES = ("soft", "hard_weighted")
MULTICLASS_STRATEGIES = ("soft", "mean", "weighted_mean", "max")


class Combined(NamedTuple):
    """The ensemble's scores and the threshold that decides them (None for multi-class argmax)."""

    scores: np.ndarray
    threshold: float | None


def _stack(probabilities: npt.ArrayLike) -> np.ndarray:
    stacked = np.asarray(probabilities, dtype=np.float64)
    if stacked.ndim not in (2, 3) or stacked.shape[0] == 0:
        raise ValueError(
            f"probabilities must be (members, items) or (members, items, classes) with at least one member, "
            f"got shape {stacked.shape}."
        )
    return stacked


def _weights(weights: npt.ArrayLike | None, n_members: int) -> np.ndarray | None:
    if weights is None:
        return None
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.size != n_members:
        raise ValueError(f"got {w.size} weights for {n_members} members; give one weight per member, in member order.")
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"weights must be finite, non-negative and not all 0, got {w.tolist()}.")
    return w


def mean_probabilities(probabilities: npt.ArrayLike, weights: npt.ArrayLike | None = None) -> np.ndarray:
    """The (weighted) mean over members: ``sum_m w_m p_m / sum_m w_m``.

    Args:
        probabilities: ``(M, N)`` or ``(M, N, K)``, member first.
        weights: one non-negative weight per member; None for equal weights.
    """
    stacked = _stack(probabilities)
    w = _weights(weights, stacked.shape[0])
    mean = MeanEnsemble(weights=w)(torch.as_tensor(stacked))
    return np.asarray(mean, dtype=np.float64)


def max_probabilities(probabilities: npt.ArrayLike) -> np.ndarray:
    """The element-wise maximum over members of ``(M, N)`` or ``(M, N, K)`` probabilities."""
    return _stack(probabilities).max(axis=0)


def soft_vote(probabilities: npt.ArrayLike, thresholds: Sequence[float]) -> Combined:
    """Mean probability ``(N,)`` of ``(M, N)`` member probabilities, decided at the mean member threshold."""
    stacked = _stack(probabilities)
    if len(thresholds) != stacked.shape[0]:
        raise ValueError(f"got {len(thresholds)} thresholds for {stacked.shape[0]} members; give one per member.")
    return Combined(mean_probabilities(stacked), float(np.mean(thresholds)))


def hard_weighted_vote(
    probabilities: npt.ArrayLike, thresholds: Sequence[float], weights: npt.ArrayLike | None = None
) -> Combined:
    """Weighted fraction ``(N,)`` of members whose probability reaches their own threshold, decided at 0.5.

    Args:
        probabilities: ``(M, N)`` member probabilities.
        thresholds: each member's own decision threshold (positive when ``p >= threshold``).
        weights: one weight per member (the seed: its validation AUROC); None for equal weights.
    """
    stacked = _stack(probabilities)
    if len(thresholds) != stacked.shape[0]:
        raise ValueError(f"got {len(thresholds)} thresholds for {stacked.shape[0]} members; give one per member.")
    votes = (stacked >= np.asarray(thresholds, dtype=np.float64).reshape(-1, *([1] * (stacked.ndim - 1)))).astype(float)
    return Combined(mean_probabilities(votes, weights), 0.5)


def combine(
    strategy: str,
    probabilities: npt.ArrayLike,
    thresholds: Sequence[float] | None = None,
    weights: npt.ArrayLike | None = None,
) -> Combined:
    """Apply the strategy named `strategy` to ``(M, N)`` binary or ``(M, N, K)`` multi-class probabilities.

    Args:
        strategy: one of :data:`BINARY_STRATEGIES` for binary, :data:`MULTICLASS_STRATEGIES` for multi-class.
        probabilities: member-first probabilities.
        thresholds: each member's threshold (binary strategies).
        weights: each member's weight (``hard_weighted``, ``weighted_mean``); None for equal weights.

    Raises:
        ValueError: the strategy does not apply to these probabilities, or an argument is malformed.
    """
    stacked = _stack(probabilities)
    binary = stacked.ndim == 2
    allowed = BINARY_STRATEGIES if binary else MULTICLASS_STRATEGIES
    if strategy not in allowed:
        kind = "binary (one probability per item)" if binary else "multi-class"
        raise ValueError(f"strategy {strategy!r} does not apply to a {kind} task; choose one of {list(allowed)}.")
    if binary:
        if thresholds is None:
            raise ValueError(f"strategy {strategy!r} needs each member's threshold.")
        return soft_vote(stacked, thresholds) if strategy == "soft" else hard_weighted_vote(stacked, thresholds, weights)
    if strategy == "max":
        return Combined(max_probabilities(stacked), None)
    return Combined(mean_probabilities(stacked, weights if strategy == "weighted_mean" else None), None)
