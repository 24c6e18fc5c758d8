"""Choose decision thresholds on the validation ROC each epoch and keep them with the checkpoint (binary tasks)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from ignite.engine import Engine
from sklearn.metrics import confusion_matrix

from medbundle.handlers.prediction_collector import CollectingHandler, prediction_arrays
from medbundle.metrics import (
    aggregate_groups,
    auroc,
    pfbeta_threshold,
    roc_threshold,
    sensitivity_specificity,
)
from medbundle.visualize import confusion_matrix_image, roc_curve_image

__all__ = ["ROCThresholdHandler"]


class ROCThresholdHandler(CollectingHandler):
    """Find the ROC threshold closest to (FPR 0, TPR 1) and the pF-beta-optimal threshold per epoch.

    A model trained with a positive weight or balanced sampling is not calibrated, so 0.5 is a poor
    cut-off; the thresholds found on validation are what inference should use. They are written to
    `engine.state.metrics` (so StatsHandler / TensorBoardStatsHandler log them and they are in the
    epoch's summary) and kept in this handler's `state_dict`, so putting the handler in a
    CheckpointSaver's `save_dict` stores the thresholds of that checkpoint's epoch beside the weights,
    with that epoch's AUROC (``auroc``) and the best AUROC of the run so far (``best_auroc``), the
    weight an ensemble can give the checkpoint. With a `summary_writer`, the ROC curve and the confusion
    matrix at the `decision` threshold are added as TensorBoard images.

    Attach it to the evaluator before the CheckpointSaver and the stats handlers, so they see this
    epoch's thresholds. It is binary-only: a decision threshold on one probability has no meaning for a
    softmax over several classes, so a multi-class run raises an error that names the handler to use instead
    (:class:`~medbundle.handlers.MulticlassReportHandler`).

    Args:
        group_key: batch key grouping images before scoring (RSNA: "breast_id"); None for per image.
        how: aggregation of image predictions within a group, "mean" or "max".
        beta: beta of the F-beta score to maximise.
        prefix: prefix of the names written to `engine.state.metrics`.
        summary_writer: optional TensorBoard ``SummaryWriter`` for the ROC / confusion-matrix images.
        decision: the threshold that sensitivity, specificity and the confusion matrix are reported at:
            ``"pf1"`` (the pF-beta-optimal one, RSNA's submission) or ``"roc"`` (closest to (0, 1), the
            skin-lesion seed's ``best_threshold``).
    """

    def __init__(
        self,
        group_key: str | None = "breast_id",
        how: str = "mean",
        beta: float = 1.0,
        prefix: str = "val_",
        summary_writer: Any = None,
        decision: str = "pf1",
    ) -> None:
        if decision not in ("pf1", "roc"):
            raise ValueError(f"decision must be 'pf1' or 'roc', got {decision!r}.")
        super().__init__(id_keys=(group_key,) if group_key else ())
        self.group_key = group_key
        self.how = how
        self.beta = beta
        self.prefix = prefix
        self.summary_writer = summary_writer
        self.decision = decision
        self.thresholds: dict[str, float] = {"roc_threshold": 0.5, "pf1_threshold": 0.5}
        self.logger = logging.getLogger(__name__)

    def epoch_completed(self, engine: Engine, frame: pd.DataFrame) -> None:
        labels, scores = prediction_arrays(frame)
        if scores.ndim == 2:
            raise ValueError(
                f"ROCThresholdHandler is binary-only, but the model outputs {scores.shape[1]} class probabilities; "
                "remove it from validate#handlers (and the checkpoint's save_dict) and use "
                "medbundle.handlers.MulticlassReportHandler for per-class ROC curves and the confusion matrix."
            )
        if labels is None:
            raise ValueError("ROCThresholdHandler needs labels, but the evaluated items have no 'label'.")
        if self.group_key is not None:
            _, labels, scores = aggregate_groups(frame[self.group_key], labels, scores, how=self.how)
        if len(np.unique(labels)) < 2:
            self.logger.warning("ROCThresholdHandler: validation holds one class only; thresholds kept as they were")
            return
        roc_t = roc_threshold(labels, scores)
        pf1_t, pf1_at_t = pfbeta_threshold(labels, scores, beta=self.beta)
        self._warn_if_degenerate(engine.state.epoch, scores, pf1_t, pf1_at_t)
        decision_t = pf1_t if self.decision == "pf1" else roc_t
        sens, spec = sensitivity_specificity(labels, scores, decision_t)
        epoch_auroc = auroc(labels, scores)
        self.thresholds = {
            "roc_threshold": float(roc_t),
            "pf1_threshold": float(pf1_t),
            "auroc": float(epoch_auroc),
            "best_auroc": float(max(epoch_auroc, self.thresholds.get("best_auroc", -np.inf))),
        }
        engine.state.metrics.update(
            {
                f"{self.prefix}roc_threshold": float(roc_t),
                f"{self.prefix}pf1_threshold": float(pf1_t),
                f"{self.prefix}sensitivity": float(sens),
                f"{self.prefix}specificity": float(spec),
            }
        )
        if self.summary_writer is not None:
            self._write_images(engine.state.epoch, labels, scores, decision_t, epoch_auroc)

    def _warn_if_degenerate(self, epoch: int, scores: np.ndarray, threshold: float, best: float) -> None:
        """Say when this epoch's best-threshold pF1 is the value of a trivial rule, not of a ranking."""
        unit = "breasts" if self.group_key == "breast_id" else "items"
        if np.ptp(scores) < 1e-6:
            self.logger.warning(
                "epoch %d: the model gives one constant output (%.4g) for all %d validation %s; pF1 and AUROC "
                "of this epoch say nothing about it (training has not started to separate the classes)",
                epoch, float(scores[0]), scores.size, unit,
            )
            return
        predicted = int((scores >= threshold).sum())
        if self.decision == "pf1" and predicted in (0, scores.size):
            which = "positive" if predicted else "negative"
            self.logger.warning(
                "epoch %d: the best pF1 threshold (%.4g) labels every validation %s %s, so pF1 %.4f is the value "
                "of that trivial rule: the ranking is still poor; read val_auroc rather than pF1 for this epoch",
                epoch, threshold, unit[:-1], which, best,
            )

    def _write_images(self, epoch: int, labels: np.ndarray, scores: np.ndarray, threshold: float, area: float) -> None:
        title = f"epoch {epoch}  AUROC {area:.3f}"
        self.summary_writer.add_image(f"{self.prefix}roc_curve", roc_curve_image(labels, scores, title, threshold), epoch)
        matrix = confusion_matrix(labels.astype(int), (scores >= threshold).astype(int), labels=[0, 1])
        image = confusion_matrix_image(matrix, ["negative", "positive"], f"epoch {epoch}  threshold {threshold:.3f}")
        self.summary_writer.add_image(f"{self.prefix}confusion_matrix", image, epoch)
        self.summary_writer.flush()

    def state_dict(self) -> dict[str, float]:
        """``roc_threshold``, ``pf1_threshold`` and, after a validation, ``auroc`` and ``best_auroc``."""
        return dict(self.thresholds)

    def load_state_dict(self, state_dict: dict[str, float]) -> None:
        self.thresholds = {k: float(v) for k, v in state_dict.items()}
