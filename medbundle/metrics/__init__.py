"""Metrics for binary medical image classification: the RSNA pF-beta, thresholds and summaries."""

from __future__ import annotations

from medbundle.metrics.binary import auroc, binary_summary, sensitivity_specificity
from medbundle.metrics.grouping import aggregate_groups
from medbundle.metrics.pfbeta import aggregate_by_breast, pfbeta
from medbundle.metrics.thresholds import pfbeta_threshold, roc_threshold

__all__ = [
    "aggregate_by_breast",
    "aggregate_groups",
    "auroc",
    "binary_summary",
    "pfbeta",
    "pfbeta_threshold",
    "roc_threshold",
    "sensitivity_specificity",
]
