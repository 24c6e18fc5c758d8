"""A run's ``status.json`` and what a sweep does with the run next: skip, resume, start, or leave it running.

``status.json`` is rewritten atomically at the start and the end of each attempt, so a sweep killed at any
moment leaves either the old or the new status, never a truncated file. A run killed while training keeps
``state: running``; the next sweep resumes it from its last checkpoint.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any

from medbundle.io.atomic_file import atomic_write
from medbundle.sweep.layout import RunDir

__all__ = ["Action", "RunStatus", "is_finished", "next_action", "now", "read_status", "write_status"]


class Action(str, Enum):
    """What a sweep does with a run."""

    SKIP = "skip"  # finished: status done and model.pt present
    RESUME = "resume"  # interrupted or failed after a last checkpoint: continue with --resume
    START = "start"  # never started, or stopped before its first checkpoint
    BUSY = "busy"  # a live process on this host is training it now


@dataclass
class RunStatus:
    """The content of ``status.json``.

    Args:
        state: ``running``, ``done`` or ``failed``.
        model: the run's model.
        fold: the run's fold.
        attempt: 1 for the first start, +1 for each later start or resume.
        resumed: whether this attempt continued from a last checkpoint.
        returncode: the training process's exit status (negative: killed by that signal); None while running.
        start: ISO time the attempt started.
        end: ISO time it ended; None while running.
        wall_seconds: the attempt's duration.
        host: the machine running it.
        pid: the training process.
        devices: the ``CUDA_VISIBLE_DEVICES`` it was given, if any.
    """

    state: str
    model: str
    fold: int
    attempt: int = 1
    resumed: bool = False
    returncode: int | None = None
    start: str | None = None
    end: str | None = None
    wall_seconds: float | None = None
    host: str = field(default_factory=socket.gethostname)
    pid: int | None = None
    devices: str | None = None


def now() -> str:
    """The current time as an ISO string with time zone."""
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


def read_status(run: RunDir) -> RunStatus | None:
    """The run's status, or None when it has none (never started) or it is unreadable."""
    try:
        values: dict[str, Any] = json.loads(run.status_file.read_text())
        return RunStatus(**values)
    except (OSError, ValueError, TypeError):
        return None


def write_status(run: RunDir, status: RunStatus) -> None:
    """Replace the run's ``status.json`` atomically."""
    run.folder.mkdir(parents=True, exist_ok=True)
    with atomic_write(run.status_file, text=True) as stream:
        stream.write(json.dumps(asdict(status), indent=2) + "\n")


def _alive_here(status: RunStatus) -> bool:
    """Whether the status's process is alive on this host (a run on another host cannot be checked)."""
    if status.pid is None or status.host != socket.gethostname():
        return False
    try:
        os.kill(status.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed process whose parent died too stays a zombie where nothing reaps it (e.g. a container)
        return Path(f"/proc/{status.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def is_finished(run: RunDir, status: RunStatus | None = None) -> bool:
    """Whether `run` finished training: its status (read unless given) is ``done`` and ``model.pt`` exists."""
    status = read_status(run) if status is None else status
    return status is not None and status.state == "done" and run.best_checkpoint.is_file()


def next_action(run: RunDir) -> Action:
    """Decide what a sweep does with `run`.

    Finished runs (status ``done`` and ``model.pt`` present) are skipped; a run whose process still lives on
    this host is left alone; any other run with a last checkpoint (killed, failed, or trained outside the
    sweep) resumes from it; the rest start from scratch.
    """
    status = read_status(run)
    if is_finished(run, status):
        return Action.SKIP
    if status is not None and status.state == "running" and _alive_here(status):
        return Action.BUSY
    return Action.RESUME if run.has_last_checkpoint() else Action.START
