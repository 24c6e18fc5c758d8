"""Run commands with their output in a log file, several at once on a fixed set of slots (GPUs or CPU places).

A slot is what one process may use: a list of GPU ids, exported as ``CUDA_VISIBLE_DEVICES``, or None on the
CPU. Each slot has its own worker thread, which takes the next task when its process ends; a task that fails
does not stop the others. Ctrl-C terminates the running processes and lets each task record its end.
"""

from __future__ import annotations

import os
import queue
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

__all__ = ["device_slots", "last_line", "run_logged", "run_parallel"]

T = TypeVar("T")
R = TypeVar("R")

_live: set[subprocess.Popen] = set()
_live_lock = threading.Lock()


def device_slots(gpus: Sequence[int] | None, nproc: int = 1, parallel: int = 1) -> list[list[int] | None]:
    """The slots of a sweep: groups of `nproc` GPUs from `gpus`, or `parallel` CPU slots without GPUs.

    Raises:
        ValueError: `gpus` cannot be split into groups of `nproc`, or a count is below 1.
    """
    if nproc < 1 or parallel < 1:
        raise ValueError(f"--nproc ({nproc}) and --parallel ({parallel}) must be at least 1.")
    if not gpus:
        return [None] * parallel
    if len(gpus) % nproc:
        raise ValueError(f"--gpus lists {len(gpus)} GPUs {list(gpus)}, not a multiple of --nproc {nproc}: list whole groups.")
    return [list(gpus[i : i + nproc]) for i in range(0, len(gpus), nproc)]


def run_logged(
    command: Sequence[str],
    log_file: Path,
    env: Mapping[str, str] | None = None,
    header: str = "",
    on_start: Callable[[subprocess.Popen], None] | None = None,
) -> int:
    """Run `command`, appending its stdout and stderr to `log_file` after `header`; return its exit status.

    Args:
        command: the program and its arguments.
        log_file: appended to, so the attempts of a resumed run stay in one file.
        env: variables set on top of this process's environment.
        header: a line written before the output.
        on_start: called with the process once it runs (e.g. to record its pid).
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "a") as log:
        log.write(header)
        log.flush()
        process = subprocess.Popen(
            list(command), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )  # fmt: skip
        with _live_lock:
            _live.add(process)
        try:
            if on_start is not None:
                on_start(process)
            return process.wait()
        finally:
            with _live_lock:
                _live.discard(process)


def _terminate_all(grace_seconds: float = 10.0) -> None:
    with _live_lock:
        processes = list(_live)
    for process in processes:
        process.terminate()
    deadline = time.monotonic() + grace_seconds
    for process in processes:
        try:
            process.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()


def run_parallel(tasks: Sequence[T], slots: Sequence[list[int] | None], work: Callable[[T, list[int] | None], R]) -> list[R]:
    """``work(task, slot)`` for every task, one at a time per slot; results in the order of `tasks`.

    Raises:
        KeyboardInterrupt: after terminating the running processes and waiting for the tasks to record it.
    """
    pending: queue.Queue[int] = queue.Queue()
    for index in range(len(tasks)):
        pending.put(index)
    results: dict[int, R] = {}
    errors: list[Exception] = []

    def worker(slot: list[int] | None) -> None:
        while True:
            try:
                index = pending.get_nowait()
            except queue.Empty:
                return
            try:
                results[index] = work(tasks[index], slot)
            except Exception as error:  # noqa: BLE001 - re-raised by the main thread once the other tasks end
                errors.append(error)

    threads = [threading.Thread(target=worker, args=(slot,), daemon=True) for slot in slots[: max(len(tasks), 1)]]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.5)
    except KeyboardInterrupt:
        while not pending.empty():
            pending.get_nowait()
        _terminate_all()
        for thread in threads:
            thread.join()
        raise
    if errors:
        raise errors[0]
    return [results[i] for i in range(len(tasks))]


def last_line(log_file: Path, max_bytes: int = 8192) -> str:
    """The last non-empty line of `log_file` (what a failed run said last), or "" when there is none."""
    try:
        with open(log_file, "rb") as stream:
            stream.seek(0, os.SEEK_END)
            stream.seek(max(stream.tell() - max_bytes, 0))
            lines = stream.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    return next((line.strip() for line in reversed(lines) if line.strip()), "")
