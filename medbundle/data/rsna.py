"""Datalist for the RSNA Screening Mammography Breast Cancer Detection data (Kaggle 2022-23).

The Kaggle layout is ``<dataset_dir>/<csv>`` with one row per image and the images at
``<dataset_dir>/<image_dir>/<patient_id>/<image_id>.dcm``.  The competition scores one prediction
per breast, so every item carries its ``breast_id`` (``<patient_id>_<laterality>``) for aggregation
with :func:`medbundle.metrics.aggregate_by_breast`, and ``patient_id`` for leak-free folds.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from medbundle.data.columns import check_binary_cells, dataset_folder, read_csv_checked

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
        FileNotFoundError: ``dataset_dir``, the CSV or the image directory does not exist, or an image
            file does not (with ``missing="raise"``; with ``"skip"``, when none of them does).
        ValueError: the CSV has no rows, a required column is absent or has empty cells, a label is not
            0/1, or an image_id is on more than one row (for one patient or several).
    """
    if missing not in ("raise", "skip"):
        raise ValueError(f"missing must be 'raise' or 'skip', got {missing!r}.")
    dataset_dir = dataset_folder(dataset_dir, f"{csv} and {image_dir}/")
    csv_path = dataset_dir / csv
    required = [*_ID_COLUMNS, *([label_column] if label_column is not None else [])]
    frame = read_csv_checked(csv_path, required, dtype={column: str for column in _ID_COLUMNS})
    if frame.empty:
        raise ValueError(f"{csv_path} has a header but no rows; point dataset_dir/csv to the full CSV.")
    if not (dataset_dir / image_dir).is_dir():
        raise FileNotFoundError(
            f"image directory {dataset_dir / image_dir} (for {csv_path}) does not exist; "
            "check image_dir (train_images for train.csv, test_images for test.csv)."
        )

    check_binary_cells(frame, required, label_column, csv_path)

    _check_unique_images(frame, csv_path)

    datalist = []
    missing_lines = []
    for line, record in enumerate(frame[required].to_dict("records"), start=2):
        patient_id, image_id, laterality = (record[column] for column in _ID_COLUMNS)
        image = dataset_dir / image_dir / patient_id / f"{image_id}{suffix}"
        if not image.is_file():
            if missing == "raise":
                raise FileNotFoundError(
                    f"image file not found: {image} (CSV {csv_path}, line {line}, image_id {image_id}); "
                    "check image_dir, or drop rows without an image with missing='skip' (bundle key "
                    "missing_images: skip)."
                )
            missing_lines.append(line)
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
    if missing_lines and not datalist:
        raise FileNotFoundError(
            f"none of the {len(frame)} image files listed in {csv_path} exists, e.g. {image}; "
            f"check dataset_dir, image_dir ({image_dir!r}) and suffix ({suffix!r})."
        )
    if missing_lines:
        logger.warning(
            "Skipped %d of %d rows of %s whose image file is missing (line(s) %s).",
            len(missing_lines), len(frame), csv_path, missing_lines[:10],
        )
    return datalist


def _check_unique_images(frame: pd.DataFrame, csv_path: Path) -> None:
    """Raise when an image_id is on more than one row: for two patients, or twice for one.

    A duplicated image would be trained on (or scored) twice; an image listed for two patients
    could even land in both the training and the validation split.

    Args:
        frame: the CSV, with string ``patient_id`` and ``image_id`` columns and no empty ids.
        csv_path: the CSV's path, for the message.

    Raises:
        ValueError: naming up to 5 image ids, their CSV lines and (for two patients) the patient ids.
    """
    repeated = frame[frame["image_id"].duplicated(keep=False)]
    if repeated.empty:
        return
    groups = repeated.groupby("image_id", sort=False)
    patients = groups["patient_id"].unique()
    shared = patients[patients.map(len) > 1]
    if not shared.empty:
        examples = "; ".join(
            f"image_id {image_id} on lines {(groups.groups[image_id] + 2).tolist()} "
            f"with patient_id {', '.join(patient_ids)}"
            for image_id, patient_ids in shared.head(5).items()
        )
        raise ValueError(
            f"{csv_path} lists {len(shared)} image(s) for more than one patient: {examples}. An image belongs to "
            "one patient: fix its patient_id or drop the wrong rows."
        )
    examples = "; ".join(
        f"image_id {image_id} on lines {(rows + 2).tolist()}" for image_id, rows in list(groups.groups.items())[:5]
    )
    raise ValueError(
        f"{csv_path} lists {groups.ngroups} image_id(s) on more than one row: {examples}. "
        "Drop the duplicate rows so that each image is used once."
    )
