"""Datalists for "one folder per class" image data sets, and image lists for inference.

Many public classification data sets (Kaggle chest X-ray, brain MRI, skin lesion sets) ship as
``<dataset_dir>/<split>/<Class Name>/<image>`` with fixed train/val/test folders. Folder names
vary between releases and re-uploads ("Corona Virus Disease", "COVID-19", "covid_19"), so they
are matched to the bundle's class names after normalisation, plus aliases. The fixed splits can
put images of one patient in train and val; when a patient list is available,
:func:`class_folder_split` pools train and val and draws patient-grouped folds instead.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

from medbundle.data.columns import read_csv_checked
from medbundle.data.folds import split_fold
from medbundle.io.image_reader import IMAGE_SUFFIXES

__all__ = [
    "class_folder_datalist",
    "class_folder_split",
    "classes_with_folders",
    "image_files_datalist",
    "normalise_class_name",
    "read_patients",
]

logger = logging.getLogger(__name__)

_LIST_SUFFIXES = (".txt", ".csv")


def normalise_class_name(name: str) -> str:
    """Lower-case ``name``, treat ``_`` and ``-`` as spaces and collapse whitespace.

    ``"Corona_Virus-Disease "`` and ``"corona virus disease"`` both give ``"corona virus disease"``.

    Args:
        name: a class or folder name.
    """
    return " ".join(re.sub(r"[_\-]", " ", name).lower().split())


def class_folder_datalist(
    dataset_dir: str | Path,
    split: str,
    class_names: Sequence[str],
    aliases: Mapping[str, str] | None = None,
    suffixes: Sequence[str] = IMAGE_SUFFIXES,
) -> list[dict]:
    """Build a MONAI datalist from ``<dataset_dir>/<split>/<Class folder>/**/<image>``.

    Class folders map to ``class_names`` by :func:`normalise_class_name` (case, spaces, ``_`` and
    ``-`` do not matter) or through ``aliases``. Images are found recursively in each class folder;
    hidden files and folders (``.DS_Store``, ``._x.png``) are skipped silently, files with other
    suffixes are skipped with one warning. A class without a folder is allowed with a warning,
    since small test splits may lack a class.

    Each item is ``{"image": str path, "label": int, "image_id": "<split>/<Class folder>/<stem>"}``
    where ``label`` indexes ``class_names`` and ``<stem>`` keeps sub-folders of the class folder.

    Args:
        dataset_dir: the data set root, holding one folder per split.
        split: split folder name, e.g. ``"train"``.
        class_names: class names in label order.
        aliases: extra folder names per class, e.g. ``{"covid": "Corona Virus Disease"}``; keys are
            normalised like folder names.
        suffixes: image file suffixes, compared lower-case.

    Returns:
        The datalist, sorted by label, then path.

    Raises:
        FileNotFoundError: the split folder does not exist.
        ValueError: a folder matches no class, two folders match one class, a class folder holds no
            image, two images of a folder differ only in suffix (same ``image_id``), or
            ``class_names``/``aliases`` are inconsistent.
    """
    lookup = _class_lookup(class_names, aliases)
    dataset_dir = Path(dataset_dir)
    split_dir = dataset_dir / split
    if not split_dir.is_dir():
        if dataset_dir.is_dir():
            where = f"{dataset_dir} holds {sorted(p.name for p in dataset_dir.iterdir() if not p.name.startswith('.'))}"
        else:
            where = f"{dataset_dir} does not exist"
        raise FileNotFoundError(
            f"split folder {split_dir} not found; {where}. Expected the layout "
            f"<dataset_dir>/{split}/<Class Name>/<image>: check dataset_dir and the split name."
        )
    suffixes = tuple(suffix.lower() for suffix in suffixes)
    folders: dict[str, Path] = {}
    loose = []
    for entry in sorted(split_dir.iterdir()):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            loose.append(entry.name)
            continue
        class_name = lookup.get(normalise_class_name(entry.name))
        if class_name is None:
            raise ValueError(
                f"folder {entry} matches no class; expected one of {list(class_names)} (case, spaces, '_' and '-' "
                f"do not matter) or an alias {sorted(aliases or {})}. Rename or remove the folder, or add an alias."
            )
        if class_name in folders:
            raise ValueError(
                f"folders {folders[class_name]} and {entry} both match class {class_name!r}; merge them into one."
            )
        folders[class_name] = entry
    if loose:
        logger.warning(
            "Ignored %d file(s) directly in %s, outside any class folder, e.g. %s.", len(loose), split_dir, loose[:3]
        )
    absent = [name for name in class_names if name not in folders]
    if absent:
        logger.warning("%s has no folder for class(es) %s; they get no %s images.", split_dir, absent, split)

    datalist = []
    ignored = []
    for label, class_name in enumerate(class_names):
        if class_name not in folders:
            continue
        folder = folders[class_name]
        images = []
        for path in _visible_files(folder):
            (images if path.suffix.lower() in suffixes else ignored).append(path)
        if not images:
            raise ValueError(
                f"class folder {folder} holds no image with suffix {list(suffixes)}; add images or remove the folder."
            )
        for path in sorted(images, key=lambda p: p.relative_to(folder).as_posix()):
            image_id = f"{split}/{folder.name}/{path.relative_to(folder).with_suffix('').as_posix()}"
            datalist.append({"image": str(path), "label": label, "image_id": image_id})
    if ignored:
        logger.warning(
            "Ignored %d file(s) in %s whose suffix is not one of %s, e.g. %s.",
            len(ignored),
            split_dir,
            list(suffixes),
            [str(p.relative_to(split_dir)) for p in ignored[:3]],
        )
    _check_unique_ids(datalist, split_dir)
    return datalist


def class_folder_split(
    dataset_dir: str | Path,
    class_names: Sequence[str],
    fold: int = 0,
    n_folds: int = 5,
    seed: int = 42,
    patients_csv: str | Path | None = None,
    aliases: Mapping[str, str] | None = None,
    train_split: str = "train",
    val_split: str = "val",
) -> tuple[list[dict], list[dict]]:
    """Return the (train, val) datalists: the fixed split folders, or patient-grouped folds.

    Without ``patients_csv`` the ``train_split`` and ``val_split`` folders are returned as they
    are (and only ``fold=0`` exists). With it, the images of both folders are pooled, every item
    gets its ``patient_id`` (str), and :func:`medbundle.data.folds.split_fold` draws fold ``fold``:
    all images of a patient on one side, classes stratified, leakage checked.

    Args:
        dataset_dir: the data set root (see :func:`class_folder_datalist`).
        class_names: class names in label order.
        fold: validation fold, in ``[0, n_folds)``.
        n_folds: number of folds.
        seed: fold assignment seed; keep it fixed across the folds of one cross-validation.
        patients_csv: CSV with columns ``image`` (path relative to ``dataset_dir``, e.g.
            ``train/Normal/img1.png``) and ``patient_id``; a relative CSV path is taken relative to
            ``dataset_dir``. Rows of images outside the two folders (e.g. a test split) are ignored,
            rows naming missing files too, with a warning.
        aliases: extra folder names per class (see :func:`class_folder_datalist`).
        train_split: training folder name.
        val_split: validation folder name.

    Returns:
        ``(train, val)`` datalists.

    Raises:
        FileNotFoundError: a split folder or the CSV does not exist.
        ValueError: ``fold != 0`` without ``patients_csv``; an image has no CSV row; the CSV has
            empty cells or gives one image two patients; or a fold cannot be drawn (see ``split_fold``).
    """
    train = class_folder_datalist(dataset_dir, train_split, class_names, aliases)
    val = class_folder_datalist(dataset_dir, val_split, class_names, aliases)
    if patients_csv is None:
        if fold != 0:
            raise ValueError(
                f"fold={fold} needs patients_csv: without a patient list the fixed {train_split}/{val_split} folders "
                "are the only split. Pass patients_csv (columns image, patient_id) or use fold=0."
            )
        return train, val
    dataset_dir = Path(dataset_dir)
    csv_path = dataset_dir / patients_csv
    pooled = train + val
    patients = read_patients(csv_path)
    lacking = []
    for item in pooled:
        key = Path(item["image"]).relative_to(dataset_dir).as_posix()
        if key in patients:
            item["patient_id"] = patients.pop(key)
        else:
            lacking.append(key)
    if lacking:
        raise ValueError(
            f"{len(lacking)} of {len(pooled)} images under {dataset_dir}/{{{train_split},{val_split}}} have no row in "
            f"{csv_path}, e.g. {lacking[:10]}. Add a row (image, patient_id) for each, with image "
            "relative to dataset_dir, or set patients_csv to null to use the fixed split folders."
        )
    dangling = [key for key in patients if not (dataset_dir / key).is_file()]
    if dangling:
        logger.warning(
            "Ignored %d row(s) of %s naming files that do not exist, e.g. %s.", len(dangling), csv_path, dangling[:5]
        )
    if len(patients) > len(dangling):
        logger.info(
            "Ignored %d row(s) of %s for images outside the train/val folders.", len(patients) - len(dangling), csv_path
        )
    return split_fold(pooled, fold, n_splits=n_folds, seed=seed)


def image_files_datalist(
    source: str | Path | Sequence[str | Path], suffixes: Sequence[str] = IMAGE_SUFFIXES
) -> list[dict]:
    """Build an unlabelled datalist for inference from a folder, a file, or a list of files.

    ``source`` may be

    - a folder: its images, found recursively (hidden files skipped), sorted by path; ``image_id``
      is the path relative to the folder without suffix, e.g. ``"ward3/img1"``;
    - a single image file: ``image_id`` is its stem;
    - a ``.txt`` file (one path per line, blank lines skipped) or a ``.csv`` file with an ``image``
      column: relative paths are taken relative to the list file's folder; ``image_id`` is the stem;
    - a list of paths: ``image_id`` is the stem.

    Items are ``{"image": str path, "image_id": str}``.

    Args:
        source: see above.
        suffixes: image file suffixes, compared lower-case.

    Raises:
        FileNotFoundError: ``source`` or a listed file does not exist, or a folder holds no image.
        ValueError: a listed file or ``source`` has an unsupported suffix, two images get the same
            ``image_id``, or a list is empty.
    """
    suffixes = tuple(suffix.lower() for suffix in suffixes)
    if isinstance(source, (str, Path)):
        source = Path(source)
        if source.is_dir():
            paths = sorted(
                (p for p in _visible_files(source) if p.suffix.lower() in suffixes),
                key=lambda p: p.relative_to(source).as_posix(),
            )
            if not paths:
                raise FileNotFoundError(f"no image with suffix {list(suffixes)} found under {source}.")
            datalist = [{"image": str(p), "image_id": p.relative_to(source).with_suffix("").as_posix()} for p in paths]
            _check_unique_ids(datalist, source)
            return datalist
        if not source.is_file():
            raise FileNotFoundError(
                f"{source} does not exist; pass an image folder, an image file or a .txt/.csv list."
            )
        if source.suffix.lower() in _LIST_SUFFIXES:
            return _listed_files(source, suffixes)
        listed = [(source, "the given path")]
    else:
        listed = [(Path(p), f"item {index} of the given list") for index, p in enumerate(source)]
    return _files_datalist(listed, suffixes, source)


def classes_with_folders(
    dataset_dir: str | Path,
    splits: Sequence[str],
    class_names: Sequence[str],
    aliases: Mapping[str, str] | None = None,
) -> list[str]:
    """The `class_names` that have a folder in any of the `splits` of `dataset_dir`, in the order of `class_names`.

    A data set need not have every class a task knows (a chest X-ray set without tuberculosis): a model trained
    on it should have one output per class it has, not one that never sees an example.

    Args:
        dataset_dir: the data set root, holding one folder per split.
        splits: split folder names to look in; missing ones are skipped.
        class_names: the task's class names, in label order.
        aliases: extra folder names per class (see :func:`class_folder_datalist`).

    Raises:
        ValueError: none of the `splits` has a folder of any class.
    """
    lookup = _class_lookup(class_names, aliases)
    present = {
        lookup.get(normalise_class_name(entry.name))
        for split in splits
        if (Path(dataset_dir) / split).is_dir()
        for entry in (Path(dataset_dir) / split).iterdir()
        if entry.is_dir() and not entry.name.startswith(".")
    }
    found = [name for name in class_names if name in present]
    if not found:
        raise ValueError(
            f"{dataset_dir} has no class folder of {list(class_names)} in {list(splits)}; expected the layout "
            "<dataset_dir>/<split>/<Class Name>/<image>: check dataset_dir."
        )
    return found


def _class_lookup(class_names: Sequence[str], aliases: Mapping[str, str] | None) -> dict[str, str]:
    """Map normalised class names and aliases to class names, rejecting clashes and unknown targets."""
    lookup: dict[str, str] = {}
    for name in class_names:
        key = normalise_class_name(name)
        if key in lookup:
            raise ValueError(f"class names {lookup[key]!r} and {name!r} are the same after normalisation; rename one.")
        lookup[key] = name
    for alias, name in (aliases or {}).items():
        key = normalise_class_name(alias)
        if name not in class_names:
            raise ValueError(
                f"alias {alias!r} points to {name!r}, which is not one of the classes {list(class_names)}."
            )
        if lookup.get(key, name) != name:
            raise ValueError(f"alias {alias!r} -> {name!r} clashes with class {lookup[key]!r}; remove the alias.")
        lookup[key] = name
    return lookup


def _visible_files(folder: Path) -> list[Path]:
    """Files under ``folder``, recursively, leaving out hidden files and the contents of hidden folders."""
    return [
        path
        for path in folder.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    ]


def _check_unique_ids(datalist: Sequence[dict], where: Path | str) -> None:
    """Reject two items with one ``image_id``: predictions are written and aggregated by it."""
    seen: dict[str, str] = {}
    for item in datalist:
        other = seen.setdefault(item["image_id"], item["image"])
        if other != item["image"]:
            raise ValueError(
                f"{other} and {item['image']} (in {where}) both get image_id {item['image_id']!r}; "
                "rename or remove one of them."
            )


def read_patients(csv_path: Path) -> dict[str, str]:
    """Read a patients CSV as ``{image path relative to the data set root (posix): patient_id}``.

    Raises:
        ValueError: empty cells, or one image given two patients; the message names the CSV and its line.
    """
    frame = read_csv_checked(csv_path, ["image", "patient_id"], dtype={"image": str, "patient_id": str})
    empty = frame[["image", "patient_id"]].isna().any(axis=1)
    if empty.any():
        lines = (frame.index[empty] + 2).tolist()[:10]
        raise ValueError(f"{csv_path} has empty image or patient_id cells on line(s) {lines}; fill or drop those rows.")
    patients: dict[str, str] = {}
    for line, (image, patient_id) in enumerate(zip(frame["image"], frame["patient_id"]), start=2):
        key = PurePosixPath(image.strip().replace("\\", "/")).as_posix()
        if patients.setdefault(key, patient_id) != patient_id:
            raise ValueError(
                f"{csv_path} line {line} gives {image} patient {patient_id!r}, an earlier row {patients[key]!r}; "
                "keep one row per image."
            )
    return patients


def _listed_files(list_path: Path, suffixes: tuple[str, ...]) -> list[dict]:
    """Datalist of the files named in a .txt (one per line) or .csv (``image`` column) list."""
    if list_path.suffix.lower() == ".csv":
        frame = read_csv_checked(list_path, ["image"], dtype={"image": str})
        names = [(name, f"line {line}") for line, name in enumerate(frame["image"], start=2) if isinstance(name, str)]
    else:
        lines = list_path.read_text().splitlines()
        names = [(name.strip(), f"line {line}") for line, name in enumerate(lines, start=1) if name.strip()]
    listed = [(list_path.parent / name, f"{where} of {list_path}") for name, where in names]
    return _files_datalist(listed, suffixes, list_path)


def _files_datalist(listed: Sequence[tuple[Path, str]], suffixes: tuple[str, ...], source: object) -> list[dict]:
    """Datalist of explicitly named files, checked to exist and to be images, ``image_id`` = stem.

    Args:
        listed: ``(path, where it was named)`` pairs; the second part goes into error messages.
        suffixes: accepted image suffixes, lower-case.
        source: what the user passed, for the message of an empty list.
    """
    if not listed:
        raise ValueError(f"no image listed in {source}; list at least one image file.")
    datalist = []
    for path, where in listed:
        if not path.is_file():
            raise FileNotFoundError(f"image file {path} ({where}) does not exist; fix or remove the entry.")
        if path.suffix.lower() not in suffixes:
            raise ValueError(f"{path} ({where}) is not an image with suffix {list(suffixes)}; convert or remove it.")
        datalist.append({"image": str(path), "image_id": path.stem})
    _check_unique_ids(datalist, source)
    return datalist
