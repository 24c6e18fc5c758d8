"""Find the newest "last" checkpoint and resume a trainer from it."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from ignite.engine import Engine
from monai.handlers import CheckpointLoader, CheckpointSaver

__all__ = ["latest_checkpoint", "resume_from_latest"]

_EPOCH = re.compile(r"checkpoint_epoch=(\d+)\.pt$")
logger = logging.getLogger(__name__)


def latest_checkpoint(ckpt_dir: str | Path) -> Path | None:
    """Newest interval checkpoint (``*checkpoint_epoch=N.pt``, MONAI CheckpointSaver's naming) in `ckpt_dir`."""
    found = [(int(m.group(1)), p) for p in Path(ckpt_dir).glob("*checkpoint_epoch=*.pt") if (m := _EPOCH.search(p.name))]
    return max(found)[1] if found else None


def resume_from_latest(
    trainer: Engine,
    ckpt_dir: str | Path,
    load_dict: dict[str, Any],
    last_saver: CheckpointSaver | None = None,
    map_location: Any = "cpu",
) -> Path | None:
    """Attach a CheckpointLoader restoring `load_dict` from the newest checkpoint, if there is one.

    A run killed before its first epoch finished has nothing to resume: it then starts afresh with a
    warning instead of failing, so `--resume` is always safe to pass.

    Args:
        trainer: the training engine; the loader runs at its STARTED event.
        ckpt_dir: directory holding the interval checkpoints.
        load_dict: objects to restore, by the names they were saved under.
        last_saver: the interval CheckpointSaver writing these files. Its ranking is seeded with the
            resumed file, so the next save replaces it (n_saved) instead of leaving it behind. MONAI
            keeps that Ignite `Checkpoint` in a private attribute; the end-to-end resume test pins it.
        map_location: passed to ``torch.load`` (loading always uses ``weights_only=True``).

    Returns:
        the checkpoint path that will be loaded, or None.
    """
    path = latest_checkpoint(ckpt_dir)
    if path is None:
        logger.warning("resume requested but no checkpoint_epoch=*.pt in %s: starting from scratch", ckpt_dir)
        return None
    logger.info("resuming from %s", path)
    CheckpointLoader(load_path=str(path), load_dict=load_dict, map_location=map_location).attach(trainer)
    if last_saver is not None and last_saver._interval_checkpoint is not None:
        epoch = int(_EPOCH.search(path.name).group(1))
        last_saver._interval_checkpoint.load_state_dict({"_saved": [(epoch, path.name)]})
    return path
