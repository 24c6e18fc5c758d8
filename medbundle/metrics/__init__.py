"""Metrics for binary and multi-class medical image classification: the RSNA pF-beta, the ISIC partial AUC, thresholds,
summaries, bootstrap confidence intervals and calibration."""

from __future__ import annotations

from medbundle.metrics.binary import auroc, binary_summary, sensitivity_specificity
from medbundle.metrics.bootstrap import Interval, bootstrap_interval
from medbundle.metrics.calibration import (
    apply_temperature,
    expected_calibration_error,
    fit_platt,
    fit_temperature,
    logits_from_probabilities,
    reliability_bins,
)
from medbundle.metrics.grouping import aggregate_groups
from medbundle.metrics.multiclass import (
    accuracy,
    confusion,
    log_loss,
    macro_auroc,
    macro_f1,
    multiclass_summary,
    ovr_auroc,
    per_class_sensitivity_specificity,
)
from medbundle.metrics.partial_auc import partial_auc
from medbundle.metrics.pfbeta import aggregate_by_breast, pfbeta
from medbundle.metrics.scores import (
    SCORES,
    Score,
    check_key_metric,
    get_score,
    metric_higher_is_better,
    split_metric_name,
)
from medbundle.metrics.thresholds import pfbeta_threshold, roc_threshold

__all__ = [
    "SCORES",
    "Interval",
    "Score",
    "accuracy",
    "aggregate_by_breast",
    "aggregate_groups",
    "apply_temperature",
    "auroc",
    "binary_summary",
    "bootstrap_interval",
    "check_key_metric",
    "confusion",
    "expected_calibration_error",
    "fit_platt",
    "fit_temperature",
    "get_score",
    "log_loss",
    "logits_from_probabilities",
    "macro_auroc",
    "macro_f1",
    "metric_higher_is_better",
    "multiclass_summary",
    "ovr_auroc",
    "partial_auc",
    "per_class_sensitivity_specificity",
    "pfbeta",
    "pfbeta_threshold",
    "reliability_bins",
    "roc_threshold",
    "sensitivity_specificity",
    "split_metric_name",
]
