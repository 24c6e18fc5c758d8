"""The items an ensemble scores or predicts, read by the task bundle's own datalist code.

Labelled evaluation scores one of:

- the members' validation fold (rsna, isic; ``eval_split: val``): the split the task bundle's ``evaluate.yaml``
  draws with the members' stored ``n_folds`` and ``seed``. Members trained on *other* folds have seen these
  items, so the honest ensemble on a fold is several backbones trained on that same fold;
- a split folder (chest_xray; ``eval_split: test`` by default);
- a labelled held-out CSV in the task's layout (``csv``, with ``images``), which no member has seen.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from medbundle.data import image_files_datalist
from medbundle.ensemble.members import Member
from medbundle.ensemble.tasks import get_task, task_bundle_dir, task_config

__all__ = ["image_datalist", "labelled_datalist", "unlabelled_datalist"]

logger = logging.getLogger(__name__)

_SPLIT_KEYS = ("n_folds", "seed", "patients_csv")  # stored settings that decide a validation fold


def _check_same_split(members: Sequence[Member], fold: int) -> None:
    """Members must share the fold assignment; warn about members whose folder names another fold."""
    first = members[0]
    for member in members[1:]:
        for key in _SPLIT_KEYS:
            if member.config.get(key) != first.config.get(key):
                raise ValueError(
                    f"ensemble member {member.path} was trained with {key}={member.config.get(key)!r} but {first.path} "
                    f"with {first.config.get(key)!r}: their validation folds hold different items. Ensemble members "
                    "of one fold assignment, or score a held-out set with csv."
                )
    others = [m for m in members if m.fold is not None and m.fold != fold]
    if others:
        logger.warning(
            "members %s were trained on other folds than fold %d (by their folder names) and have seen its items: "
            "their metrics and the ensemble's are optimistic. Score backbones trained on fold %d, or a held-out csv.",
            [m.name for m in others], fold, fold,
        )


def labelled_datalist(
    task: str,
    members: Sequence[Member],
    dataset_dir: str | Path,
    task_bundle: str | Path | None = None,
    eval_split: str | None = None,
    fold: int = 0,
    csv: str | None = None,
    images: str | None = None,
) -> list[dict]:
    """The labelled items to score: a held-out `csv`, else `eval_split` as the task bundle's evaluation reads it.

    Args:
        task: the task name.
        members: the loaded members (their stored ``n_folds``/``seed`` draw the validation fold).
        dataset_dir: the task's data folder.
        task_bundle: the task bundle folder; default :func:`~medbundle.ensemble.task_bundle_dir`.
        eval_split: ``val`` (the members' validation fold `fold`) or, for a task with split folders
            (:attr:`EnsembleTask.split_folders`: chest_xray, classify), a folder such as ``test``; default the task's
            (:attr:`EnsembleTask.default_split`).
        fold: the validation fold with ``eval_split: val``.
        csv: a labelled CSV in the task's layout inside `dataset_dir` (rsna ``train.csv`` columns, isic
            ``train-metadata.csv`` columns); all its rows are scored.
        images: the images of `csv` inside `dataset_dir` (rsna: image folder, default ``train_images``; isic: HDF5
            file or folder, default ``train-image.hdf5``).

    Raises:
        ValueError: `csv` for a task without CSVs, a split the task has no labels for, or members of different
            fold assignments (naming the file).
    """
    spec = get_task(task)
    if csv is not None:
        return spec.held_out_datalist(dataset_dir, csv, images, members[0].config.get("class_names"))
    split = eval_split or spec.default_split
    # the members' stored settings (n_folds, seed, ...) as evaluate.yaml would read them from the checkpoint
    overrides = {"dataset_dir": str(dataset_dir), "fold": fold, "ckpt_path": str(members[0].path), "stored": dict(members[0].config)}
    if not spec.split_folders:
        if split != "val":
            raise ValueError(
                f"task {task} has labels only in its training CSV: use eval_split val (the validation fold), or pass a "
                "labelled held-out CSV with csv (and images)."
            )
    else:
        overrides["eval_split"] = split
    if split == "val":
        _check_same_split(members, fold)
    bundle = Path(task_bundle) if task_bundle is not None else task_bundle_dir(task)
    return task_config(bundle, ("train.yaml", "evaluate.yaml"), **overrides).get_parsed_content("validate#datalist")


def unlabelled_datalist(
    task: str,
    dataset_dir: str | Path,
    task_bundle: str | Path | None = None,
    csv: str | None = None,
    images: str | None = None,
) -> list[dict]:
    """The items the task bundle's ``inference.yaml`` predicts (its Kaggle test set by default).

    Args:
        task: the task name.
        dataset_dir: the task's data folder.
        task_bundle: the task bundle folder; default :func:`~medbundle.ensemble.task_bundle_dir`.
        csv: the test CSV inside `dataset_dir` (rsna, isic); None keeps the bundle's.
        images: the test images (rsna: folder, isic: HDF5 file or folder, chest_xray: a folder, file or list);
            None keeps the bundle's.
    """
    spec = get_task(task)
    given = {"csv": csv, "images": images}
    overrides = {spec.inference_keys[key]: value for key, value in given.items() if value is not None and key in spec.inference_keys}
    unused = [key for key, value in given.items() if value is not None and key not in spec.inference_keys]
    if unused:
        raise ValueError(f"task {task} reads no {unused} for inference; set only {sorted(spec.inference_keys)}.")
    bundle = Path(task_bundle) if task_bundle is not None else task_bundle_dir(task)
    return task_config(bundle, ("inference.yaml",), dataset_dir=str(dataset_dir), **overrides).get_parsed_content("datalist")


def image_datalist(task: str, images: str | Path | Sequence[str | Path] | None = None, image_dir: str | Path | None = None) -> list[dict]:
    """Unlabelled items for image files of the task's kind: `images` (a list, or one file), or all below `image_dir`.

    Raises:
        ValueError: neither or both of `images` and `image_dir` are given.
    """
    if (images is None) == (image_dir is None):
        raise ValueError("pass either images (image files) or image_dir (a folder of images), not both or neither.")
    source = image_dir if image_dir is not None else ([images] if isinstance(images, (str, Path)) else list(images))
    return image_files_datalist(source, suffixes=get_task(task).image_suffixes)
