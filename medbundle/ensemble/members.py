"""Find, load and check the checkpoints (members) of an ensemble, and group them by preprocessing.

A member is a best-model ``model.pt`` written by a task bundle: weights (``model``), the training settings
(``config``, which names the ``task``) and, for binary tasks, the validation thresholds and AUROC
(``thresholds``). Members of one ensemble must be of one task and predict the same classes; every
mismatch stops with an error naming the checkpoint and what to do.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from medbundle.ensemble.tasks import get_task

__all__ = ["Member", "find_checkpoints", "group_members", "load_members", "member_names"]

logger = logging.getLogger(__name__)

_FOLD = re.compile(r"^fold_?(\d+)$")


@dataclass(frozen=True)
class Member:
    """One trained checkpoint of the ensemble.

    Args:
        name: unique short name (the checkpoint's folder below the search root, e.g. ``effnet/fold_0``).
        path: the ``model.pt``.
        config: its stored training settings (``task``, ``backbone``, ``image_size``, ``num_classes``, ...).
        thresholds: its stored validation thresholds and AUROC (empty for multi-class tasks).
    """

    name: str
    path: Path
    config: Mapping[str, Any]
    thresholds: Mapping[str, float]

    @property
    def fold(self) -> int | None:
        """The fold in the checkpoint's folder name (``fold_2`` or ``fold2``), if it has one."""
        match = _FOLD.match(self.path.parent.name)
        return int(match.group(1)) if match else None

    def threshold(self, key: str) -> float:
        """The stored threshold `key` (e.g. ``roc_threshold``).

        Raises:
            KeyError: the checkpoint stores no such threshold; the message names the file.
        """
        if key not in self.thresholds:
            raise KeyError(
                f"checkpoint {self.path} stores no threshold {key!r} (it has {sorted(self.thresholds)}); retrain it "
                "with the current bundle (its ROCThresholdHandler saves the thresholds) or leave it out of members."
            )
        return float(self.thresholds[key])

    def preprocessing(self, keys: Iterable[str], image_size: Sequence[int] | None = None) -> tuple:
        """The stored settings `keys` that decide this member's preprocessing, hashable; `image_size` overrides."""
        values = {key: self.config.get(key) for key in keys}
        if image_size is not None:
            values["image_size"] = image_size
        return tuple((key, tuple(v) if isinstance(v, list) else v) for key, v in values.items())


def find_checkpoints(root: str | Path) -> list[Path]:
    """Every ``model.pt`` below `root`, sorted by path.

    This covers the layout ``<root>/<model>/fold_<k>/model.pt`` and the bundles' own
    ``<bundle_root>/models/fold<k>/model.pt`` (``last_checkpoint_*.pt`` files are not members).

    Raises:
        FileNotFoundError: `root` is not a folder, or holds no ``model.pt``.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"checkpoints folder {root} does not exist; set checkpoints to the folder holding <model>/fold_<k>/model.pt "
            "(or a bundle_root with models/fold<k>/model.pt), or list the files in members."
        )
    found = sorted(root.rglob("model.pt"))
    if not found:
        raise FileNotFoundError(
            f"no model.pt below {root}; train the task bundle first (its best checkpoint is models/fold<k>/model.pt) "
            "or list the checkpoint files in members."
        )
    return found


def member_names(paths: Sequence[str | Path], root: str | Path | None = None) -> list[str]:
    """Short unique names: each checkpoint's folder relative to `root`, or to the folder all of them share.

    A ``models`` folder of the bundles' layout is left out: below ``runs``, ``effnet/models/fold0/model.pt`` and
    ``convnext/fold_0/model.pt`` are ``effnet/fold0`` and ``convnext/fold_0``.
    """
    folders = [Path(p).resolve().parent for p in paths]
    base = Path(root).resolve() if root is not None else Path(os.path.commonpath(folders)) if len(folders) > 1 else None
    names = []
    for folder in folders:
        relative = folder.relative_to(base).parts if base is not None and folder.is_relative_to(base) else ()
        names.append("/".join(part for part in relative if part != "models") or folder.name)
    return names


def _load(path: Path, name: str, task: str) -> Member:
    if not path.is_file():
        raise FileNotFoundError(
            f"ensemble member {path} does not exist; fix its path in members, or train it first."
        )
    state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    config = state.get("config") if isinstance(state, Mapping) else None
    if config is None or "model" not in state:
        raise KeyError(
            f"ensemble member {path} has no stored 'config' and 'model' entries (it has "
            f"{sorted(state) if isinstance(state, Mapping) else type(state).__name__}); use the best checkpoint "
            "model.pt that a bundle's training writes, not a resume checkpoint or a bare state dict."
        )
    stored_task = config.get("task")
    if stored_task is None:
        raise ValueError(
            f"ensemble member {path} stores no task (its config has {sorted(config)}); it was trained before "
            f"checkpoints named their task: retrain it with the current {task} bundle, or leave it out of members."
        )
    if stored_task != task:
        raise ValueError(
            f"ensemble member {path} was trained for task {stored_task!r}, not {task!r}; remove it from members "
            f"(or from the checkpoints folder), or set task: {stored_task}."
        )
    return Member(name=name, path=path, config=dict(config), thresholds=dict(state.get("thresholds") or {}))


def _check_same_classes(members: Sequence[Member]) -> None:
    first = members[0]
    for member in members[1:]:
        for key in ("num_classes", "class_names"):
            if member.config.get(key) != first.config.get(key):
                raise ValueError(
                    f"ensemble member {member.path} has {key} {member.config.get(key)!r} but {first.path} has "
                    f"{first.config.get(key)!r}; members must predict the same classes in the same order: "
                    "leave one of them out of members."
                )


def load_members(
    task: str, checkpoints: str | Path | None = None, members: Sequence[str | Path] | None = None
) -> list[Member]:
    """Load and check the ensemble's checkpoints: `members` if given, else every ``model.pt`` below `checkpoints`.

    Args:
        task: the task every member must have been trained for (``rsna``, ``isic``, ``chest_xray``).
        checkpoints: folder searched by :func:`find_checkpoints`.
        members: explicit ``model.pt`` paths; they override the search.

    Raises:
        ValueError: neither argument is given, a member stores another task or none, or members predict
            different classes; the message names the file.
        FileNotFoundError: a member does not exist, or the search finds none.
        KeyError: a file is not a bundle's best checkpoint.
    """
    spec = get_task(task)
    if members:
        paths, root = [Path(p) for p in members], None
    elif checkpoints is not None:
        paths, root = find_checkpoints(checkpoints), checkpoints
    else:
        raise ValueError("no ensemble members: set checkpoints (a folder to search for model.pt) or members (a list of files).")
    names = member_names(paths, root)
    if len(set(names)) < len(names):
        raise ValueError(f"ensemble members {[str(p) for p in paths]} give repeated names {names}; list each file once.")
    loaded = [_load(path, name, spec.name) for path, name in zip(paths, names)]
    _check_same_classes(loaded)
    for member in loaded:
        logger.info(
            "ensemble member %s: %s, %s at %s (%s)",
            member.name, member.config.get("model", member.config.get("backbone")), member.config.get("head"),
            "x".join(map(str, member.config.get("image_size", []))), member.path,
        )
    return loaded


def group_members(
    members: Sequence[Member], keys: Iterable[str], image_size: Sequence[int] | None = None
) -> list[list[Member]]:
    """Members that share preprocessing (the same stored `keys`), in order of first appearance.

    Args:
        members: the loaded members.
        keys: the stored settings the task's preprocessing reads (image size, channels, CLAHE ...).
        image_size: an override of every member's stored size (then only the other keys split groups).
    """
    keys = tuple(keys)
    groups: dict[tuple, list[Member]] = {}
    for member in members:
        groups.setdefault(member.preprocessing(keys, image_size), []).append(member)
    return list(groups.values())
