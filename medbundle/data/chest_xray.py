"""Class names and datalists for the Kaggle "Lungs Disease Dataset" of chest X-rays (5 classes).

The data set ships as ``<dataset_dir>/{train,val,test}/<Class Name>/<image>``; re-uploads rename
the folders ("COVID-19", "TB"), which :data:`CHEST_XRAY_ALIASES` absorbs.
"""

from __future__ import annotations

from pathlib import Path

from medbundle.data.class_folders import class_folder_datalist, class_folder_split

__all__ = ["CHEST_XRAY_ALIASES", "CHEST_XRAY_CLASSES", "chest_xray_datalist", "chest_xray_split"]

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


def chest_xray_datalist(dataset_dir: str | Path, split: str = "train") -> list[dict]:
    """Datalist of one split folder, labelled by :data:`CHEST_XRAY_CLASSES` index.

    See :func:`medbundle.data.class_folders.class_folder_datalist` for the item schema and errors.

    Args:
        dataset_dir: the data set root, holding ``train``, ``val`` and ``test``.
        split: split folder name.
    """
    return class_folder_datalist(dataset_dir, split, CHEST_XRAY_CLASSES, CHEST_XRAY_ALIASES)


def chest_xray_split(
    dataset_dir: str | Path,
    fold: int = 0,
    n_folds: int = 5,
    seed: int = 42,
    patients_csv: str | Path | None = None,
) -> tuple[list[dict], list[dict]]:
    """(train, val) datalists: the fixed folders, or patient-grouped folds with ``patients_csv``.

    See :func:`medbundle.data.class_folders.class_folder_split`.

    Args:
        dataset_dir: the data set root, holding ``train`` and ``val``.
        fold: validation fold, in ``[0, n_folds)``; only 0 without ``patients_csv``.
        n_folds: number of folds.
        seed: fold assignment seed.
        patients_csv: CSV with columns ``image`` (relative to ``dataset_dir``) and ``patient_id``.
    """
    return class_folder_split(
        dataset_dir,
        CHEST_XRAY_CLASSES,
        fold=fold,
        n_folds=n_folds,
        seed=seed,
        patients_csv=patients_csv,
        aliases=CHEST_XRAY_ALIASES,
    )
