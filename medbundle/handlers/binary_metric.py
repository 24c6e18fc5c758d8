"""Ignite metric for binary scores computed on grouped predictions (e.g. per breast)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
from ignite.engine import Engine
from ignite.metrics import Metric

from medbundle.handlers.prediction_collector import PredictionCollector
from medbundle.metrics import aggregate_groups, auroc, pfbeta, pfbeta_threshold

__all__ = ["BinaryMetric", "SCORES"]


def _best_pfbeta(labels: np.ndarray, scores: np.ndarray, beta: float = 1.0) -> float:
    return pfbeta_threshold(labels, scores, beta=beta)[1]


#: Score functions by name: ``f(labels, scores) -> float``; ``beta`` is bound for the pF-beta ones.
SCORES: dict[str, Callable[..., float]] = {
    "auroc": auroc,
    "pfbeta": pfbeta,
    "pfbeta_best": _best_pfbeta,
}


class BinaryMetric(Metric):
    """A binary score over one evaluation epoch, optionally on predictions aggregated per group.

    The RSNA competition scores one prediction per breast (`patient_id`_`laterality`), so image
    predictions are first aggregated (mean or max) per `group_key`, then scored. Being an Ignite
    `Metric`, it can be the evaluator's key metric that drives CheckpointSaver and EarlyStopHandler.

    Args:
        score: one of ``SCORES``: "auroc", "pfbeta" (probabilistic F-beta of the probabilities) or
            "pfbeta_best" (F-beta of predictions binarised at the best threshold on this split).
        group_key: batch key whose value groups images (e.g. "breast_id"); None scores each image.
        how: aggregation within a group, "mean" or "max".
        beta: beta of the F-beta scores.
        id_keys: batch keys to collect; must include `group_key`.
    """

    def __init__(
        self,
        score: str = "auroc",
        group_key: str | None = "breast_id",
        how: str = "mean",
        beta: float = 1.0,
        id_keys: Sequence[str] = ("breast_id",),
    ) -> None:
        if score not in SCORES:
            raise ValueError(f"unknown score {score!r}; choose one of {sorted(SCORES)}")
        fn = SCORES[score]
        self._score_fn = partial(fn, beta=beta) if score.startswith("pfbeta") else fn
        self.group_key = group_key
        self.how = how
        self._collector = PredictionCollector(id_keys=id_keys)
        super().__init__()

    def reset(self) -> None:
        self._collector.reset()

    def update(self, output: tuple[Any, Any]) -> None:
        """Add one iteration given as ``(engine.state.batch, engine.state.output)``."""
        self._collector.add(*output)

    def iteration_completed(self, engine: Engine) -> None:
        # the ids live in the batch, not in the output that Ignite passes to metrics by default
        self.update((engine.state.batch, engine.state.output))

    def compute(self) -> float:
        frame = self._collector.frame()
        if frame.empty:
            raise RuntimeError("BinaryMetric has no predictions: was the evaluator run on an empty split?")
        labels, scores = frame["label"].to_numpy(), frame["pred"].to_numpy()
        if self.group_key is not None:
            _, labels, scores = aggregate_groups(frame[self.group_key], labels, scores, how=self.how)
        return float(self._score_fn(labels, scores))
