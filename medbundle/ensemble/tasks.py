"""What an ensemble needs to know about each task bundle, as data: thresholds, ids, metrics, submission.

The ensemble never copies a task's preprocessing or network: it parses the task bundle's own configs
(:func:`task_config`) with each member's checkpoint as ``ckpt_path``. A task's spec
(:mod:`medbundle.tasks`, its ``ensemble`` facts) holds only what those configs cannot say: which stored
threshold binarises, which stored settings change the preprocessing, the unit the task is scored on and
how its submission looks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monai.bundle import ConfigParser

from medbundle.io import IMAGE_SUFFIXES
from medbundle.tasks import resolve, tasks

__all__ = ["EnsembleTask", "get_task", "task_bundle_dir", "task_config"]


@dataclass(frozen=True)
class EnsembleTask:
    """One task bundle as the ensemble sees it.

    Args:
        name: the task, as stored in every checkpoint's config (``task``).
        binary: one sigmoid output (a decision threshold per member) or a softmax over classes; None when the data
            set decides (classify): an ensemble is binary when its members store one output (:meth:`is_binary`).
        threshold_key: the stored threshold (``model.pt`` entry ``thresholds``) that binarises a member.
        preprocessing_keys: stored settings the task bundle's preprocessing reads; members that agree on
            them share one dataset.
        id_keys: datalist keys written beside every prediction.
        group_key: the id the task is scored per (RSNA: ``breast_id``), or None to score images.
        table_metrics: the summary entries of the per-member table, read at the scored level; those the summary
            lacks are left out (a task of either kind lists both kinds' entries).
        default_split: the labelled items evaluated by default: the members' validation fold (``val``) or a
            held-out split folder (``test``).
        split_folders: the task bundle's ``evaluate.yaml`` scores split folders (its ``eval_split``: ``val`` or a
            folder such as ``test``); False when the only labels are in the training CSV.
        csv_datalist: reads a labelled held-out CSV in the task's layout,
            ``(dataset_dir, csv=..., <inference_keys["images"]>=...)``, and ``class_names=...`` when the members
            store class names; None when the task has no CSV (class folders).
        inference_keys: the task ``inference.yaml`` keys that the ensemble's ``csv`` and ``images`` set.
        submission: :class:`~medbundle.handlers.SubmissionWriter` arguments of ``submission.csv``, or None
            for a multi-class task, whose submission is the class-name predictions of its inference.
        binarize_submission: write the submission binarised at the ensemble threshold (RSNA) instead of
            as scores (ISIC).
        image_suffixes: image files the ad-hoc command predicts.
    """

    name: str
    binary: bool | None
    threshold_key: str | None
    preprocessing_keys: tuple[str, ...]
    id_keys: tuple[str, ...]
    group_key: str | None = None
    table_metrics: tuple[str, ...] = ()
    default_split: str = "val"
    split_folders: bool = False
    csv_datalist: Callable[..., list[dict]] | None = None
    inference_keys: Mapping[str, str] = field(default_factory=dict)
    submission: Mapping[str, Any] | None = None
    binarize_submission: bool = False
    image_suffixes: tuple[str, ...] = IMAGE_SUFFIXES

    def held_out_datalist(
        self, dataset_dir: str | Path, csv: str, images: str | None, class_names: Sequence[str] | None = None
    ) -> list[dict]:
        """The items of a labelled held-out `csv` (images in `images`, else the layout's default folder or file).

        `class_names`, the members' stored label order where they store one, labels the rows (a held-out set may
        lack a class, whose absence must not shift the others' labels).
        """
        if self.csv_datalist is None:
            raise ValueError(f"task {self.name} has no CSV layout; score a split folder with eval_split instead of csv.")
        key = self.inference_keys.get("images", "images")
        options = {**({key: images} if images else {}), **({"class_names": class_names} if class_names else {})}
        return self.csv_datalist(dataset_dir, csv=csv, **options)

    def is_binary(self, members: Sequence[Any]) -> bool:
        """Whether an ensemble of `members` (loaded :class:`~medbundle.ensemble.Member` s) is binary: the task's
        ``binary``, or when that is None, whether the members store one output (``num_classes`` 1)."""
        if self.binary is not None:
            return self.binary
        return int(members[0].config.get("num_classes", 0)) == 1

    @property
    def scored_level(self) -> str:
        """``"breast"`` for ``breast_id`` groups, else ``"image"``: the level of the members table."""
        return self.group_key.removesuffix("_id") if self.group_key else "image"


def get_task(task: str) -> EnsembleTask:
    """The :class:`EnsembleTask` named `task`.

    Raises:
        ValueError: unknown task; the message lists the known ones.
    """
    known = tasks()
    if task not in known:
        raise ValueError(f"unknown task {task!r}; set task to one of {sorted(known)}.")
    facts = dict(known[task].ensemble)
    if "csv_datalist" in facts:
        facts["csv_datalist"] = resolve(facts["csv_datalist"])
    return EnsembleTask(name=task, **facts)


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
