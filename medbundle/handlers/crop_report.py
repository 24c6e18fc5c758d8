"""Say, for every run, what the breast crop did: one log line, a CSV of every image, a loud warning when it failed often.

A crop that finds no breast keeps the whole image; a box around a film label instead of the breast trains the
network on the label. Both used to pass with one warning per process. Here each run counts them: training and
evaluation from the records their disk cache's warm-up collected (before the first epoch), inference from the
batches it predicts.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ignite.distributed as idist
from ignite.engine import Engine, Events
from monai.data import MetaTensor, decollate_batch

from medbundle.imaging.crop_summary import CropSummary, summarize_crops
from medbundle.io.split_csv import replace_split_rows

__all__ = ["CROP_REPORT", "CROP_REPORT_COLUMNS", "CropReportHandler"]

logger = logging.getLogger(__name__)

#: the crop report's file name in a run's output folder
CROP_REPORT = "crop_report.csv"
#: its columns: the box as ``y0, y1, x0, x1`` in pixels of the decoded image, its size as fractions of the image's
CROP_REPORT_COLUMNS = (
    "split", "image", "image_id", "found", "outlier", "note", "chest_wall", "y0", "y1", "x0", "x1", "height",
    "width", "box_height", "box_width", "box_area",
)  # fmt: skip


class CropReportHandler:
    """Report the breast crop of one split: a log line, ``crop_report.csv``, and a loud warning above a share.

    The log line reads ``crop (train): breast found in 640 of 644 images; whole image kept for 4
    (outputs/fold0/crop_report.csv)``. The CSV lists every image: whether the breast was found, why not, whether its
    box is an outlier (:func:`~medbundle.imaging.crop_summary.crop_outliers`), the box and its size relative to the
    image. When more than `warn_above` of the split was kept whole, the run warns loudly with the commonest reasons,
    the first images and what to check.

    Two ways in: :meth:`report` for a dataset whose warm-up collected the records
    (:func:`medbundle.data.cached_dataset` with ``record_key``), before training or evaluation starts; or
    :meth:`attach` to an evaluator, which collects them from its batches and reports when the run completes
    (inference). Only rank 0 writes and logs.

    Args:
        output_dir: folder of ``crop_report.csv``; the rows of `split` are replaced, other splits' rows kept.
        split: the split's name in the log and the CSV ("train", "validation", "test").
        warn_above: share of images kept whole above which the run warns loudly (the bundles' ``crop_fallback_warn``).
        record_key: the item key ``BreastCropd`` writes its record under.
    """

    def __init__(
        self, output_dir: str | os.PathLike, split: str, warn_above: float = 0.05, record_key: str = "crop"
    ) -> None:
        if not 0.0 <= warn_above <= 1.0:
            raise ValueError(f"crop_fallback_warn must be a share in [0, 1], got {warn_above}.")
        self.path = Path(output_dir) / CROP_REPORT
        self.split = split
        self.warn_above = warn_above
        self.record_key = record_key
        self._records: list[Mapping[str, Any]] = []
        self._items: list[dict] = []

    def report(self, dataset: Any) -> CropSummary | None:
        """Report on a dataset's ``records`` (one per item of its ``data``); None when it has none (no crop)."""
        records = getattr(dataset, "records", None)
        if not records or any(record is None for record in records):
            return None
        return self._report(records, list(dataset.data))

    def attach(self, engine: Engine) -> None:
        """Collect every batch's records and report when `engine` completes."""
        engine.add_event_handler(Events.STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.COMPLETED, self._completed)

    def _reset(self, engine: Engine) -> None:
        self._records, self._items = [], []

    def _collect(self, engine: Engine) -> None:
        batch = engine.state.batch
        items = decollate_batch(batch, detach=True) if isinstance(batch, Mapping) else list(batch)
        for item in items:
            record = item.get(self.record_key)
            if record is None:
                continue
            image = item.get("image")
            name = image.meta.get("filename_or_obj", "") if isinstance(image, MetaTensor) else ""
            self._records.append(_plain(record))
            self._items.append({"image": str(name), "image_id": str(item.get("image_id", ""))})

    def _completed(self, engine: Engine) -> None:
        records, items = self._records, self._items
        if idist.get_world_size() > 1:
            records = [r for part in idist.all_gather(records) for r in part]
            items = [i for part in idist.all_gather(items) for i in part]
        if records:
            self._report(records, items)

    def _report(self, records: Sequence[Mapping[str, Any]], items: Sequence[Mapping[str, Any]]) -> CropSummary:
        names = [str(item.get("image_id") or item.get("image", "")) for item in items]
        summary = summarize_crops(records, names)
        if idist.get_rank() != 0:
            return summary
        rows = [
            {
                "image": str(item.get("image", "")),
                "image_id": str(item.get("image_id", "")),
                "found": bool(record["found"]),
                "outlier": outlier,
                "note": note,
                "chest_wall": record["chest_wall"],
                **dict(zip(("y0", "y1", "x0", "x1"), record["box"])),
                **{key: record[key] for key in ("height", "width")},
                **{key: round(float(record[key]), 4) for key in ("box_height", "box_width", "box_area")},
            }
            for item, record, outlier, note in zip(items, records, summary.outliers, summary.notes)
        ]
        replace_split_rows(self.path, self.split, rows, CROP_REPORT_COLUMNS)
        logger.info(summary.line(self.split, str(self.path)))
        warning = summary.warning(self.split, self.warn_above, str(self.path))
        if warning is not None:
            logger.warning(warning)
        return summary


def _plain(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record back in plain Python values after a DataLoader's collation and decollation (tensors, 0-d arrays)."""
    def value(v: Any) -> Any:
        if hasattr(v, "tolist"):
            return v.tolist()
        if isinstance(v, (list, tuple)):
            return [value(x) for x in v]
        return v

    return {key: value(v) for key, v in record.items()}
