"""Write evaluation predictions, grouped predictions and their metrics to files."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import ignite.distributed as idist
import numpy as np
import pandas as pd
from ignite.engine import Engine, Events

from medbundle.handlers.prediction_collector import CollectingHandler, prediction_arrays
from medbundle.io.strict_json import to_strict_json
from medbundle.metrics import (
    aggregate_groups,
    binary_summary,
    confusion,
    multiclass_summary,
)
from medbundle.visualize import (
    confusion_matrix_image,
    roc_curve_image,
    roc_curves_image,
)

__all__ = ["PredictionWriter", "SubmissionWriter", "group_predictions"]

_ID_KEYS = ("image_id", "patient_id")  # the shared item schema; tasks pass their extras


def group_predictions(frame: pd.DataFrame, group_key: str, how: str = "mean") -> pd.DataFrame:
    """One row per group: the `how` of its image predictions and the max of its labels (if any)."""
    labels = frame["label"] if "label" in frame else None
    ids, labels, preds = aggregate_groups(frame[group_key].tolist(), labels, frame["pred"], how=how)
    return pd.DataFrame({group_key: ids, "pred": preds} | ({} if labels is None else {"label": labels}))


class _RankZeroWriter(CollectingHandler):
    """Collect predictions over an evaluator run and write files from rank 0 once it completes."""

    completion_event = Events.COMPLETED  # after the run's timers are set, so throughput is known

    def __init__(self, id_keys: Sequence[str]) -> None:
        super().__init__(id_keys)
        self.logger = logging.getLogger(__name__)

    def epoch_completed(self, engine: Engine, frame: pd.DataFrame) -> None:
        if idist.get_rank() == 0:
            self.write(frame, engine)

    def write(self, frame: pd.DataFrame, engine: Engine) -> None:
        raise NotImplementedError


def _model_facts(engine: Engine, n_images: int) -> dict[str, Any]:
    """Parameter count and evaluation throughput (decoding excluded when the dataset is cached)."""
    facts: dict[str, Any] = {}
    network = getattr(engine, "network", None)
    if network is not None:
        facts["params"] = int(sum(p.numel() for p in network.parameters()))
    seconds = engine.state.times.get("EPOCH_COMPLETED") or engine.state.times.get("COMPLETED")
    if seconds:
        facts["images_per_second"] = n_images / seconds
    return facts


class PredictionWriter(_RankZeroWriter):
    """Write per-image (and per-group) predictions and, when labels are known, their metrics.

    Files in `output_dir`:

    - ``predictions_image.csv``: one row per image with its ids; a binary model's probability in ``pred``
      (with two `class_names`, also the class name at `threshold` in ``pred_class`` and the true one in
      ``label_class``), a multi-class model's ``prob_<class>`` per class and the predicted class name in
      ``pred_class`` (and the true one in ``label_class``).
    - ``predictions_<group>.csv`` with a `group_key` (RSNA: ``predictions_breast.csv``).
    - ``metrics.json``: for binary models :func:`~medbundle.metrics.binary_summary` at `threshold` per level;
      for multi-class :func:`~medbundle.metrics.multiclass_summary`; plus parameter count and images/s. Strict
      JSON: an undefined metric (NaN) is ``null``.
    - ``confusion_matrix.csv`` and ``confusion_matrix.png`` for multi-class models with labels (rows truth,
      columns prediction, class names on both).
    - ``roc_curve.png`` (binary, the stored threshold marked) or ``roc_curves.png`` (one-vs-rest per class) with
      labels, per level (``roc_curve_breast.png``): what a tracked run shows beside its numbers.

    Without labels (inference on new images) only the prediction files are written.

    Args:
        output_dir: directory for the files (created if needed).
        threshold: decision threshold of the binarised binary metrics (the one stored with the checkpoint).
        group_key: batch key grouping images (RSNA: "breast_id"); None for image-level output only.
        how: aggregation of image predictions within a group, "mean" or "max".
        id_keys: batch keys written beside each prediction (absent ones are skipped).
        class_names: names of a multi-class model's outputs, in logit order; required for multi-class. For a binary
            model, optionally its two classes (negative, positive) to name each image's class.
        settings: how the evaluation was run, written into ``metrics.json`` so the file says what its numbers
            are, e.g. ``{"tta": True}``.
    """

    def __init__(
        self,
        output_dir: str | Path,
        threshold: float = 0.5,
        group_key: str | None = None,
        how: str = "mean",
        id_keys: Sequence[str] = _ID_KEYS,
        class_names: Sequence[str] | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(tuple(dict.fromkeys([*id_keys, *([group_key] if group_key else [])])))
        self.output_dir = Path(output_dir)
        self.threshold = float(threshold)
        self.group_key = group_key
        self.how = how
        self.class_names = None if class_names is None else [str(name) for name in class_names]
        self.settings = dict(settings or {})

    def write(self, frame: pd.DataFrame, engine: Engine) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        labels, predictions = prediction_arrays(frame)
        ids = frame[[k for k in self._collector.id_keys if k in frame]]
        levels = {"image": (ids, labels, predictions)}
        if self.group_key is not None:
            groups, group_labels, group_predictions_ = aggregate_groups(
                frame[self.group_key].tolist(), labels, predictions, how=self.how
            )
            levels[self.group_key.removesuffix("_id")] = (pd.DataFrame({self.group_key: groups}), group_labels, group_predictions_)
        metrics: dict[str, Any] = dict(self.settings)
        for level, (level_ids, level_labels, level_predictions) in levels.items():
            table = self._table(level_ids, level_labels, level_predictions)
            table.to_csv(self.output_dir / f"predictions_{level}.csv", index=False)
            if level_labels is not None:
                metrics[level] = self._metrics(level, level_labels, level_predictions)
        if labels is not None:
            if predictions.ndim == 1:
                metrics |= {"threshold": self.threshold, "aggregation": self.how}
            metrics["model"] = _model_facts(engine, len(frame))
            path = self.output_dir / "metrics.json"
            path.write_text(to_strict_json(metrics, indent=2))
            self.logger.info("evaluation metrics written to %s: %s", path, to_strict_json(metrics))

    def _names(self, predictions: np.ndarray) -> list[str]:
        if self.class_names is None or len(self.class_names) != predictions.shape[1]:
            raise ValueError(
                f"PredictionWriter got {predictions.shape[1]} class probabilities per image but class_names="
                f"{self.class_names}; pass one name per class (the bundle's class_names)."
            )
        return self.class_names

    def _table(self, ids: pd.DataFrame, labels: np.ndarray | None, predictions: np.ndarray) -> pd.DataFrame:
        table = ids.reset_index(drop=True).copy()
        if predictions.ndim == 1:
            table["pred"] = predictions
            if labels is not None:
                table["label"] = labels
            if self.class_names is not None and len(self.class_names) == 2:
                if labels is not None:
                    table["label_class"] = [self.class_names[int(label)] for label in labels]
                table["pred_class"] = [self.class_names[int(p >= self.threshold)] for p in predictions]
            return table
        names = self._names(predictions)
        if labels is not None:
            table["label"] = labels
            table["label_class"] = [names[i] for i in labels]
        table["pred_class"] = [names[i] for i in predictions.argmax(1)]
        for i, name in enumerate(names):
            table[f"prob_{name}"] = predictions[:, i]
        return table

    def _metrics(self, level: str, labels: np.ndarray, predictions: np.ndarray) -> dict[str, Any]:
        suffix = "" if level == "image" else f"_{level}"
        if predictions.ndim == 1:
            summary = binary_summary(labels, predictions, self.threshold)
            if np.unique(labels).size == 2:
                title = f"{level}s: AUROC {summary['auroc']:.3f}, threshold {self.threshold:.3g}"
                self._write_image(f"roc_curve{suffix}.png", roc_curve_image(labels, predictions, title, self.threshold))
            return summary
        names = self._names(predictions)
        curves = {name: (labels == k, predictions[:, k]) for k, name in enumerate(names)}
        self._write_image(f"roc_curves{suffix}.png", roc_curves_image(curves, f"{level}s: one-vs-rest ROC"))
        matrix = confusion(labels, predictions, len(names))
        pd.DataFrame(matrix, index=pd.Index(names, name="truth"), columns=names).to_csv(
            self.output_dir / f"confusion_matrix{suffix}.csv"
        )
        image = confusion_matrix_image(matrix, names, f"{level}s: rows truth, columns prediction")
        self._write_image(f"confusion_matrix{suffix}.png", image)
        return multiclass_summary(labels, predictions, names)

    def _write_image(self, name: str, image: np.ndarray) -> None:
        """Write a (3, H, W) RGB plot of :mod:`medbundle.visualize` as a PNG beside metrics.json."""
        cv2.imwrite(str(self.output_dir / name), image.transpose(1, 2, 0)[..., ::-1])


class SubmissionWriter(_RankZeroWriter):
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

    def write(self, frame: pd.DataFrame, engine: Engine) -> None:
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
