"""Datalist for the ISIC 2024 Skin Cancer Detection challenge (Kaggle, 3D total-body photo crops).

The Kaggle layout is ``<dataset_dir>/train-metadata.csv`` (one row per lesion: ``isic_id``, ``target``,
``patient_id`` and tabular columns) with the JPEG crops in ``<dataset_dir>/train-image.hdf5`` (one dataset
per ``isic_id`` holding the file's bytes), and ``test-metadata.csv`` / ``test-image.hdf5`` without
``target``. Items name an HDF5 member as ``"<file>::<isic_id>"``, which :class:`medbundle.io.RGBReader`
decodes; crops exported to a folder as ``<isic_id>.jpg`` / ``.png`` work as well.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from medbundle.data.columns import check_binary_cells, dataset_folder, read_csv_checked
from medbundle.imaging.decode import RGB_SUFFIXES
from medbundle.io import HDF5_SUFFIXES, hdf5_keys, hdf5_member

__all__ = ["isic_datalist"]

logger = logging.getLogger(__name__)


def isic_datalist(
    dataset_dir: str | Path,
    csv: str = "train-metadata.csv",
    images: str = "train-image.hdf5",
    label_column: str | None = "target",
    missing: str = "raise",
) -> list[dict]:
    """Build a MONAI datalist (one dict per lesion crop) from the ISIC metadata CSV and its images.

    Each item is ``{"image": "<hdf5>::<isic_id>" or a file path, "label": [float], "image_id": isic_id,
    "patient_id"}`` in CSV row order; ``label`` is left out when ``label_column`` is None (the Kaggle test
    CSV has no ``target``), and ``patient_id`` when the CSV lacks the column (allowed only then).

    Args:
        dataset_dir: the folder holding the Kaggle files as downloaded.
        csv: metadata CSV inside ``dataset_dir``.
        images: inside ``dataset_dir``, the HDF5 file (``.hdf5`` / ``.h5``) or a folder of
            ``<isic_id>.jpg|.jpeg|.png`` files.
        label_column: the 0/1 column, or None for an unlabelled set.
        missing: ``"raise"`` to fail on the first ``isic_id`` without an image, ``"skip"`` to drop those
            rows and log how many were dropped.

    Returns:
        The datalist.

    Raises:
        FileNotFoundError: ``dataset_dir``, the CSV or ``images`` does not exist, no ``isic_id`` has an image
            (CSV and images of different sets), or one has none with ``missing="raise"``.
        ValueError: a required column is absent or has empty cells, a label is not 0/1, an ``isic_id`` is
            on more than one row, or the CSV has no rows.
    """
    if missing not in ("raise", "skip"):
        raise ValueError(f"missing must be 'raise' or 'skip', got {missing!r}.")
    dataset_dir = dataset_folder(
        dataset_dir, f"{csv} and {images} (the Kaggle isic-2024-challenge files, or `medbundle demo_data --task isic`)"
    )
    csv_path = dataset_dir / csv
    required = ["isic_id", *([label_column, "patient_id"] if label_column is not None else [])]
    frame = read_csv_checked(csv_path, required, dtype={"isic_id": str, "patient_id": str})
    if frame.empty:
        raise ValueError(f"{csv_path} has a header but no rows; point dataset_dir/csv to the full metadata CSV.")
    columns = [*required, *(["patient_id"] if label_column is None and "patient_id" in frame else [])]
    _check_cells(frame, columns, label_column, csv_path)

    source = dataset_dir / images
    available = _available_images(source)
    if not frame["isic_id"].isin(available).any():
        raise FileNotFoundError(
            f"none of the {len(frame)} isic_ids of {csv_path} has an image in {source}; check dataset_dir, csv and "
            "images (train-image.hdf5 for train-metadata.csv, test-image.hdf5 for test-metadata.csv)."
        )
    datalist = []
    missing_lines = []
    for line, record in enumerate(frame[columns].to_dict("records"), start=2):
        isic_id = record["isic_id"]
        image = available.get(isic_id)
        if image is None:
            if missing == "raise":
                raise FileNotFoundError(
                    f"isic_id {isic_id} (CSV {csv_path}, line {line}) has no image in {source}; check that the CSV "
                    "and the images belong together, or drop such rows with missing='skip' (bundle key "
                    "missing_images: skip)."
                )
            missing_lines.append(line)
            continue
        item = {"image": image, "image_id": isic_id}
        if "patient_id" in record:
            item["patient_id"] = record["patient_id"]
        if label_column is not None:
            item["label"] = [float(record[label_column])]
        datalist.append(item)
    if missing_lines:
        logger.warning(
            "Skipped %d of %d rows of %s whose isic_id has no image in %s (line(s) %s).",
            len(missing_lines), len(frame), csv_path, source, missing_lines[:10],
        )
    return datalist


def _check_cells(frame: pd.DataFrame, columns: list[str], label_column: str | None, csv_path: Path) -> None:
    """Reject empty cells, labels other than 0/1 and repeated ``isic_id`` values, naming CSV lines."""
    check_binary_cells(frame, columns, label_column, csv_path)
    repeated = frame["isic_id"].duplicated(keep=False)
    if repeated.any():
        examples = frame.loc[repeated].groupby("isic_id", sort=False).groups
        listed = "; ".join(f"{key} on lines {(rows + 2).tolist()}" for key, rows in list(examples.items())[:5])
        raise ValueError(
            f"{csv_path} lists {len(examples)} isic_id(s) on more than one row: {listed}. Drop the duplicate rows "
            "so that each lesion is used once (and cannot land in both training and validation)."
        )


def _available_images(source: Path) -> dict[str, str]:
    """``isic_id`` -> datalist ``image`` for every crop in an HDF5 file or a folder of image files.

    Raises:
        FileNotFoundError: ``source`` does not exist, or is a file that is not HDF5 by its suffix.
    """
    if source.is_dir():
        return {path.stem: str(path) for path in sorted(source.iterdir()) if path.suffix.lower() in RGB_SUFFIXES}
    if not source.is_file():
        raise FileNotFoundError(
            f"image source {source} does not exist; set images to the HDF5 file (train-image.hdf5, test-image.hdf5) "
            "or a folder of <isic_id>.jpg files inside dataset_dir."
        )
    if source.suffix.lower() not in HDF5_SUFFIXES:
        raise FileNotFoundError(
            f"image source {source} is neither an HDF5 file ({', '.join(HDF5_SUFFIXES)}) nor a folder of "
            "<isic_id>.jpg/.png files; point images to one of them."
        )
    return {key: hdf5_member(source, key) for key in hdf5_keys(source)}
