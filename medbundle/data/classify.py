"""Datalists of any 2D classification data set, found from its folder alone: a label CSV or class folders.

Users with their own images (a folder of knee radiographs, a CSV of fundus photographs) should not have to
write a datalist. The classify bundle reads one of three layouts under ``dataset_dir``:

- ``csv``: ``<dataset_dir>/labels.csv`` (or another name) with columns ``image`` (a path relative to the
  CSV's folder), ``label`` (a class name or number) and optionally ``patient_id``; K folds over its rows,
  grouped by patient when the column exists, so no patient's images are on both sides of a fold;
- ``split_folders``: ``<dataset_dir>/train/<class>/...`` with ``val/<class>/...`` (the fixed split, as
  chest_xray's Kaggle download), or without ``val`` (K folds over ``train``); a ``test`` folder is held out;
- ``class_folders``: ``<dataset_dir>/<class>/...``, K folds over every image.

Class order decides the label index, the network's outputs and what a checkpoint means, so it is fixed by
the data, not by file-system order: labels that are all numbers sort numerically (``2`` before ``10``),
others alphabetically (case-insensitive); a ``class_names`` list overrides the order. Two classes train
one sigmoid output whose positive class is ``class_names[1]`` (label ``[0.0]`` / ``[1.0]``, as the binary
bundles); three or more a softmax over class indices. Items follow the shared schema of
:mod:`medbundle.data` (``image``, ``label``, ``image_id``, optional ``patient_id``).
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from medbundle.data.class_folders import (
    class_folder_datalist,
    class_folder_split,
    image_files_datalist,
    normalise_class_name,
)
from medbundle.data.columns import dataset_folder, read_csv_checked
from medbundle.data.folds import split_fold
from medbundle.imaging.decode import DICOM_SUFFIXES, IMAGE_SUFFIXES, ImageReadError
from medbundle.io.image_file import read_rgb

__all__ = [
    "LAYOUTS",
    "classify_classes",
    "classify_csv_datalist",
    "classify_folder_datalist",
    "classify_held_out",
    "classify_layout",
    "classify_split",
    "detect_color",
    "resolve_color",
]

logger = logging.getLogger(__name__)

#: values of the bundle's ``layout`` key
LAYOUTS = ("auto", "csv", "folders")
_HOLDS = "labels.csv (columns image, label[, patient_id]) or one folder per class"
_COLOR_SPREAD = 0.02  # mean (max - min) over the channels above which an image is colour, not grey saved as RGB


def classify_layout(dataset_dir: str | Path, csv: str = "labels.csv", layout: str = "auto") -> str:
    """Which layout `dataset_dir` holds: ``"csv"``, ``"split_folders"`` or ``"class_folders"``.

    With ``layout="auto"`` the CSV wins when it exists, else ``train/`` means split folders, else every
    sub-folder is a class.

    Args:
        dataset_dir: the data set folder.
        csv: the label CSV's name inside it (or a path).
        layout: ``"auto"``, ``"csv"`` or ``"folders"`` (the bundle's ``layout`` key).

    Raises:
        FileNotFoundError: `dataset_dir` is not a folder.
        ValueError: an unknown `layout`.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {list(LAYOUTS)}, got {layout!r}; fix the bundle key layout.")
    folder = dataset_folder(dataset_dir, _HOLDS)
    if layout == "csv" or (layout == "auto" and (folder / csv).is_file()):
        return "csv"
    return "split_folders" if (folder / "train").is_dir() else "class_folders"


def classify_classes(
    dataset_dir: str | Path,
    csv: str = "labels.csv",
    layout: str = "auto",
    class_names: Sequence[object] | None = None,
) -> list[str]:
    """The class names in label order: the data's own, sorted, or `class_names` checked against the data.

    Sorting: numbers numerically, names alphabetically (case-insensitive). The CSV layout reads the
    ``label`` column; split folders the class folders of ``train`` and ``val`` (a held-out ``test`` may
    lack some); plain class folders every sub-folder of `dataset_dir` that holds an image.

    Args:
        dataset_dir: the data set folder. When it does not exist and `class_names` is given, `class_names`
            is returned as it is (a network-only parse, e.g. ``verify_net_in_out``; the datalists then say
            what is missing).
        csv: the label CSV's name inside `dataset_dir`.
        layout: ``"auto"``, ``"csv"`` or ``"folders"``.
        class_names: the label order to use instead of the sorted one; numbers may be given as numbers.

    Raises:
        ValueError: fewer than two classes; `class_names` misses a class of the data or names one without
            an image (the message names the CSV or folder).
    """
    if class_names is not None and not Path(dataset_dir).is_dir():
        return _names(class_names)
    kind = classify_layout(dataset_dir, csv, layout)
    root = Path(dataset_dir)
    if kind == "csv":
        found, where = _csv_labels(root / csv)[0], f"column 'label' of {root / csv}"
    elif kind == "split_folders":
        found, where = _split_folder_classes(root), f"the class folders of {root / 'train'} and {root / 'val'}"
    else:
        found, where = _class_folders(root), f"the class folders of {root}"
    found = _sorted_classes(found)
    if class_names is None:
        names = found
    else:
        names = _names(class_names)
        _check_override(names, found, where)
    if len(names) < 2:
        raise ValueError(
            f"{where} holds {len(names)} class ({names}); a classifier needs at least two: add images of another "
            "class, or point dataset_dir/csv to the full data set."
        )
    return names


def classify_split(
    dataset_dir: str | Path,
    class_names: Sequence[str],
    fold: int = 0,
    n_folds: int = 5,
    seed: int = 42,
    csv: str = "labels.csv",
    layout: str = "auto",
) -> tuple[list[dict], list[dict]]:
    """The (train, val) datalists of fold `fold`: the fixed ``train``/``val`` folders, or stratified K folds.

    K folds keep each patient on one side when the items have a ``patient_id`` (the CSV column), else they
    split images; every class must have at least `n_folds` patients (or images), so that every fold
    validates on it.

    Args:
        dataset_dir: the data set folder.
        class_names: the classes in label order (:func:`classify_classes`).
        fold: the validation fold, in ``[0, n_folds)``; only 0 for fixed split folders.
        n_folds: number of folds.
        seed: fold assignment seed; keep it fixed across the folds of one cross-validation.
        csv: the label CSV's name inside `dataset_dir`.
        layout: ``"auto"``, ``"csv"`` or ``"folders"``.

    Raises:
        ValueError: a class has too few images or patients for `n_folds` (naming the CSV or folder and what to
            do), `fold` is not 0 for fixed split folders, or a fold cannot be drawn.
    """
    kind = classify_layout(dataset_dir, csv, layout)
    root = Path(dataset_dir)
    if kind == "split_folders" and (root / "val").is_dir():
        if fold != 0:
            raise ValueError(
                f"{root} has fixed train/ and val/ folders, so fold 0 is its only split, not fold {fold}; use fold 0, "
                f"or move the class folders of val/ into train/ for {n_folds} folds over them."
            )
        train, val = class_folder_split(root, class_names)
        _check_trained_classes(train, class_names, root / "train")
        return _encoded(train, class_names), _encoded(val, class_names)
    if kind == "csv":
        items, where = classify_csv_datalist(root, csv, class_names), str(root / csv)
    else:
        split = "train" if kind == "split_folders" else None
        items = classify_folder_datalist(root, class_names, split)
        where = f"the class folders of {root / split if split else root}"
    group_key = "patient_id" if items and all("patient_id" in item for item in items) else "image_id"
    _check_fold_counts(items, class_names, n_folds, group_key, where)
    return split_fold(items, fold, n_splits=n_folds, seed=seed, group_key=group_key)


def classify_csv_datalist(
    dataset_dir: str | Path,
    csv: str = "labels.csv",
    class_names: Sequence[object] | None = None,
    missing: str = "raise",
) -> list[dict]:
    """Every row of a label CSV as a datalist item, in row order.

    Columns: ``image`` (a path relative to the CSV's folder, or absolute), ``label`` and optionally
    ``patient_id``. ``image_id`` is the image path without its suffix, so ids stay unique across folders.

    Args:
        dataset_dir: the folder the CSV is in (a relative `csv` is taken relative to it).
        csv: the CSV's name or path.
        class_names: the model's classes in label order; default the CSV's own (:func:`classify_classes`).
        missing: ``"raise"`` to fail on the first row whose image does not exist, ``"skip"`` to drop such rows
            with one warning (the data set check lists them).

    Raises:
        FileNotFoundError: the CSV does not exist, or a row names an image that does not exist (``"raise"``).
        ValueError: the ``image`` or ``label`` column is missing, a cell is empty, an image is listed twice or
            is not an image file, or a label is not one of `class_names`; the message names the CSV and line.
    """
    if missing not in ("raise", "skip"):
        raise ValueError(f"missing must be 'raise' or 'skip', got {missing!r}.")
    csv_path = Path(dataset_dir) / csv
    labels, frame = _csv_labels(csv_path)
    names = _sorted_classes(labels) if class_names is None else _names(class_names)
    index = {name: k for k, name in enumerate(names)}
    unknown = [(line, label) for line, label in enumerate(labels, start=2) if label not in index]
    if unknown:
        raise ValueError(
            f"{csv_path} column 'label' holds {sorted({label for _, label in unknown})} (line(s) "
            f"{[line for line, _ in unknown[:10]]}), which are not among the model's classes {names}; drop those rows "
            "or train a model on these classes."
        )
    patients = frame["patient_id"].tolist() if "patient_id" in frame else None
    items, skipped = [], []
    for row, (image, label) in enumerate(zip(frame["image"], labels)):
        line = row + 2
        path = csv_path.parent / image
        if not path.is_file() and missing == "skip":
            skipped.append(line)
            continue
        if not path.is_file():
            raise FileNotFoundError(
                f"{csv_path} line {line} names image {image}, but {path} does not exist; image paths are relative to "
                "the CSV's folder: fix the path or drop the row."
            )
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise ValueError(
                f"{csv_path} line {line} names {image}, which is not an image file with suffix {list(IMAGE_SUFFIXES)}; "
                "convert it or drop the row."
            )
        item = {"image": str(path), "label": _label(index[label], len(names)), "image_id": Path(image).with_suffix("").as_posix()}
        if patients is not None:
            item["patient_id"] = patients[row]
        items.append(item)
    if skipped:
        logger.warning("Skipped %d row(s) of %s whose image does not exist (line(s) %s).", len(skipped), csv_path,
                       skipped[:10])  # fmt: skip
    _check_unique(items, csv_path)
    return items


def classify_folder_datalist(
    dataset_dir: str | Path, class_names: Sequence[str], split: str | None = None
) -> list[dict]:
    """Every image of the class folders ``<dataset_dir>[/<split>]/<class>/**``, labelled by `class_names`.

    ``image_id`` is ``[<split>/]<class folder>/<path below it without suffix>``. With a `split`, the folders
    are read by :func:`~medbundle.data.class_folders.class_folder_datalist` (class names matched after
    normalisation; a folder of another class is an error, a missing class a warning: a held-out split may
    lack one). Without one, the sub-folders of `dataset_dir` that hold an image are the classes, and one
    of a class not in `class_names` is an error naming it.

    Args:
        dataset_dir: the data set folder.
        class_names: the classes in label order.
        split: a split folder (``train``, ``val``, ``test``), or None for plain class folders.

    Raises:
        FileNotFoundError: the split folder does not exist.
        ValueError: a class folder of another class, or two images with one ``image_id``.
    """
    if split is not None:
        return _encoded(class_folder_datalist(dataset_dir, split, class_names), class_names)
    root = dataset_folder(dataset_dir, _HOLDS)
    lookup = {normalise_class_name(name): k for k, name in enumerate(class_names)}
    items = []
    for folder in _image_folders(root):
        label = lookup.get(normalise_class_name(folder.name))
        if label is None:
            raise ValueError(
                f"class folder {folder} is not one of the model's classes {list(class_names)}; move it out of {root} "
                "or train a model on these classes."
            )
        for item in image_files_datalist(folder):
            items.append({"image": item["image"], "label": _label(label, len(class_names)),
                          "image_id": f"{folder.name}/{item['image_id']}"})  # fmt: skip
    return items


def classify_held_out(
    dataset_dir: str | Path, class_names: Sequence[str], split: str = "test", csv: str | None = None
) -> list[dict]:
    """A labelled held-out set: every row of `csv` when given, else the class folders of ``<dataset_dir>/<split>``.

    Args:
        dataset_dir: the data set folder.
        class_names: the model's classes in label order (a checkpoint's stored ones).
        split: the held-out split folder.
        csv: a label CSV inside `dataset_dir` (columns ``image``, ``label``), scored whole.
    """
    if csv:
        return classify_csv_datalist(dataset_dir, csv, class_names)
    return classify_folder_datalist(dataset_dir, class_names, split)


def detect_color(datalist: Sequence[dict], n: int = 8) -> bool:
    """Whether a data set is colour: any of `n` images spread over `datalist` whose channels differ.

    Grey images saved as RGB (many public JPEGs) have equal channels up to JPEG noise; colour photographs
    (dermoscopy, fundus, histology) differ by far more. DICOM files are grey.

    Args:
        datalist: items with an ``image`` path.
        n: images to look at.

    Raises:
        ImageReadError: an inspected image cannot be read (the message names the file and what to do).
    """
    paths = [item["image"] for item in datalist]
    if not paths or any(Path(path).suffix.lower() in DICOM_SUFFIXES for path in paths):
        return False
    picks = sorted({round(k) for k in np.linspace(0, len(paths) - 1, min(n, len(paths)))})
    for k in picks:
        image, meta = read_rgb(paths[k])
        if meta["channels"] == 3 and float(np.mean(image.max(axis=2) - image.min(axis=2))) > _COLOR_SPREAD:
            return True
    return False


def resolve_color(color: bool | str, datalist: Sequence[dict]) -> bool:
    """The bundle's ``color`` key as a bool: ``True``/``False`` as given, ``"auto"`` by :func:`detect_color`.

    Raises:
        ValueError: `color` is another value.
    """
    if isinstance(color, bool):
        return color
    if color != "auto":
        raise ValueError(f"color must be auto, True or False, got {color!r}; fix the bundle key color.")
    try:
        found = detect_color(datalist)
    except ImageReadError as error:
        raise ImageReadError(f"color: auto could not look at the images: {error} Or set color: True/False.") from error
    logger.info("color: auto found %s images; set color: %s to skip the check", "colour" if found else "grey", found)
    return found


# --------------------------------------------------------------------------- helpers


def _names(class_names: Sequence[object]) -> list[str]:
    """Class names as strings, numbers written as the CSV's numeric labels are (``1.0`` -> ``"1"``)."""
    return [_canonical(str(name)) for name in class_names]


def _canonical(label: str) -> str:
    """A label as written, stripped; a number in its shortest form (``"01"``, ``"1.0"`` -> ``"1"``)."""
    label = label.strip()
    number = _number(label)
    if number is None:
        return label
    return str(int(number)) if number.is_integer() else repr(number)


def _number(label: str) -> float | None:
    try:
        number = float(label)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _sorted_classes(labels: Sequence[str]) -> list[str]:
    """The distinct labels: numerically when all are numbers, else alphabetically (case-insensitive)."""
    distinct = set(labels)
    if all(_number(label) is not None for label in distinct):
        return sorted(distinct, key=float)
    return sorted(distinct, key=lambda name: (name.casefold(), name))


def _label(index: int, n_classes: int) -> list[float] | int:
    """The datalist label: ``[0.0]``/``[1.0]`` for one sigmoid output (two classes), else the class index."""
    return [float(index)] if n_classes == 2 else index


def _encoded(items: list[dict], class_names: Sequence[str]) -> list[dict]:
    """Items of :func:`class_folder_datalist` (class-index labels) with labels for `class_names`' output."""
    return [{**item, "label": _label(int(item["label"]), len(class_names))} for item in items]


def _csv_labels(csv_path: Path) -> tuple[list[str], pd.DataFrame]:
    """The canonical labels of a label CSV and the CSV itself, its cells checked.

    Raises:
        ValueError: missing columns, no rows, empty cells or an image listed twice, naming the CSV and lines.
    """
    try:
        frame = read_csv_checked(csv_path, ["image", "label"], dtype={"image": str, "label": str, "patient_id": str})
    except ValueError as error:
        folders = csv_path.parent / "train"
        hint = f" {csv_path.parent} also has class folders: pass --layout folders to train on them instead." if folders.is_dir() else ""
        raise ValueError(f"{error}{hint}") from None
    if frame.empty:
        raise ValueError(f"{csv_path} has a header but no rows; add one row per image (image, label[, patient_id]).")
    columns = [column for column in ("image", "label", "patient_id") if column in frame]
    empty = frame[columns].isna().any(axis=1)
    if empty.any():
        lines = (frame.index[empty] + 2).tolist()[:10]
        raise ValueError(f"{csv_path} has empty cells in columns {columns} on line(s) {lines}; fill or drop those rows.")
    images = frame["image"].str.strip()
    repeated = images.duplicated(keep=False)
    if repeated.any():
        lines = (frame.index[repeated] + 2).tolist()[:10]
        raise ValueError(
            f"{csv_path} lists the same image on more than one row (lines {lines}); keep one row per image, or one "
            "image would be in training and validation at once."
        )
    frame = frame.assign(image=images, **({"patient_id": frame["patient_id"].str.strip()} if "patient_id" in frame else {}))
    return [_canonical(label) for label in frame["label"]], frame


def _check_override(names: list[str], found: list[str], where: str) -> None:
    """`class_names` must list every class of the data once, and no class without images."""
    problems = {
        "lists twice": sorted(name for name, count in Counter(names).items() if count > 1),
        "lacks": [name for name in found if name not in names],
        "names classes without images": [name for name in names if name not in found],
    }
    said = "; ".join(f"{text} {values}" for text, values in problems.items() if values)
    if said:
        raise ValueError(
            f"class_names {names} {said} (the classes of {where} are {found}); list each class of the data once, in "
            "the label order you want, or leave class_names null for the sorted order."
        )


def _image_folders(root: Path) -> list[Path]:
    """The visible sub-folders of `root` that hold an image file anywhere below them; others are logged."""
    folders, skipped = [], []
    for entry in sorted(root.iterdir()):
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        has_image = any(path.suffix.lower() in IMAGE_SUFFIXES for path in entry.rglob("*") if path.is_file())
        (folders if has_image else skipped).append(entry)
    if skipped:
        logger.info("Ignored %d folder(s) of %s without images: %s", len(skipped), root, [p.name for p in skipped])
    return folders


def _class_folders(root: Path) -> list[str]:
    folders = _image_folders(root)
    if not folders:
        raise ValueError(
            f"{root} has neither labels.csv nor a sub-folder with images; expected {_HOLDS} (or train/<class>/): "
            "check dataset_dir, or pass --csv NAME for a CSV of another name."
        )
    return [folder.name for folder in folders]


def _split_folder_classes(root: Path) -> list[str]:
    """Class folder names of ``train`` and ``val``, one per class after normalisation (train's spelling first)."""
    names: dict[str, str] = {}
    for split in ("train", "val"):
        if (root / split).is_dir():
            for entry in sorted((root / split).iterdir()):
                if entry.is_dir() and not entry.name.startswith("."):
                    names.setdefault(normalise_class_name(entry.name), entry.name)
    if not names:
        raise ValueError(f"{root / 'train'} holds no class folder; expected {root}/train/<class>/<image>.")
    return list(names.values())


def _check_trained_classes(train: Sequence[dict], class_names: Sequence[str], train_dir: Path) -> None:
    """Every class needs a training image: a class only in ``val`` would be an output never trained."""
    present = {int(item["label"]) for item in train}
    absent = [name for k, name in enumerate(class_names) if k not in present]
    if absent:
        raise ValueError(
            f"class(es) {absent} have no image in {train_dir}; add training images of them, or remove their "
            "folders from val/ and test/."
        )


def _check_fold_counts(
    items: Sequence[dict], class_names: Sequence[str], n_folds: int, group_key: str, where: str
) -> None:
    """Every class needs `n_folds` groups, one per fold's validation split; say which class lacks them and why."""
    groups: dict[int, set] = {k: set() for k in range(len(class_names))}
    for item in items:
        label = item["label"][0] if isinstance(item["label"], list) else item["label"]
        groups[int(label)].add(item[group_key])
    short = {class_names[k]: len(members) for k, members in groups.items() if len(members) < n_folds}
    if short:
        unit = "patients" if group_key == "patient_id" else "images"
        counts = ", ".join(f"{name!r}: {count}" for name, count in short.items())
        raise ValueError(
            f"{where}: class(es) with fewer {unit} than n_folds={n_folds} ({counts}); every fold must validate on "
            f"every class. Add {unit} of those classes, remove them from the data set, or lower n_folds "
            f"(at least 2)."
        )


def _check_unique(items: Sequence[dict], where: Path) -> None:
    """Two images with one ``image_id`` (``a.png`` and ``a.jpg``) would mix up their predictions."""
    seen: dict[str, str] = {}
    for item in items:
        other = seen.setdefault(item["image_id"], item["image"])
        if other != item["image"]:
            raise ValueError(
                f"{where} lists {other} and {item['image']}, which both get image_id {item['image_id']!r}; "
                "rename or drop one of them."
            )
