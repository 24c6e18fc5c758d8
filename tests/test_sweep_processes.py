"""Logged subprocesses run side by side on slots (GPU groups or CPU places)."""

from __future__ import annotations

import sys
import threading
import time

import pytest

from medbundle.sweep.processes import device_slots, last_line, run_logged, run_parallel


def test_slots_are_gpu_groups_or_cpu_places():
    assert device_slots(None, parallel=3) == [None, None, None]
    assert device_slots([0, 1], nproc=1) == [[0], [1]]
    assert device_slots([0, 1, 2, 3], nproc=2, parallel=7) == [[0, 1], [2, 3]]
    with pytest.raises(ValueError, match="not a multiple of --nproc 2"):
        device_slots([0, 1, 2], nproc=2)
    with pytest.raises(ValueError, match="at least 1"):
        device_slots(None, parallel=0)


def test_run_logged_appends_output_and_returns_the_exit_status(tmp_path):
    log = tmp_path / "a" / "train.log"
    code = "import os, sys; print('out', os.environ['X']); print('err', file=sys.stderr); sys.exit(3)"
    started = []
    assert run_logged([sys.executable, "-c", code], log, env={"X": "1"}, header="== one\n", on_start=started.append) == 3
    assert run_logged([sys.executable, "-c", "print('again')"], log, header="== two\n") == 0
    assert log.read_text().splitlines() == ["== one", "out 1", "err", "== two", "again"]
    assert started[0].pid > 0
    assert last_line(log) == "again" and last_line(tmp_path / "none") == ""


def test_run_parallel_uses_each_slot_for_one_task_at_a_time_and_keeps_the_order():
    busy: dict[str, int] = {}
    lock = threading.Lock()
    peak = []

    def work(task: int, slot):
        with lock:
            busy[str(slot)] = busy.get(str(slot), 0) + 1
            peak.append(max(busy.values()))
        time.sleep(0.02)
        with lock:
            busy[str(slot)] -= 1
        return task * 10, slot

    results = run_parallel(list(range(6)), [[0], [1]], work)
    assert [r[0] for r in results] == [0, 10, 20, 30, 40, 50]
    assert {tuple(r[1]) for r in results} == {(0,), (1,)}
    assert max(peak) == 1


def test_run_parallel_finishes_the_other_tasks_before_raising_an_error():
    done = []

    def work(task: int, _slot):
        if task == 0:
            raise RuntimeError("bug")
        done.append(task)

    with pytest.raises(RuntimeError, match="bug"):
        run_parallel([0, 1, 2], [None], work)
    assert done == [1, 2]
