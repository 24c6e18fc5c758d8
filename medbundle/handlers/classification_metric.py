"""Ignite metric for binary and multi-class scores, optionally on predictions grouped per breast, patient or lesion."""

from __future__ import annotations

from typing import Any

from ignite.engine import Engine
from ignite.metrics import Metric

from medbundle.handlers.prediction_collector import (
    PredictionCollector,
    prediction_arrays,
)
from medbundle.metrics import aggregate_groups
from medbundle.metrics.scores import get_score

__all__ = ["ClassificationMetric"]


class ClassificationMetric(Metric):
    """A named score over one evaluation epoch, on per-image or per-group predictions.

    One class serves every bundle: the score name (see :data:`medbundle.metrics.scores.SCORES`) says what
    is computed, and the collected predictions say whether the model is binary (one probability per image)
    or multi-class (a probability vector). With a `group_key`, image predictions are first aggregated per
    group: the RSNA competition scores one prediction per breast (`breast_id`), so its pF1 and AUROC must be
    computed on breast means, not images. Being an Ignite `Metric`, it can be the evaluator's key metric that
    drives CheckpointSaver and EarlyStopHandler.

    Args:
        score: registered score name, e.g. "auroc", "pfbeta", "pfbeta_best" (F-beta at the best threshold
            on this split), "sensitivity", "specificity" (binary), "accuracy", "macro_f1", "macro_auroc"
            (multi-class) or "log_loss" (either).
        group_key: batch key whose value groups images (e.g. "breast_id"); None scores each image.
        how: aggregation of the predictions within a group, "mean" or "max".
        score_options: keyword options of the score function, e.g. ``{"beta": 2.0}`` or ``{"threshold": 0.3}``.

    Raises:
        ValueError: unknown score name; at compute time, a binary score on multi-class predictions or the reverse.
    """

    def __init__(
        self,
        score: str = "auroc",
        group_key: str | None = None,
        how: str = "mean",
        score_options: dict[str, Any] | None = None,
    ) -> None:
        self.score_name = score
        self.score = get_score(score)
        self.group_key = group_key
        self.how = how
        self.score_options = dict(score_options or {})
        self._collector = PredictionCollector(id_keys=(group_key,) if group_key else ())
        super().__init__()

    def reset(self) -> None:
        self._collector.reset()

    def update(self, output: tuple[Any, Any]) -> None:
        """Add one iteration given as ``(engine.state.batch, engine.state.output)``."""
        self._collector.add(*output)

    def iteration_completed(self, engine: Engine) -> None:
        # group ids live in the batch, not in the output that Ignite passes to metrics by default
        self.update((engine.state.batch, engine.state.output))

    def compute(self) -> float:
        frame = self._collector.frame()
        if frame.empty:
            raise RuntimeError(f"metric {self.score_name!r} has no predictions: was the evaluator run on an empty split?")
        labels, predictions = prediction_arrays(frame)
        if labels is None:
            raise RuntimeError(f"metric {self.score_name!r} needs labels, but the evaluated items have no 'label'.")
        kind = "multiclass" if predictions.ndim == 2 else "binary"
        if kind not in self.score.kinds:
            raise ValueError(
                f"score {self.score_name!r} is for {'/'.join(self.score.kinds)} predictions but the model outputs "
                f"{'class probability vectors' if kind == 'multiclass' else 'one probability per image'}; "
                "choose a score of that kind in the bundle's metrics (see medbundle.metrics.scores.SCORES)."
            )
        if self.group_key is not None:
            _, labels, predictions = aggregate_groups(frame[self.group_key].tolist(), labels, predictions, how=self.how)
        return float(self.score.fn(labels, predictions, **self.score_options))
