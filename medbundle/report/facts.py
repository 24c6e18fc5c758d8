"""What a task's report measures: its headline metrics, the scoring unit its intervals resample, its subgroups.

The intervals resample the unit the task is scored on, never single images: a breast's views (rsna) or a
patient's lesions (isic) are not independent evidence, and resampling them one by one gives intervals too narrow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from medbundle.metrics import (
    accuracy,
    auroc,
    macro_auroc,
    macro_f1,
    partial_auc,
    pfbeta,
    sensitivity_specificity,
)

__all__ = ["REPORT_FACTS", "ReportFacts", "age_band", "headline_metrics"]

Metric = Callable[[np.ndarray, np.ndarray], float]


def age_band(age: pd.Series) -> pd.Series:
    """Ages as ``<50``, ``50-59``, ``60-69``, ``70+`` (``unknown`` where missing): subgroups large enough to score."""
    bands = pd.cut(pd.to_numeric(age, errors="coerce"), [-np.inf, 50, 60, 70, np.inf], right=False,
                   labels=["<50", "50-59", "60-69", "70+"])  # fmt: skip
    return bands.astype(object).where(bands.notna(), "unknown").map(str)


@dataclass(frozen=True)
class ReportFacts:
    """A task's report.

    Attributes:
        group_key: the id column whose groups the image-level intervals resample (None: images).
        level: the grouped level the task is scored at (rsna ``breast``: ``predictions_breast.csv``), or None.
        level_key: that level's id column.
        attributes: ``{subgroup name: (metadata column, how to bin it)}``, read from `metadata_csv`.
        metadata_csv: the data set's CSV beside the images holding the attributes, joined on `metadata_id`.
        metadata_id: its image id column.
    """

    group_key: str | None = "patient_id"
    level: str | None = None
    level_key: str | None = None
    attributes: Mapping[str, tuple[str, Callable[[pd.Series], pd.Series] | None]] = field(default_factory=dict)
    metadata_csv: str | None = None
    metadata_id: str = "image_id"


REPORT_FACTS: dict[str, ReportFacts] = {
    "rsna": ReportFacts(
        group_key="breast_id", level="breast", level_key="breast_id", metadata_csv="train.csv",
        attributes={"age band": ("age", age_band), "site": ("site_id", None), "machine": ("machine_id", None),
                    "view": ("view", None), "density": ("density", None)},
    ),
    "isic": ReportFacts(
        metadata_csv="train-metadata.csv", metadata_id="isic_id",
        attributes={"sex": ("sex", None), "age band": ("age_approx", age_band),
                    "anatomical site": ("anatom_site_general", None)},
    ),
    "chest_xray": ReportFacts(),
    "classify": ReportFacts(),
}


def headline_metrics(task: str, binary: bool, threshold: float, level: str | None) -> dict[str, Metric]:
    """``{name: metric(labels, scores)}`` of a task's headline table at one level (``image`` or the task's level).

    Binary models: AUROC, the partial AUC above 80 % TPR, sensitivity and specificity at the stored threshold, and
    for rsna the probabilistic F1 and the F1 of the binarised predictions. Multi-class: accuracy, macro F1, macro
    one-vs-rest AUROC.
    """
    if not binary:
        return {"accuracy": accuracy, "macro F1": macro_f1, "macro AUROC": macro_auroc}
    metrics: dict[str, Metric] = {
        "AUROC": auroc,
        "pAUC (TPR ≥ 0.8)": partial_auc,
        "sensitivity": lambda y, s: sensitivity_specificity(y, s, threshold)[0],
        "specificity": lambda y, s: sensitivity_specificity(y, s, threshold)[1],
    }
    if task == "rsna":
        metrics = {"pF1": pfbeta, "pF1 at threshold": lambda y, s: pfbeta(y, (s >= threshold).astype(float)), **metrics}
    return metrics
