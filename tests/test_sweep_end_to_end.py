"""End to end: ``scripts/sweep.py`` on the isic bundle and tiny demo data (real monai.bundle subprocesses).

Default suite: a 2-fold x 1-model sweep, called twice (the second call skips both runs), then ``oof`` and
``summary``: every labelled item is scored once, the summary is recomputed from ``oof.csv`` and the OOF
threshold is in both ``model.pt``; the sbatch script's task for fold 0 skips it as the local sweep does.
Slow (``-m slow``): the same sweep killed once fold 0 is done and fold 1 has saved a last checkpoint; called
again, fold 0 is skipped and fold 1 resumed, and the out-of-fold results are as complete.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from medbundle.data import isic_datalist, split_fold
from medbundle.demo import write_isic_demo
from medbundle.metrics import auroc, partial_auc, roc_threshold

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "sweep.py"
TINY = ["--models", "resnet10t", "--pretrained", "False", "--image_size", "[32,32]", "--n_folds", "2",
        "--num_workers", "0", "--val_interval", "1", "--min_epochs", "0", "--data_fraction", "1.0"]  # fmt: skip
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def sweep_command(root: Path, name: str, *extra: str) -> list[str]:
    return [sys.executable, str(SCRIPT), "train", "--bundle", "bundles/isic", "--folds", "0,1", "--runs_dir",
            str(root / "runs"), "--name", name, "--dataset_dir", str(root / "data"), *TINY, *extra]  # fmt: skip


def run_script(*args: str) -> str:
    result = subprocess.run([*args], check=False, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def oof_and_summary(folder: Path) -> str:
    run_script(sys.executable, str(SCRIPT), "oof", "--runs", str(folder), "--parallel", "2", "--num_workers", "0")
    return run_script(sys.executable, str(SCRIPT), "summary", "--runs", str(folder))


def best(folder: Path, fold: int) -> Path:
    return folder / "resnet10t" / f"fold_{fold}" / "models" / f"fold{fold}" / "model.pt"


def check_out_of_fold_results(data: Path, folder: Path) -> None:
    """Every labelled item once with its fold; summary = recomputation from oof.csv; threshold in each model.pt."""
    oof = pd.read_csv(folder / "resnet10t" / "oof.csv", dtype={"image_id": str})
    items = isic_datalist(data)
    assert sorted(oof["image_id"]) == sorted(item["image_id"] for item in items)
    for fold in (0, 1):
        validation = {item["image_id"] for item in split_fold(items, fold=fold, n_splits=2, seed=42)[1]}
        assert set(oof.loc[oof["fold"] == fold, "image_id"]) == validation
    labels = {item["image_id"]: item["label"][0] for item in items}
    assert (oof["label"] == oof["image_id"].map(labels)).all()

    summary = pd.read_csv(folder / "summary.csv", dtype={"fold": str}).set_index("fold")
    assert summary.loc["oof", "pauc"] == pytest.approx(partial_auc(oof["label"], oof["pred"]))
    assert summary.loc["oof", "auroc"] == pytest.approx(auroc(oof["label"], oof["pred"]))
    fold_0 = oof[oof["fold"] == 0]
    assert summary.loc["0", "auroc"] == pytest.approx(auroc(fold_0["label"], fold_0["pred"]))
    threshold = roc_threshold(oof["label"], oof["pred"])
    assert summary.loc["oof", "threshold"] == pytest.approx(threshold)
    for fold in (0, 1):
        state = torch.load(best(folder, fold), weights_only=True)
        assert state["thresholds"]["oof_threshold"] == pytest.approx(threshold)
        assert "roc_threshold" in state["thresholds"] and "model" in state


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sweep")
    write_isic_demo(root / "data", n_patients=24, positive_rate=0.1, n_test=0, size_range=(32, 48), seed=1)
    return root


@pytest.fixture(scope="module")
def finished(data):
    """A sweep trained (2 folds side by side), called again, then oof and summary; prints its wall time."""
    folder = data / "runs" / "cv"
    begin = time.monotonic()
    first = run_script(*sweep_command(data, "cv", "--epochs", "1", "--parallel", "2", "--tracking", "mlflow"))
    mtimes = [best(folder, fold).stat().st_mtime_ns for fold in (0, 1)]
    second = run_script(*sweep_command(data, "cv", "--epochs", "1"))
    unchanged = mtimes == [best(folder, fold).stat().st_mtime_ns for fold in (0, 1)]
    summary = oof_and_summary(folder)
    print(f"\nsweep (2 folds) + rerun + oof + summary: {time.monotonic() - begin:.0f} s\n{summary}")
    return folder, {"first": first, "second": second, "summary": summary}, unchanged


def test_each_run_leaves_its_log_command_status_and_tensorboard(finished):
    folder, outputs, _ = finished
    for fold in (0, 1):
        run = folder / "resnet10t" / f"fold_{fold}"
        assert f"resnet10t/fold_{fold}: done in" in outputs["first"]
        status = json.loads((run / "status.json").read_text())
        assert (status["state"], status["returncode"], status["attempt"], status["resumed"]) == ("done", 0, 1, False)
        assert status["wall_seconds"] > 0 and status["start"] <= status["end"]
        assert "Epoch[1] Complete" in (run / "train.log").read_text()
        assert list((run / "outputs" / f"fold{fold}" / "tensorboard").glob("events.*"))
        lines = (run / "command.txt").read_text().splitlines()
        assert lines[0] == f"cd {REPO}"
        assert f"-m monai.bundle run training --config_file bundles/isic/configs/train.yaml --model resnet10t --fold {fold}" in lines[1]
        assert f"--bundle_root {run}" in lines[1] and "--image_size '[32, 32]'" in lines[1] and "--resume" not in lines[1]
    assert "2 runs: 2 done" in outputs["first"]


def test_a_second_call_skips_finished_runs_without_touching_them(finished):
    _, outputs, unchanged = finished
    assert "resnet10t/fold_0: skipped" in outputs["second"] and "resnet10t/fold_1: skipped" in outputs["second"]
    assert "2 runs: 2 skipped" in outputs["second"]
    assert unchanged, "the second call rewrote a model.pt"


def test_out_of_fold_table_summary_and_stored_threshold(finished, data):
    folder, outputs, _ = finished
    check_out_of_fold_results(data / "data", folder)
    assert "mean ± sd" in outputs["summary"] and "| resnet10t | OOF | " in outputs["summary"]
    assert (folder / "summary.md").read_text().startswith("# Sweep cv (isic)")


def test_a_tracked_sweep_is_a_parent_run_with_a_child_per_fold_and_the_summary(finished):
    mlflow = pytest.importorskip("mlflow")
    folder, _, _ = finished
    client = mlflow.MlflowClient(f"sqlite:///{folder / 'eval' / 'mlruns.db'}")
    runs = client.search_runs([client.get_experiment_by_name("isic").experiment_id])
    parents = [r for r in runs if r.data.tags.get("stage") == "sweep"]
    assert [r.info.run_name for r in parents] == ["cv"]
    parent = parents[0]
    children = sorted((r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id),
                      key=lambda r: r.info.run_name)  # fmt: skip
    assert [r.info.run_name for r in children] == ["resnet10t-fold0", "resnet10t-fold1"]
    assert all(r.info.status == "FINISHED" and "val_pauc" in r.data.metrics for r in children)
    summary = pd.read_csv(folder / "summary.csv", dtype={"fold": str}).set_index("fold")
    assert parent.data.metrics["resnet10t/oof_pauc"] == pytest.approx(summary.loc["oof", "pauc"])
    assert parent.data.metrics["resnet10t/sd_auroc"] == pytest.approx(summary.loc["sd", "auroc"])
    assert parent.data.params["epochs"] == "1"
    assert json.loads((folder / "sweep.json").read_text())["tracking"]["parent_run_id"] == parent.info.run_id


def test_sbatch_task_runs_the_local_command_and_skips_a_finished_run(finished, data):
    folder, _, _ = finished
    mtime = best(folder, 0).stat().st_mtime_ns
    run_script(*sweep_command(data, "cv", "--epochs", "1", "--launcher", "slurm"))
    env = {**ENV, "SLURM_ARRAY_TASK_ID": "0"}
    result = subprocess.run(["bash", str(folder / "sweep.sbatch")], check=False, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "resnet10t/fold_0: skipped" in (folder / "resnet10t" / "fold_0" / "slurm-local_0.out").read_text()
    assert best(folder, 0).stat().st_mtime_ns == mtime


def wait_until_fold_1_checkpointed(process: subprocess.Popen, folder: Path, timeout: float = 180.0) -> None:
    fold_0, fold_1 = folder / "resnet10t" / "fold_0", folder / "resnet10t" / "fold_1"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the sweep ended before it could be killed"
        status_0 = (fold_0 / "status.json").read_text() if (fold_0 / "status.json").exists() else ""
        status_1 = (fold_1 / "status.json").read_text() if (fold_1 / "status.json").exists() else ""
        if '"done"' in status_0 and '"running"' in status_1 and any((fold_1 / "models" / "fold1").glob("last_*.pt")):
            return
        time.sleep(0.1)
    raise AssertionError("fold 1 never saved a last checkpoint while running")


@pytest.mark.slow
def test_a_killed_sweep_skips_the_finished_fold_and_resumes_the_other(data):
    folder = data / "runs" / "killed"
    begin = time.monotonic()
    command = sweep_command(data, "killed", "--epochs", "2")  # one at a time: fold 1 starts after fold 0 is done
    with open(data / "killed.log", "w") as log:
        first = subprocess.Popen(command, cwd=REPO, env=ENV, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_until_fold_1_checkpointed(first, folder)
        finally:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    mtime_0 = best(folder, 0).stat().st_mtime_ns
    second = run_script(*command)
    assert "resnet10t/fold_0: skipped" in second and best(folder, 0).stat().st_mtime_ns == mtime_0
    assert "resnet10t/fold_1: resumed from its last checkpoint" in second
    fold_1 = folder / "resnet10t" / "fold_1"
    assert "--resume True" in (fold_1 / "command.txt").read_text()
    log = (fold_1 / "train.log").read_text()
    assert "attempt 2 (--resume)" in log and "resuming from" in log
    status = json.loads((fold_1 / "status.json").read_text())
    assert (status["state"], status["attempt"], status["resumed"], status["returncode"]) == ("done", 2, True, 0)
    oof_and_summary(folder)
    check_out_of_fold_results(data / "data", folder)
    print(f"\nkilled sweep + resume + oof + summary: {time.monotonic() - begin:.0f} s")
