"""Class names and datalists for the Kaggle "Lungs Disease Dataset" of chest X-rays (5 classes).

The data set ships as ``<dataset_dir>/{train,val,test}/<Class Name>/<image>``; re-uploads rename
the folders ("COVID-19", "TB"), which :data:`CHEST_XRAY_ALIASES` absorbs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from medbundle.data.class_folders import class_folder_datalist, class_folder_split, classes_with_folders

__all__ = [
    "CHEST_XRAY_ALIASES",
    "CHEST_XRAY_CLASSES",
    "chest_xray_classes",
    "chest_xray_datalist",
    "chest_xray_split",
]

# the position is the label index: keep this order stable, checkpoints depend on it
CHEST_XRAY_CLASSES = ("Viral Pneumonia", "Bacterial Pneumonia", "Corona Virus Disease", "Tuberculosis", "Normal")
# only names that mean one class; "pneumonia" or "viral" alone could be two and stay unmatched
CHEST_XRAY_ALIASES = {
    "pneumonia viral": "Viral Pneumonia",
    "bacterial": "Bacterial Pneumonia",
    "pneumonia bacterial": "Bacterial Pneumonia",
    "covid": "Corona Virus Disease",
    "covid 19": "Corona Virus Disease",
    "covid19": "Corona Virus Disease",
    "corona": "Corona Virus Disease",
    "corona virus": "Corona Virus Disease",
    "coronavirus": "Corona Virus Disease",
    "coronavirus disease": "Corona Virus Disease",
    "sars cov 2": "Corona Virus Disease",
    "tb": "Tuberculosis",
    "healthy": "Normal",
}


def _aliases(class_names: Sequence[str]) -> dict[str, str]:
    """The :data:`CHEST_XRAY_ALIASES` of the classes in `class_names`."""
    return {alias: name for alias, name in CHEST_XRAY_ALIASES.items() if name in class_names}


def chest_xray_classes(dataset_dir: str | Path, splits: Sequence[str] = ("train", "val")) -> list[str]:
    """The :data:`CHEST_XRAY_CLASSES` that the data set has a folder of (in ``train`` or ``val``), in that order.

    The bundles' default ``class_names``: a set without tuberculosis trains a 4-class model, labelled 0..3 in this
    order, instead of a 5-output one whose fifth class never appears (undefined AUROC, NaN in the per-class table).
    Without the split folders (building the network alone, e.g. to check the bundle's metadata) every class.

    Args:
        dataset_dir: the data set root.
        splits: the split folders to look in.
    """
    if not any((Path(dataset_dir) / split).is_dir() for split in splits):
        return list(CHEST_XRAY_CLASSES)  # no data to read (a network-only parse): the datalists will say what is missing
    return classes_with_folders(dataset_dir, splits, CHEST_XRAY_CLASSES, CHEST_XRAY_ALIASES)


def chest_xray_datalist(
    dataset_dir: str | Path, split: str = "train", class_names: Sequence[str] = CHEST_XRAY_CLASSES
) -> list[dict]:
    """Datalist of one split folder, labelled by the index in `class_names`.

    See :func:`medbundle.data.class_folders.class_folder_datalist` for the item schema and errors.

    Args:
        dataset_dir: the data set root, holding ``train``, ``val`` and ``test``.
        split: split folder name.
        class_names: the model's classes in label order, a subset of :data:`CHEST_XRAY_CLASSES` (a folder of another
            class is an error naming it).
    """
    return class_folder_datalist(dataset_dir, split, class_names, _aliases(class_names))


def chest_xray_split(
    dataset_dir: str | Path,
    fold: int = 0,
    n_folds: int = 5,
    seed: int = 42,
    patients_csv: str | Path | None = None,
    class_names: Sequence[str] = CHEST_XRAY_CLASSES,
) -> tuple[list[dict], list[dict]]:
    """(train, val) datalists: the fixed folders, or patient-grouped folds with ``patients_csv``.

    See :func:`medbundle.data.class_folders.class_folder_split`.

    Args:
        dataset_dir: the data set root, holding ``train`` and ``val``.
        fold: validation fold, in ``[0, n_folds)``; only 0 without ``patients_csv``.
        n_folds: number of folds.
        seed: fold assignment seed.
        patients_csv: CSV with columns ``image`` (relative to ``dataset_dir``) and ``patient_id``.
        class_names: the model's classes in label order (see :func:`chest_xray_datalist`).
    """
    return class_folder_split(
        dataset_dir,
        class_names,
        fold=fold,
        n_folds=n_folds,
        seed=seed,
        patients_csv=patients_csv,
        aliases=_aliases(class_names),
    )
