"""The local sweep with stand-in training commands: status, log, command.txt, failures, skip and resume."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from medbundle.sweep import training
from medbundle.sweep.layout import RunDir, SweepPlan
from medbundle.sweep.status import read_status

# a stand-in for `monai.bundle run training`: fold 1 fails once (after a last checkpoint), every other run finishes
FAKE = """
import pathlib, sys
fold, root, resume = int(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3] == "True"
ckpt = root / "models" / f"fold{fold}"
ckpt.mkdir(parents=True, exist_ok=True)
(ckpt / "last_checkpoint_epoch=1.pt").write_bytes(b"")
if fold == 1 and not resume:
    print("RuntimeError: out of memory")
    sys.exit(3)
(ckpt / "model.pt").write_bytes(b"")
print("finished", "resumed" if resume else "fresh")
"""


@pytest.fixture
def bundle(tmp_path, monkeypatch):
    folder = tmp_path / "bundle"
    (folder / "configs").mkdir(parents=True)
    (folder / "configs" / "train.yaml").write_text("model: a\nn_folds: 3\n")

    def fake_command(bundle, run: RunDir, key, overrides, resume=False, nproc=1):
        return [sys.executable, "-c", FAKE, str(run.fold), str(run.folder), str(resume)]

    monkeypatch.setattr(training, "training_command", fake_command)
    return folder


def test_a_failed_run_is_reported_and_the_others_finish_then_it_resumes(bundle, tmp_path, caplog):
    sweep = tmp_path / "runs" / "cv"
    caplog.set_level(logging.INFO, "medbundle.sweep")
    results = training.train_sweep(bundle, ["m"], [0, 1, 2], sweep, parallel=2, epochs=2)
    assert [r.outcome for r in results] == ["done", "failed", "done"]
    failed = results[1]
    assert failed.returncode == 3 and failed.last_line == "RuntimeError: out of memory"
    report = training.failure_report(results)
    assert report.splitlines()[0] == "3 runs: 2 done, 1 failed"
    assert "FAILED m/fold_1 (exit 3): RuntimeError: out of memory" in report
    status = read_status(failed.run)
    assert (status.state, status.returncode, status.attempt, status.resumed) == ("failed", 3, 1, False)
    assert status.wall_seconds >= 0 and status.end is not None and status.pid
    assert failed.run.command_file.read_text().splitlines()[0].startswith("cd ")
    assert SweepPlan.read(sweep).overrides == {"epochs": 2}

    again = training.train_sweep(bundle, ["m"], [0, 1, 2], sweep, epochs=2)
    assert [r.outcome for r in again] == ["skipped", "done", "skipped"]
    status = read_status(again[1].run)
    assert (status.state, status.attempt, status.resumed) == ("done", 2, True)
    log = again[1].run.log_file.read_text()
    assert "attempt 1:" in log and "attempt 2 (--resume)" in log and "finished resumed" in log
    assert "m/fold_0: skipped" in caplog.text


def test_gpus_are_given_to_the_runs_as_cuda_visible_devices(bundle, tmp_path):
    results = training.train_sweep(bundle, ["m"], [0, 2], tmp_path / "cv", gpus=[4, 5])
    devices = sorted(read_status(r.run).devices for r in results)
    assert devices == ["4", "5"]
    assert results[0].run.command_file.read_text().splitlines()[1].startswith("CUDA_VISIBLE_DEVICES=")


def test_retraining_removes_the_stale_evaluation(bundle, tmp_path):
    run = RunDir(tmp_path / "cv", "m", 0)
    run.output_dir.mkdir(parents=True)
    run.predictions.write_text("old")
    run.evaluation_predictions(tta=True).parent.mkdir()
    run.evaluation_predictions(tta=True).write_text("old")
    training.train_sweep(bundle, ["m"], [0], tmp_path / "cv")
    assert not run.predictions.exists() and not run.evaluation_predictions(tta=True).exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fold": 1}, "--fold is set by the sweep"),
        ({"bundle_root": "x"}, "--bundle_root is set by the sweep"),
        ({"folds": [3]}, r"folds \[3\] are outside 0..2"),
        ({"models": []}, "no models"),
    ],
)
def test_arguments_the_sweep_cannot_run_are_refused(bundle, tmp_path, kwargs, message):
    arguments = {"models": ["m"], "folds": [0], **kwargs}
    with pytest.raises(ValueError, match=message):
        training.train_sweep(bundle, arguments.pop("models"), arguments.pop("folds"), tmp_path / "cv", **arguments)


def test_a_sweep_folder_keeps_its_bundle(bundle, tmp_path):
    training.plan_sweep(bundle, ["m"], [0], tmp_path / "cv", 1, {})
    other = Path(tmp_path / "other")
    (other / "configs").mkdir(parents=True)
    (other / "configs" / "train.yaml").write_text("n_folds: 2\n")
    with pytest.raises(ValueError, match="choose another --name"):
        training.plan_sweep(other, ["m"], [0], tmp_path / "cv", 1, {})


def test_a_run_that_ends_without_a_best_model_is_a_failure(bundle, tmp_path, monkeypatch):
    monkeypatch.setattr(training, "training_command", lambda *args, **kwargs: [sys.executable, "-c", "pass"])
    (result,) = training.train_sweep(bundle, ["m"], [0], tmp_path / "cv")
    assert (result.outcome, result.returncode) == ("failed", 0)
    assert "no validation ran" in result.last_line and read_status(result.run).state == "failed"
