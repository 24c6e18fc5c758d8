"""Write evaluation predictions, grouped predictions and their metrics to files."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import ignite.distributed as idist
import pandas as pd
from ignite.engine import Engine, Events

from medbundle.handlers.prediction_collector import PredictionCollector
from medbundle.metrics import aggregate_groups, binary_summary

__all__ = ["PredictionWriter", "SubmissionWriter", "group_predictions"]


def group_predictions(frame: pd.DataFrame, group_key: str, how: str = "mean") -> pd.DataFrame:
    """One row per group: the `how` of its image predictions and the max of its labels (if any)."""
    labels = frame["label"] if "label" in frame else None
    ids, labels, preds = aggregate_groups(frame[group_key].tolist(), labels, frame["pred"], how=how)
    return pd.DataFrame({group_key: ids, "pred": preds} | ({} if labels is None else {"label": labels}))


class _CollectingHandler:
    """Collect predictions over an evaluator run and act on them once it completes (rank 0 writes)."""

    def __init__(self, id_keys: Sequence[str]) -> None:
        self._collector = PredictionCollector(id_keys=id_keys)
        self.logger = logging.getLogger(__name__)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, lambda _: self._collector.reset())
        engine.add_event_handler(
            Events.ITERATION_COMPLETED, lambda e: self._collector.add(e.state.batch, e.state.output)
        )
        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        frame = self._collector.frame()
        if idist.get_rank() == 0:
            self.write(frame)

    def write(self, frame: pd.DataFrame) -> None:
        raise NotImplementedError


class PredictionWriter(_CollectingHandler):
    """Write `predictions_image.csv`, `predictions_<group>.csv` and `metrics.json` after an evaluation.

    Args:
        output_dir: directory for the files (created if needed).
        threshold: decision threshold for the binarised metrics (the one stored with the checkpoint).
        group_key: batch key grouping images (RSNA: "breast_id"); None for image-level output only.
        how: aggregation of image predictions within a group, "mean" or "max".
        id_keys: batch keys written beside each prediction.
    """

    def __init__(
        self,
        output_dir: str | Path,
        threshold: float = 0.5,
        group_key: str | None = "breast_id",
        how: str = "mean",
        id_keys: Sequence[str] = ("image_id", "patient_id", "laterality", "breast_id"),
    ) -> None:
        super().__init__(id_keys)
        self.output_dir = Path(output_dir)
        self.threshold = float(threshold)
        self.group_key = group_key
        self.how = how

    def write(self, frame: pd.DataFrame) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        frame.to_csv(self.output_dir / "predictions_image.csv", index=False)
        levels = {"image": frame}
        if self.group_key is not None:
            grouped = group_predictions(frame, self.group_key, self.how)
            grouped.to_csv(self.output_dir / f"predictions_{self.group_key.removesuffix('_id')}.csv", index=False)
            levels[self.group_key.removesuffix("_id")] = grouped
        if "label" in frame:
            metrics = {"threshold": self.threshold, "aggregation": self.how}
            for level, table in levels.items():
                metrics[level] = binary_summary(table["label"].to_numpy(), table["pred"].to_numpy(), self.threshold)
            path = self.output_dir / "metrics.json"
            path.write_text(json.dumps(metrics, indent=2))
            self.logger.info("evaluation metrics written to %s: %s", path, json.dumps(metrics))


class SubmissionWriter(_CollectingHandler):
    """Write a Kaggle submission: one row per group id, the aggregated prediction binarised at `threshold`.

    Args:
        output_file: path of the CSV to write.
        threshold: decision threshold (the one stored with the checkpoint); None writes probabilities.
        group_key: batch key whose values are the submission ids (RSNA: "breast_id" = prediction_id).
        how: aggregation of image predictions within a group, "mean" or "max".
        id_column: header of the id column.
        target_column: header of the prediction column.
    """

    def __init__(
        self,
        output_file: str | Path,
        threshold: float | None = None,
        group_key: str = "breast_id",
        how: str = "mean",
        id_column: str = "prediction_id",
        target_column: str = "cancer",
    ) -> None:
        super().__init__((group_key,))
        self.output_file = Path(output_file)
        self.threshold = threshold
        self.group_key = group_key
        self.how = how
        self.id_column = id_column
        self.target_column = target_column

    def write(self, frame: pd.DataFrame) -> None:
        grouped = group_predictions(frame, self.group_key, self.how)
        scores = grouped["pred"]
        if self.threshold is not None:
            scores = (scores >= self.threshold).astype(int)
        submission = pd.DataFrame({self.id_column: grouped[self.group_key], self.target_column: scores})
        self.output_file.parent.mkdir(parents=True, exist_ok=True)
        submission.to_csv(self.output_file, index=False)
        self.logger.info(
            "submission with %d rows (%d positive) written to %s",
            len(submission),
            int((submission[self.target_column] > 0).sum()) if self.threshold is not None else -1,
            self.output_file,
        )
