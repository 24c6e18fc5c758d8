"""MONAI's CheckpointSaver, but no moment exists at which a checkpoint is missing or half-written."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ignite.handlers import DiskSaver
from monai.handlers import CheckpointSaver

__all__ = ["AtomicCheckpointSaver"]


class _SaveThenRemoveDiskSaver(DiskSaver):
    """Ignite's atomic `DiskSaver` that removes superseded files only after the new one is in place.

    Ignite's `Checkpoint` asks its saver to remove the oldest file *before* writing the new one, so with
    ``n_saved=1`` a kill during the write leaves no checkpoint at all; this saver defers the removal.
    `filename` fixes the file name (MONAI's ``model.pt``), which is then replaced, never removed.
    """

    def __init__(self, dirname: str, filename: str | None = None) -> None:
        super().__init__(dirname=dirname, require_empty=False, atomic=True)
        self.filename = filename
        self._superseded: list[str] = []

    def __call__(self, checkpoint: Mapping, filename: str, metadata: Mapping | None = None) -> None:
        name = self.filename or filename
        super().__call__(checkpoint=checkpoint, filename=name, metadata=metadata)
        for old in self._superseded:
            if old != name and (self.dirname / old).exists():
                super().remove(old)
        self._superseded = []

    def remove(self, filename: str) -> None:
        if self.filename is None:
            self._superseded.append(filename)


class AtomicCheckpointSaver(CheckpointSaver):
    """A `CheckpointSaver` whose checkpoints are never half-written, nor missing while a new one is written.

    MONAI builds Ignite's `DiskSaver` with ``atomic=False``, and Ignite deletes the checkpoint a new one
    supersedes before writing it: a run killed while ``torch.save`` writes ``model.pt`` or
    ``last_checkpoint_epoch=N.pt`` leaves a truncated file, or none, and the next ``--resume`` or evaluation
    fails. Here every file goes to a temporary file in the same folder that ``os.replace`` moves into place
    (Ignite adds group/others read permission), and the superseded file is deleted afterwards. A kill
    mid-write leaves the previous checkpoint intact and at worst a ``tmp*`` file that no ``*.pt`` glob
    matches. Arguments are MONAI's.

    MONAI keeps the three Ignite `Checkpoint` objects in private attributes; the tests pin that.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for checkpoint in (self._final_checkpoint, self._key_metric_checkpoint, self._interval_checkpoint):
            if checkpoint is not None:
                fixed = getattr(checkpoint.save_handler, "filename", None)
                checkpoint.save_handler = _SaveThenRemoveDiskSaver(self.save_dir, filename=fixed)
