"""Checks a training run makes before its first epoch, so it cannot fail hours later on its first save."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

__all__ = ["check_output_dirs"]


def check_output_dirs(dirs: Sequence[str | os.PathLike | None], min_free_mb: float = 200.0) -> None:
    """Create each output folder, prove it is writable with a probe file, and check the free space.

    Checkpoints, TensorBoard events and the image cache are all written after training started; a
    read-only folder or a full disk would otherwise surface at the end of the first epoch (or of the
    cache fill) as an OSError deep inside Ignite.

    Args:
        dirs: the run's output folders (checkpoints, outputs, cache); None entries (no cache) are skipped.
        min_free_mb: free space each folder's disk must have.

    Raises:
        OSError: a folder cannot be created or written, or its disk has less than `min_free_mb` free; the
            message names the folder and the setting that moves it.
    """
    for folder in (Path(d) for d in dirs if d is not None):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-probe-"):
                pass
        except OSError as error:
            raise OSError(
                f"cannot write to {folder} ({error.strerror or error}); choose a writable folder with "
                "--bundle_root (checkpoints and outputs) or --cache_dir (the image cache)."
            ) from error
        free_mb = shutil.disk_usage(folder).free / 2**20
        if free_mb < min_free_mb:
            raise OSError(
                f"only {free_mb:.0f} MB free on the disk of {folder}, at least {min_free_mb:.0f} MB are needed for "
                "checkpoints, logs and the image cache; free some space or move them with --bundle_root / --cache_dir."
            )
