"""Per-class validation scores, ROC curves and the confusion matrix of a multi-class model, every epoch."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from ignite.engine import Engine

from medbundle.handlers.prediction_collector import CollectingHandler, prediction_arrays
from medbundle.metrics import (
    aggregate_groups,
    confusion,
    ovr_auroc,
    per_class_sensitivity_specificity,
)
from medbundle.visualize import confusion_matrix_image, roc_curves_image

__all__ = ["MulticlassReportHandler", "metric_slug"]


def metric_slug(name: str) -> str:
    """A class name as a metric-name suffix: ``"Corona Virus Disease"`` → ``"corona_virus_disease"``."""
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")


class MulticlassReportHandler(CollectingHandler):
    """Add one-vs-rest AUROC, sensitivity and specificity per class to the evaluator's metrics each epoch.

    The macro scores that pick a checkpoint hide which class fails (e.g. viral vs. bacterial pneumonia);
    this handler puts ``<prefix>auroc_<class>``, ``<prefix>sensitivity_<class>`` and
    ``<prefix>specificity_<class>`` into `engine.state.metrics`, so StatsHandler and TensorBoardStatsHandler
    log them, logs a per-class table, and with a `summary_writer` adds the ROC curves (one per class) and the
    confusion matrix with class names as TensorBoard images. Attach it before the stats handlers.

    It is the multi-class counterpart of :class:`~medbundle.handlers.ROCThresholdHandler`, which is binary-only.

    Args:
        class_names: the model's classes, in logit order.
        summary_writer: optional TensorBoard ``SummaryWriter`` for the images.
        prefix: prefix of the names written to `engine.state.metrics`.
        split: the evaluated split as the log names it ("per-class validation scores").
        group_key: batch key grouping images (e.g. "patient_id") before scoring; None per image.
        how: aggregation of the class probabilities within a group, "mean" or "max".
    """

    def __init__(
        self,
        class_names: Sequence[str],
        summary_writer: Any = None,
        prefix: str = "val_",
        split: str = "validation",
        group_key: str | None = None,
        how: str = "mean",
    ) -> None:
        super().__init__(id_keys=(group_key,) if group_key else ())
        self.class_names = [str(name) for name in class_names]
        self.summary_writer = summary_writer
        self.prefix = prefix
        self.split = split
        self.group_key = group_key
        self.how = how
        self.logger = logging.getLogger(__name__)

    def epoch_completed(self, engine: Engine, frame: pd.DataFrame) -> None:
        labels, probabilities = prediction_arrays(frame)
        if probabilities.ndim == 1:
            raise ValueError(
                "MulticlassReportHandler needs class probability vectors, but the model outputs one probability "
                "per image; use medbundle.handlers.ROCThresholdHandler for a binary model."
            )
        if probabilities.shape[1] != len(self.class_names):
            raise ValueError(
                f"the model outputs {probabilities.shape[1]} classes but class_names has {len(self.class_names)}: "
                f"{self.class_names}; set class_names (and num_classes) to match."
            )
        if labels is None:
            raise ValueError("MulticlassReportHandler needs labels, but the evaluated items have no 'label'.")
        if self.group_key is not None:
            _, labels, probabilities = aggregate_groups(frame[self.group_key].tolist(), labels, probabilities, self.how)
        aurocs = ovr_auroc(labels, probabilities)
        sensitivity, specificity = per_class_sensitivity_specificity(labels, probabilities)
        support = np.bincount(labels.astype(int), minlength=len(self.class_names))
        for i, name in enumerate(self.class_names):
            slug = metric_slug(name)
            engine.state.metrics[f"{self.prefix}auroc_{slug}"] = float(aurocs[i])
            engine.state.metrics[f"{self.prefix}sensitivity_{slug}"] = float(sensitivity[i])
            engine.state.metrics[f"{self.prefix}specificity_{slug}"] = float(specificity[i])
        table = pd.DataFrame(
            {"auroc": aurocs, "sensitivity": sensitivity, "specificity": specificity, "support": support},
            index=pd.Index(self.class_names, name="class"),
        )
        self.logger.info("epoch %d per-class %s scores:\n%s", engine.state.epoch, self.split, table.round(3).to_string())
        if self.summary_writer is not None:
            self._write_images(engine.state.epoch, labels, probabilities, aurocs)

    def _write_images(self, epoch: int, labels: np.ndarray, probabilities: np.ndarray, aurocs: np.ndarray) -> None:
        curves = {name: (labels == i, probabilities[:, i]) for i, name in enumerate(self.class_names)}
        title = f"epoch {epoch}  macro AUROC {np.nanmean(aurocs) if np.isfinite(aurocs).any() else float('nan'):.3f}"
        self.summary_writer.add_image(f"{self.prefix}roc_curves", roc_curves_image(curves, title), epoch)
        matrix = confusion(labels, probabilities, len(self.class_names))
        image = confusion_matrix_image(matrix, self.class_names, f"epoch {epoch}  rows truth, columns prediction")
        self.summary_writer.add_image(f"{self.prefix}confusion_matrix", image, epoch)
        self.summary_writer.flush()
