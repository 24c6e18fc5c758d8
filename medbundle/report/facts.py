"""What a task's report measures: its headline metrics, the scoring unit its intervals resample, its subgroups.

The intervals resample the unit the task is scored on, never single images: a breast's views (rsna) or a
patient's lesions (isic) are not independent evidence, and resampling them one by one gives intervals too narrow.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

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

__all__ = ["REPORT_FACTS", "ReportFacts", "age_band", "file_attributes", "headline_metrics"]

Metric = Callable[[np.ndarray, np.ndarray], float]
logger = logging.getLogger(__name__)
_SIZE_BANDS = (512, 1024, 2048)  # long side in pixels


def age_band(age: pd.Series) -> pd.Series:
    """Ages as ``<50``, ``50-59``, ``60-69``, ``70+`` (``unknown`` where missing): subgroups large enough to score."""
    bands = pd.cut(pd.to_numeric(age, errors="coerce"), [-np.inf, 50, 60, 70, np.inf], right=False,
                   labels=["<50", "50-59", "60-69", "70+"])  # fmt: skip
    return bands.astype(object).where(bands.notna(), "unknown").map(str)


def _size_band(long_side: float) -> str:
    if not np.isfinite(long_side):
        return "unknown"
    low = max((edge for edge in _SIZE_BANDS if edge <= long_side), default=0)
    high = min((edge for edge in _SIZE_BANDS if edge > long_side), default=None)
    return f"{low}+ px" if high is None else f"{low}-{high - 1} px"


def _long_side(path: str | None) -> float:
    """The long side in pixels of an image file from its header (DICOM: Rows / Columns), NaN if unreadable."""
    from PIL import Image

    from medbundle.imaging.decode import DICOM_SUFFIXES

    try:
        if path is not None and Path(path).suffix.lower() in DICOM_SUFFIXES:
            import pydicom

            header = pydicom.dcmread(path, stop_before_pixels=True)
            return float(max(int(header.Rows), int(header.Columns)))
        with Image.open(path) as image:
            return float(max(image.size))
    except (AttributeError, OSError, TypeError, ValueError):
        return float("nan")


def file_attributes(image_ids: pd.Series, images: Mapping[str, str] | None) -> pd.DataFrame:
    """Attributes a class-folder data set carries in its files rather than in a CSV (chest_xray).

    ``source folder``: the folder below the class folder, where images are nested as
    ``<split>/<Class>/<source>/<file>`` (the layout of a data set merged from several collections; ``image_id`` is
    ``<split>/<Class>/<source>/<stem>``). ``native size``: the long side of the file as stored, in bands; merged
    radiograph collections differ by hospital and scanner in exactly this (the seed's data set mixes 512 x 512,
    1790 x 1140 and 2297 x 2032 films), so a model that learned the source shows here. Read from the file header
    (PIL opens lazily; DICOM: Rows and Columns); a file it cannot read is ``unknown``. A column that would hold one value only is left out.
    """
    parts = image_ids.astype(str).str.split("/")
    columns = {"source_folder": parts.map(lambda p: p[2] if len(p) > 3 else None)}
    if images:
        sizes = [_long_side(images.get(image_id)) for image_id in image_ids.astype(str)]
        columns["native_size"] = pd.Series([_size_band(v) for v in sizes], index=image_ids.index)
    frame = pd.DataFrame(columns)
    return frame[[name for name in frame if frame[name].nunique(dropna=True) > 1]]


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
        derived: attributes from the evaluated files themselves, ``derived(image_ids, {image_id: path})`` (columns
            named in `attributes`), joined to the CSV's where both exist.
    """

    group_key: str | None = "patient_id"
    level: str | None = None
    level_key: str | None = None
    attributes: Mapping[str, tuple[str, Callable[[pd.Series], pd.Series] | None]] = field(default_factory=dict)
    metadata_csv: str | None = None
    metadata_id: str = "image_id"
    derived: Callable[[pd.Series, Mapping[str, str] | None], pd.DataFrame] | None = None


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
    "chest_xray": ReportFacts(
        attributes={"source folder": ("source_folder", None), "native size": ("native_size", None)},
        derived=file_attributes,
    ),
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
