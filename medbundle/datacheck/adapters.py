"""Per-task adapters for the data set check: the bundle's own datalist, plus what to count in it.

An adapter turns a data set folder into :class:`DatasetFacts`: the items exactly as the task's
bundle lists them (so folds match training), each with its ``split`` and a ``class`` name, the
columns worth counting, the files its CSV names that do not exist, and the image reader its bundle
loads with (so "readable" means readable by training). The check itself never looks at a task's
layout; a task names its adapter in its spec (:mod:`medbundle.tasks`, ``dataset_facts``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medbundle.data.chest_xray import CHEST_XRAY_CLASSES, chest_xray_datalist
from medbundle.data.class_folders import read_patients
from medbundle.data.classify import (
    classify_classes,
    classify_csv_datalist,
    classify_folder_datalist,
    classify_layout,
    resolve_color,
)
from medbundle.data.columns import read_csv_checked
from medbundle.data.isic import isic_datalist
from medbundle.data.rsna import rsna_datalist
from medbundle.imaging.breast_crop import BreastCropper, crop_record
from medbundle.io import GrayscaleReader, RGBReader
from medbundle.io.pixel_reader import PixelSpaceReader

__all__ = [
    "CROP_FACTS",
    "DatasetFacts",
    "breast_crop_facts",
    "chest_xray_dataset_facts",
    "classify_dataset_facts",
    "isic_dataset_facts",
    "rsna_dataset_facts",
]

_RSNA_EXTRA_COLUMNS = ("site_id", "view")  # CSV columns counted beside the datalist's laterality
_ISIC_EXTRA_COLUMNS = ("anatom_site_general", "sex", "tbp_tile_type")  # metadata columns counted
_CHEST_XRAY_SPLITS = ("train", "val", "test")


@dataclass
class DatasetFacts:
    """What the data set check needs to know about one data set.

    Attributes:
        items: datalist items in the bundle's order, each with ``image``, ``image_id``, ``label`` (as
            the bundle's folds stratify it), ``split``, ``class`` (the class name, for counting), the
            ``count_columns`` and, where known, ``patient_id``.
        class_column: what the class is called in the report, e.g. "cancer".
        class_names: the class names in label order.
        count_columns: item keys whose values are counted, e.g. ``("site_id", "view")``.
        group_columns: item keys of the groups whose image counts are summarised, e.g. ``("patient_id",)``.
        fold_splits: splits the bundle pools into patient-grouped folds; empty when it trains on
            fixed split folders.
        missing: rows that name an image file that does not exist, as
            ``{"image_id", "patient_id", "error"}``.
        reader: the bundle's image reader class, which the scan decodes every image with:
            :class:`~medbundle.io.GrayscaleReader` for radiographs, :class:`~medbundle.io.RGBReader`
            for colour photographs (and HDF5 members).
        image_facts: what else the scan learns from each decoded image, for the task's own checks (rsna:
            :func:`breast_crop_facts`); None for nothing.
    """

    items: list[dict]
    class_column: str
    class_names: tuple[str, ...]
    count_columns: tuple[str, ...] = ()
    group_columns: tuple[str, ...] = ()
    fold_splits: tuple[str, ...] = ()
    missing: list[dict] = field(default_factory=list)
    reader: type[PixelSpaceReader] = GrayscaleReader
    image_facts: Callable[[np.ndarray], dict] | None = None


#: every ``crop_*`` fact of :func:`breast_crop_facts`, a :func:`~medbundle.imaging.breast_crop.crop_record` key each
CROP_FACTS = ("found", "reason", "chest_wall", "box_height", "box_width", "box_area")


def breast_crop_facts(image: np.ndarray) -> dict:
    """What the rsna bundle's breast crop (default settings) finds on a decoded mammogram, as ``crop_*`` facts."""
    found, reason = BreastCropper().find(np.asarray(image, dtype=np.float32)[None])
    record = crop_record(found, reason, image.shape[-2:])
    return {f"crop_{key}": record[key] for key in CROP_FACTS}


def _binary_csv_items(
    frame, items: list[dict], id_column: str, extra_columns: tuple[str, ...], names_missing: Callable[[int, str, str], str]
) -> tuple[list[str], list[dict]]:
    """Add a binary Kaggle CSV's counted columns, split and class to the datalist `items`; list the rows without one.

    Returns:
        The counted columns the CSV has, and ``{"image_id", "patient_id", "error"}`` for every CSV row whose image
        the datalist skipped, the error saying which line names which missing file (`names_missing(line, patient,
        image)`).
    """
    present = [column for column in extra_columns if column in frame.columns]
    extras = frame.drop_duplicates(id_column).set_index(id_column)[present].to_dict("index")
    for item in items:
        item.update(extras[item["image_id"]], split="train", **{"class": str(int(item["label"][0]))})
    listed = {item["image_id"] for item in items}
    missing = [
        {"image_id": image, "patient_id": patient, "error": f"FileNotFoundError: {names_missing(line, patient, image)}"}
        for line, (patient, image) in enumerate(zip(frame["patient_id"], frame[id_column]), start=2)
        if image not in listed
    ]
    return present, missing


def rsna_dataset_facts(
    dataset_dir: str | Path, csv: str = "train.csv", image_dir: str = "train_images"
) -> DatasetFacts:
    """RSNA mammography: ``rsna_datalist`` items (folds over all of them), counted by site, view, laterality.

    Args:
        dataset_dir: the Kaggle data folder.
        csv: the label CSV inside it.
        image_dir: the image folder inside it.
    """
    dataset_dir = Path(dataset_dir)
    frame = read_csv_checked(dataset_dir / csv, ["patient_id", "image_id"], dtype=str)
    items = rsna_datalist(dataset_dir, csv=csv, image_dir=image_dir, missing="skip")
    extra_columns, missing = _binary_csv_items(
        frame, items, "image_id", _RSNA_EXTRA_COLUMNS,
        lambda line, patient, image: f"{csv} line {line} names {image_dir}/{patient}/{image}.dcm, which does not exist",
    )  # fmt: skip
    return DatasetFacts(
        items=items,
        class_column="cancer",
        class_names=("0", "1"),
        count_columns=(*extra_columns, "laterality"),
        group_columns=("breast_id", "patient_id"),
        fold_splits=("train",),
        missing=missing,
        image_facts=breast_crop_facts,
    )


def isic_dataset_facts(
    dataset_dir: str | Path, csv: str = "train-metadata.csv", images: str = "train-image.hdf5"
) -> DatasetFacts:
    """ISIC 2024 skin lesions: ``isic_datalist`` items (folds over all of them), counted by site, sex, tile type.

    Images are read with :class:`~medbundle.io.RGBReader`, as the bundle does: JPEG bytes in the HDF5
    file (``"<file>::<isic_id>"``) or a folder of ``<isic_id>.jpg|.png`` files. CSV rows whose ``isic_id``
    has no image are listed as missing (the bundle's ``missing_images: skip`` drops them).

    Args:
        dataset_dir: the Kaggle data folder.
        csv: the metadata CSV inside it.
        images: the HDF5 file or image folder inside it.
    """
    dataset_dir = Path(dataset_dir)
    frame = read_csv_checked(dataset_dir / csv, ["isic_id", "patient_id"], dtype=str)
    items = isic_datalist(dataset_dir, csv=csv, images=images, missing="skip")
    extra_columns, missing = _binary_csv_items(
        frame, items, "isic_id", _ISIC_EXTRA_COLUMNS,
        lambda line, patient, image: f"{csv} line {line} names isic_id {image}, which has no image in {images}",
    )  # fmt: skip
    return DatasetFacts(
        items=items,
        class_column="target",
        class_names=("0", "1"),
        count_columns=tuple(extra_columns),
        group_columns=("patient_id",),
        fold_splits=("train",),
        missing=missing,
        reader=RGBReader,
    )


def chest_xray_dataset_facts(dataset_dir: str | Path, patients_csv: str | Path | None = None) -> DatasetFacts:
    """Chest X-ray class folders: every image of ``train``, ``val`` and (if present) ``test``.

    Without ``patients_csv`` the bundle trains on the fixed folders, so they are the partitions that
    must not share an image. With it, the bundle pools train and val into patient-grouped folds
    (:func:`medbundle.data.chest_xray_split`); test stays apart, and its images need no CSV row.

    Args:
        dataset_dir: the data set root.
        patients_csv: CSV with columns ``image`` (relative to ``dataset_dir``) and ``patient_id``, as
            the bundle's ``patients_csv`` setting; a relative path is taken relative to ``dataset_dir``.

    Raises:
        ValueError: with ``patients_csv``, a train or val image has no row in it.
    """
    dataset_dir = Path(dataset_dir)
    splits = [s for s in _CHEST_XRAY_SPLITS if s != "test" or (dataset_dir / s).is_dir()]
    items = []
    for split in splits:
        for item in chest_xray_datalist(dataset_dir, split):
            items.append({**item, "split": split, "class": CHEST_XRAY_CLASSES[item["label"]]})
    fold_splits = ("train", "val") if patients_csv is not None else ()
    if patients_csv is not None:
        _add_patients(items, dataset_dir, dataset_dir / patients_csv, fold_splits)
    return DatasetFacts(
        items=items,
        class_column="class",
        class_names=CHEST_XRAY_CLASSES,
        group_columns=("patient_id",) if patients_csv is not None else (),
        fold_splits=fold_splits,
    )


def classify_dataset_facts(
    dataset_dir: str | Path,
    csv: str = "labels.csv",
    layout: str = "auto",
    class_names: list | None = None,
    color: bool | str = "auto",
) -> DatasetFacts:
    """Any classification data set, read as the classify bundle reads it (:mod:`medbundle.data.classify`).

    A label CSV: every row, folded as the bundle folds it (by patient when the CSV has ``patient_id``, else by
    image); rows whose image does not exist are listed as missing. Class folders: ``train``, ``val`` and
    ``test`` as fixed splits when ``val`` exists, else K folds over ``train`` (or over the plain class folders),
    with ``test`` apart. Images are decoded with the reader the bundle's ``color`` picks.

    Args:
        dataset_dir: the data set folder.
        csv: the label CSV inside it (the bundle's ``csv``).
        layout: ``auto``, ``csv`` or ``folders`` (the bundle's ``layout``).
        class_names: the label order (the bundle's ``class_names``); None sorts the data's classes.
        color: ``auto``, True or False (the bundle's ``color``).
    """
    dataset_dir = Path(dataset_dir)
    names = classify_classes(dataset_dir, csv, layout, class_names)
    kind = classify_layout(dataset_dir, csv, layout)
    missing = []
    if kind == "csv":
        items = [{**item, "split": "train"} for item in classify_csv_datalist(dataset_dir, csv, names, missing="skip")]
        listed = {item["image_id"] for item in items}
        frame = read_csv_checked(dataset_dir / csv, ["image"], dtype=str)
        missing = [
            {"image_id": Path(image).with_suffix("").as_posix(), "patient_id": None,
             "error": f"FileNotFoundError: {csv} line {line} names {image}, which does not exist"}
            for line, image in enumerate(frame["image"].str.strip(), start=2)
            if Path(image).with_suffix("").as_posix() not in listed
        ]  # fmt: skip
        fold_splits = ("train",)
    elif kind == "split_folders":
        splits = [split for split in ("train", "val", "test") if (dataset_dir / split).is_dir()]
        items = [{**item, "split": split} for split in splits for item in classify_folder_datalist(dataset_dir, names, split)]
        fold_splits = () if "val" in splits else ("train",)
    else:
        items = [{**item, "split": "train"} for item in classify_folder_datalist(dataset_dir, names)]
        fold_splits = ("train",)
    for item in items:
        label = item["label"][0] if isinstance(item["label"], list) else item["label"]
        item["class"] = names[int(label)]
    has_patients = any("patient_id" in item for item in items)
    return DatasetFacts(
        items=items,
        class_column="class",
        class_names=tuple(names),
        group_columns=("patient_id",) if has_patients else (),
        fold_splits=fold_splits,
        missing=missing,
        reader=RGBReader if resolve_color(color, items) else GrayscaleReader,
    )


def _add_patients(items: list[dict], dataset_dir: Path, csv_path: Path, required: tuple[str, ...]) -> None:
    """Set items' ``patient_id`` from a CSV of (image relative to ``dataset_dir``, patient_id).

    Images of the ``required`` splits must have a row, as the bundle's folds need one; others may lack it.
    """
    patients = read_patients(csv_path)
    lacking = []
    for item in items:
        key = Path(item["image"]).relative_to(dataset_dir).as_posix()
        if key in patients:
            item["patient_id"] = patients[key]
        elif item["split"] in required:
            lacking.append(key)
    if lacking:
        raise ValueError(
            f"{len(lacking)} images under {dataset_dir}/{{{','.join(required)}}} have no row in {csv_path}, "
            f"e.g. {lacking[:5]}; "
            "add a row (image, patient_id) for each, or leave patients_csv unset to validate the fixed split folders."
        )
