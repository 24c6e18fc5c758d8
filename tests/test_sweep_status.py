"""status.json and the sweep's decision per run: skip finished, resume after a checkpoint, start, leave live ones."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from medbundle.sweep.layout import RunDir, SweepPlan, find_runs, run_dirs
from medbundle.sweep.status import (
    Action,
    RunStatus,
    next_action,
    read_status,
    write_status,
)


@pytest.fixture
def run(tmp_path):
    return RunDir(tmp_path / "cv", "resnet10t", 1)


def checkpoint(run: RunDir, name: str) -> None:
    run.ckpt_dir.mkdir(parents=True, exist_ok=True)
    (run.ckpt_dir / name).write_bytes(b"")


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_layout_of_a_run(run, tmp_path):
    assert run.folder == tmp_path / "cv" / "resnet10t" / "fold_1"
    assert run.best_checkpoint == run.folder / "models" / "fold1" / "model.pt"
    assert run.predictions == run.folder / "outputs" / "fold1" / "predictions_image.csv"
    assert run.name == "resnet10t/fold_1"


def test_find_runs_lists_model_fold_folders(tmp_path):
    for run in run_dirs(tmp_path, ["b", "a"], [1, 0]):
        run.folder.mkdir(parents=True)
    (tmp_path / "a" / "oof.csv").write_text("")
    assert [run.name for run in find_runs(tmp_path)] == ["a/fold_0", "a/fold_1", "b/fold_0", "b/fold_1"]


def test_plan_round_trip_and_merge(tmp_path):
    plan = SweepPlan("bundles/isic", "model", {"epochs": 2}, ["a"], [0], 1)
    plan.write(tmp_path)
    merged = SweepPlan.read(tmp_path).merged(SweepPlan("bundles/isic", "model", {"epochs": 3}, ["b", "a"], [2, 0], 2))
    assert (merged.models, merged.folds, merged.overrides, merged.nproc) == (["a", "b"], [0, 2], {"epochs": 3}, 2)
    with pytest.raises(FileNotFoundError, match="sweep.py train"):
        SweepPlan.read(tmp_path / "none")


def test_a_new_run_starts(run):
    assert read_status(run) is None
    assert next_action(run) is Action.START


def test_a_finished_run_is_skipped_only_with_its_model(run):
    write_status(run, RunStatus("done", run.model, run.fold, returncode=0))
    assert next_action(run) is Action.START
    checkpoint(run, "model.pt")
    assert next_action(run) is Action.SKIP


@pytest.mark.parametrize("state", ["running", "failed"])
def test_an_interrupted_run_resumes_after_a_checkpoint_and_restarts_before_one(run, state):
    write_status(run, RunStatus(state, run.model, run.fold, pid=dead_pid()))
    assert next_action(run) is Action.START
    checkpoint(run, "last_checkpoint_epoch=3.pt")
    assert next_action(run) is Action.RESUME


def test_a_run_trained_by_a_live_process_here_is_left_alone(run):
    write_status(run, RunStatus("running", run.model, run.fold, pid=os.getpid()))
    checkpoint(run, "last_checkpoint_epoch=1.pt")
    assert next_action(run) is Action.BUSY
    write_status(run, RunStatus("running", run.model, run.fold, pid=os.getpid(), host="another-host"))
    assert next_action(run) is Action.RESUME


def test_status_is_written_whole_and_read_back(run):
    write_status(run, RunStatus("failed", run.model, run.fold, attempt=2, returncode=-9, wall_seconds=1.5))
    assert read_status(run) == RunStatus("failed", run.model, run.fold, attempt=2, returncode=-9, wall_seconds=1.5)
    assert [p.name for p in run.folder.iterdir()] == ["status.json"]
    run.status_file.write_text("{trunc")
    assert read_status(run) is None
