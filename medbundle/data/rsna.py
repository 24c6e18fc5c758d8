"""Datalist for the RSNA Screening Mammography Breast Cancer Detection data (Kaggle 2022-23).

The Kaggle layout is ``<dataset_dir>/<csv>`` with one row per image and the images at
``<dataset_dir>/<image_dir>/<patient_id>/<image_id>.dcm``.  The competition scores one prediction
per breast, so every item carries its ``breast_id`` (``<patient_id>_<laterality>``) for aggregation
with :func:`medbundle.metrics.aggregate_by_breast`, and ``patient_id`` for leak-free folds.
"""

from __future__ import annotations

import logging
from pathlib import Path

from medbundle.data.columns import read_csv_checked

__all__ = ["rsna_datalist"]

logger = logging.getLogger(__name__)

_ID_COLUMNS = ("patient_id", "image_id", "laterality")


def rsna_datalist(
    dataset_dir: str | Path,
    csv: str = "train.csv",
    image_dir: str = "train_images",
    label_column: str | None = "cancer",
    missing: str = "raise",
    suffix: str = ".dcm",
) -> list[dict]:
    """Build a MONAI datalist (one dict per image) from the RSNA Kaggle CSV.

    Each item is ``{"image": str path, "label": [float], "patient_id", "laterality", "image_id",
    "breast_id"}`` (ids as strings, exactly as written in the CSV).  ``label`` is a one-element list
    so a batch collates to shape ``(B, 1)``, matching a one-logit model; it is left out when
    ``label_column`` is None (the Kaggle test CSV has no label).

    Args:
        dataset_dir: directory holding the CSV and the image directory.
        csv: CSV file name inside ``dataset_dir`` (``"train.csv"`` or ``"test.csv"``).
        image_dir: image directory inside ``dataset_dir``.
        label_column: 0/1 label column, or None for an unlabelled set.
        missing: ``"raise"`` to fail on the first image file that does not exist, ``"skip"`` to drop
            those rows and log how many were dropped (e.g. for a partial download).
        suffix: image file suffix; ``".png"`` for images converted offline under the same layout.

    Returns:
        The datalist, in CSV row order.

    Raises:
        FileNotFoundError: the CSV, or (with ``missing="raise"``) an image file, does not exist.
        ValueError: a required column is absent or has empty cells, or a label is not 0/1.
    """
    if missing not in ("raise", "skip"):
        raise ValueError(f"missing must be 'raise' or 'skip', got {missing!r}.")
    dataset_dir = Path(dataset_dir)
    csv_path = dataset_dir / csv
    required = [*_ID_COLUMNS, *([label_column] if label_column is not None else [])]
    frame = read_csv_checked(csv_path, required, dtype={column: str for column in _ID_COLUMNS})

    empty = frame[required].isna().any(axis=1)
    if empty.any():
        lines = (frame.index[empty] + 2).tolist()[:10]
        raise ValueError(
            f"{csv_path} has empty cells in columns {required} on line(s) {lines}; fix or drop those rows."
        )
    if label_column is not None:
        invalid = ~frame[label_column].isin((0, 1))
        if invalid.any():
            lines = (frame.index[invalid] + 2).tolist()[:10]
            raise ValueError(
                f"{csv_path} column {label_column!r} must be 0 or 1; line(s) {lines} hold "
                f"{frame.loc[invalid, label_column].unique()[:5].tolist()}."
            )

    datalist = []
    n_missing = 0
    for line, record in enumerate(frame[required].to_dict("records"), start=2):
        patient_id, image_id, laterality = (record[column] for column in _ID_COLUMNS)
        image = dataset_dir / image_dir / patient_id / f"{image_id}{suffix}"
        if not image.is_file():
            if missing == "raise":
                raise FileNotFoundError(
                    f"image file not found: {image} (CSV {csv_path}, line {line}, image_id {image_id}); "
                    "check image_dir, or pass missing='skip' to drop rows without an image."
                )
            n_missing += 1
            continue
        item = {
            "image": str(image),
            "patient_id": patient_id,
            "laterality": laterality,
            "image_id": image_id,
            "breast_id": f"{patient_id}_{laterality}",
        }
        if label_column is not None:
            item["label"] = [float(record[label_column])]
        datalist.append(item)
    if n_missing:
        logger.warning("Skipped %d of %d rows of %s whose image file is missing.", n_missing, len(frame), csv_path)
    return datalist
