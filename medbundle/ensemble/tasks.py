"""What an ensemble needs to know about each task bundle, as data: thresholds, ids, metrics, submission.

The ensemble never copies a task's preprocessing or network: it parses the task bundle's own configs
(:func:`task_config`) with each member's checkpoint as ``ckpt_path``. The table below holds only what
those configs cannot say: which stored threshold binarises, which stored settings change the
preprocessing, the unit the task is scored on and how its submission looks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monai.bundle import ConfigParser

from medbundle.data import isic_datalist, rsna_datalist
from medbundle.io import IMAGE_SUFFIXES

__all__ = ["TASKS", "EnsembleTask", "get_task", "task_bundle_dir", "task_config"]


def _rsna_csv(dataset_dir: str | Path, csv: str, images: str | None) -> list[dict]:
    return rsna_datalist(dataset_dir, csv=csv, image_dir=images or "train_images")


def _isic_csv(dataset_dir: str | Path, csv: str, images: str | None) -> list[dict]:
    return isic_datalist(dataset_dir, csv=csv, images=images or "train-image.hdf5")


@dataclass(frozen=True)
class EnsembleTask:
    """One task bundle as the ensemble sees it.

    Args:
        name: the task, as stored in every checkpoint's config (``task``).
        binary: one sigmoid output (a decision threshold per member) or a softmax over classes.
        threshold_key: the stored threshold (``model.pt`` entry ``thresholds``) that binarises a member.
        preprocessing_keys: stored settings the task bundle's preprocessing reads; members that agree on
            them share one dataset.
        id_keys: datalist keys written beside every prediction.
        group_key: the id the task is scored per (RSNA: ``breast_id``), or None to score images.
        table_metrics: the summary entries of the per-member table, read at the scored level.
        default_split: the labelled items evaluated by default: the members' validation fold (``val``) or a
            held-out split folder (``test``).
        csv_datalist: reads a labelled held-out CSV in the task's layout, ``(dataset_dir, csv, images)``;
            None when the task has no CSV (class folders).
        inference_keys: the task ``inference.yaml`` keys that the ensemble's ``csv`` and ``images`` set.
        submission: :class:`~medbundle.handlers.SubmissionWriter` arguments of ``submission.csv``, or None
            for a multi-class task, whose submission is the class-name predictions of its inference.
        binarize_submission: write the submission binarised at the ensemble threshold (RSNA) instead of
            as scores (ISIC).
        image_suffixes: image files the ad-hoc command predicts.
    """

    name: str
    binary: bool
    threshold_key: str | None
    preprocessing_keys: tuple[str, ...]
    id_keys: tuple[str, ...]
    group_key: str | None = None
    table_metrics: tuple[str, ...] = ()
    default_split: str = "val"
    csv_datalist: Callable[[str | Path, str, str | None], list[dict]] | None = None
    inference_keys: Mapping[str, str] = field(default_factory=dict)
    submission: Mapping[str, Any] | None = None
    binarize_submission: bool = False
    image_suffixes: tuple[str, ...] = IMAGE_SUFFIXES

    @property
    def scored_level(self) -> str:
        """``"breast"`` for ``breast_id`` groups, else ``"image"``: the level of the members table."""
        return self.group_key.removesuffix("_id") if self.group_key else "image"


TASKS: dict[str, EnsembleTask] = {
    "rsna": EnsembleTask(
        name="rsna",
        binary=True,
        threshold_key="pf1_threshold",
        preprocessing_keys=("image_size", "in_chans"),
        id_keys=("image_id", "patient_id", "laterality", "breast_id"),
        group_key="breast_id",
        table_metrics=("pf1_at_threshold", "pf1_prob", "auroc"),
        csv_datalist=_rsna_csv,
        inference_keys={"csv": "csv", "images": "image_dir"},
        submission={"group_key": "breast_id", "id_column": "prediction_id", "target_column": "cancer"},
        binarize_submission=True,
        image_suffixes=(".dcm", ".dicom"),
    ),
    "isic": EnsembleTask(
        name="isic",
        binary=True,
        threshold_key="roc_threshold",
        preprocessing_keys=("image_size", "in_chans"),
        id_keys=("image_id", "patient_id"),
        table_metrics=("pauc", "auroc"),
        csv_datalist=_isic_csv,
        inference_keys={"csv": "csv", "images": "images"},
        submission={"group_key": "image_id", "id_column": "isic_id", "target_column": "target"},
        image_suffixes=(".jpg", ".jpeg", ".png"),
    ),
    "chest_xray": EnsembleTask(
        name="chest_xray",
        binary=False,
        threshold_key=None,
        preprocessing_keys=("image_size", "in_chans", "clahe"),
        id_keys=("image_id",),
        table_metrics=("accuracy", "macro_f1", "macro_auroc"),
        default_split="test",
        inference_keys={"images": "input"},
    ),
}


def get_task(task: str) -> EnsembleTask:
    """The :class:`EnsembleTask` named `task`.

    Raises:
        ValueError: unknown task; the message lists the known ones.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; set task to one of {sorted(TASKS)}.")
    return TASKS[task]


def task_bundle_dir(task: str, bundles_dir: str | Path | None = None) -> Path:
    """The folder of `task`'s bundle: ``<bundles_dir>/<task>``.

    Args:
        task: the task name.
        bundles_dir: the folder holding the bundles; default the ``bundles`` folder of the checkout this
            package lives in, else ``bundles`` under the current directory.

    Raises:
        FileNotFoundError: the bundle has no ``configs`` folder there; the message says which key moves it.
    """
    get_task(task)
    candidates = [Path(bundles_dir)] if bundles_dir is not None else [Path(__file__).resolve().parents[2] / "bundles", Path("bundles")]
    for root in candidates:
        if (root / task / "configs").is_dir():
            return root / task
    raise FileNotFoundError(
        f"no {task} bundle (a folder {task}/configs) in {[str(c) for c in candidates]}; set task_bundle (bundle "
        "config) or run from the repository root."
    )


def task_config(task_bundle: str | Path, files: Sequence[str], **overrides: Any) -> ConfigParser:
    """Parse configs of a task bundle (``<task_bundle>/configs/<file>``, later files overlaid) with overrides.

    ``config_dir``, where ``train.yaml`` finds the preprocessing that ``inference.yaml`` declares, is set to the
    bundle's configs folder, so the parse does not depend on the working directory.

    Args:
        task_bundle: the task bundle folder.
        files: config file names, e.g. ``("train.yaml", "evaluate.yaml")``.
        overrides: ids to set, e.g. ``ckpt_path``; ``#``-separated ids set nested entries.
    """
    parser = ConfigParser()
    configs = Path(task_bundle) / "configs"
    parser.read_config([str(configs / name) for name in files])
    if "config_dir" in parser:
        parser["config_dir"] = str(configs)
    parser.update(overrides)
    return parser
