"""What a breast crop did over a set of images: how many it found, which it kept whole and why, which boxes stand out.

:func:`~medbundle.imaging.breast_crop.crop_record` describes one image; :func:`summarize_crops` reads those records
for a run, a preview or a data set check, so the three agree on what counts as a failure and as an outlier, and say
it in the same words. Plain Python and numpy (the deploy runtime shares it).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["CropSummary", "crop_outliers", "summarize_crops"]

#: |robust z| of a box's log area above which it is an outlier (Iglewicz and Hoaglin's 3.5)
OUTLIER_Z = 3.5
#: fewest found boxes to judge outliers by
MIN_FOR_OUTLIERS = 8
# boxes within 15 % of each other in area are alike, however narrow the spread of a set of near-copies
_MIN_SPREAD = 0.15


def crop_outliers(box_areas: Sequence[float]) -> tuple[np.ndarray, float]:
    """Which boxes are far larger or smaller than the others, by a robust z-score of their log area.

    The median absolute deviation is floored at 15 % of the area, so a set of near-identical boxes does not
    make every small difference an outlier.

    Args:
        box_areas: each found box's area as a fraction of its image's.

    Returns:
        ``(outlier flags, median box area)``; no outliers among fewer than :data:`MIN_FOR_OUTLIERS` boxes.
    """
    areas = np.asarray(box_areas, dtype=np.float64)
    if areas.size == 0:
        return np.zeros(0, bool), float("nan")
    median = float(np.median(areas))
    if areas.size < MIN_FOR_OUTLIERS:
        return np.zeros(areas.size, bool), median
    logs = np.log(np.maximum(areas, 1e-6))
    mad = max(float(np.median(np.abs(logs - np.median(logs)))), _MIN_SPREAD)
    return np.abs(0.6745 * (logs - np.median(logs)) / mad) > OUTLIER_Z, median


@dataclass(frozen=True)
class CropSummary:
    """The crop's outcome over a set of images.

    Attributes:
        names: each image's name (path or id), in order.
        records: each image's :func:`~medbundle.imaging.breast_crop.crop_record`.
        outliers: per image, whether its box is an outlier (:func:`crop_outliers`); False for fallbacks.
        notes: per image, why it needs a look: the fallback's reason, or the outlier's box size; "" otherwise.
        median_box_area: median box area of the found boxes, as a fraction of the image.
        reasons: how many images were kept whole for each kind of reason (numbers shown as #).
    """

    names: tuple[str, ...]
    records: tuple[Mapping[str, Any], ...]
    outliers: tuple[bool, ...]
    notes: tuple[str, ...]
    median_box_area: float
    reasons: Counter = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return len(self.records)

    @property
    def found(self) -> int:
        return sum(bool(record["found"]) for record in self.records)

    @property
    def fallbacks(self) -> list[tuple[str, str]]:
        """``(name, reason)`` of every image kept whole."""
        return [(name, record["reason"]) for name, record in zip(self.names, self.records) if not record["found"]]

    @property
    def fallback_share(self) -> float:
        return (self.total - self.found) / self.total if self.total else 0.0

    def box_quantiles(self, key: str = "box_area", q: Sequence[float] = (0.05, 0.25, 0.5, 0.75, 0.95)) -> dict:
        """Quantiles of `key` (``box_area``, ``box_height`` or ``box_width``) over the found boxes."""
        values = [record[key] for record in self.records if record["found"]]
        return {f"p{round(100 * p)}": float(np.quantile(values, p)) for p in q} if values else {}

    def line(self, split: str, where: str | None = None) -> str:
        """One line for a run's log: ``crop (train): breast found in 640 of 644 images; whole image kept for 4 (...)``."""
        kept = self.total - self.found
        text = f"crop ({split}): breast found in {self.found} of {self.total} images; whole image kept for {kept}"
        if sum(self.outliers):
            text += f"; {sum(self.outliers)} boxes of unusual size"
        return text + (f" ({where})" if where else "")

    def warning(self, split: str, threshold: float, where: str | None = None) -> str | None:
        """A loud, multi-line warning when more than `threshold` of the images were kept whole; else None."""
        if self.fallback_share <= threshold:
            return None
        top = "; ".join(f"{count} x {reason}" for reason, count in self.reasons.most_common(3))
        first = ", ".join(name for name, _ in self.fallbacks[:3])
        return "\n".join([
            f"!!! crop ({split}): no breast found in {self.total - self.found} of {self.total} images "
            f"({self.fallback_share:.1%}, above crop_fallback_warn={threshold:.0%}); the whole image is kept for them, "
            "so the network sees mostly background there.",
            f"!!! why: {top}",
            f"!!! first: {first}" + (f" (every one listed in {where})" if where else ""),
            "!!! check: that these are mammograms with dense tissue bright (the reader inverts MONOCHROME1); "
            "`medbundle preview` frames each image kept whole in red with its reason; on unusual images lower "
            "BreastCropd's min_threshold or min_breast_area; to change when this warns, --crop_fallback_warn.",
        ])  # fmt: skip


def summarize_crops(records: Sequence[Mapping[str, Any]], names: Sequence[str]) -> CropSummary:
    """Summarise :func:`~medbundle.imaging.breast_crop.crop_record` s of a set of images.

    Args:
        records: one record per image.
        names: each image's name for the report (its path or id).

    Raises:
        ValueError: `records` and `names` differ in length.
    """
    if len(records) != len(names):
        raise ValueError(f"{len(records)} crop records for {len(names)} images.")
    found = [i for i, record in enumerate(records) if record["found"]]
    flags, median = crop_outliers([records[i]["box_area"] for i in found])
    outliers = [False] * len(records)
    notes = [str(record["reason"]) for record in records]
    for i, flag in zip(found, flags):
        if flag:
            outliers[i] = True
            notes[i] = (
                f"unusual box: {records[i]['box_area']:.0%} of the image, median {median:.0%} (part of the breast, "
                "or more than it?)"
            )
    return CropSummary(
        names=tuple(str(name) for name in names),
        records=tuple(records),
        outliers=tuple(outliers),
        notes=tuple(notes),
        median_box_area=median,
        reasons=Counter(re.sub(r"\d+(?:\.\d+)?", "#", str(record["reason"])) for record in records if not record["found"]),
    )
