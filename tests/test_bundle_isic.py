"""End to end: the real ``python -m monai.bundle`` commands of the isic bundle on generated HDF5 demo data; the runs
on damaged data call what the command calls in this process (``run_here``)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import as_overrides, assert_resumed, assert_same_state, kill_mid_epoch, run_in_process
from monai.bundle import ConfigParser, ConfigWorkflow
from sklearn.metrics import auc, roc_auc_score, roc_curve

from medbundle.checkpoints import latest_checkpoint, stored_thresholds
from medbundle.data import isic_datalist, split_fold
from medbundle.demo import write_isic_demo
from medbundle.excepthook import root_cause

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "bundles" / "isic" / "configs"
# two DataLoader workers read the HDF5 file in the real command
TINY = ["--model", "resnet10t", "--pretrained", "False", "--image_size", "[48,48]", "--batch_size", "16",
        "--num_workers", "2", "--val_interval", "1", "--min_epochs", "0", "--n_folds", "3", "--learning_rate", "1e-3"]
TRAINING = [*TINY, "--epochs", "3", "--data_fraction", "0.5"]  # the fixture's run
# one torch thread per run: two test files run at once on two cores, and more threads only spin
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}


def bundle_command(run_id: str, configs: list[str], *overrides: str) -> list[str]:
    files = [str(CONFIGS / name) for name in configs]
    return [sys.executable, "-m", "monai.bundle", "run", run_id, "--config_file", repr(files),
            "--logging_file", str(CONFIGS / "logging.conf"), *overrides]


def run_bundle(run_id: str, configs: list[str], *overrides: str, check: bool = True) -> subprocess.CompletedProcess:
    command = bundle_command(run_id, configs, *overrides)
    result = subprocess.run(command, check=False, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600)
    if check:
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


def run_here(run_id: str, configs: list[str], *overrides: str) -> str:
    """`run_bundle` in this process (conftest's run_in_process), DataLoader workers included; what it printed."""
    return run_in_process([CONFIGS / name for name in configs], run_id, **as_overrides(overrides))


def stop_here(run_id: str, configs: list[str], *overrides: str) -> str:
    """`run_here` of a run that must stop: the root cause, which the command prints last."""
    with pytest.raises(Exception) as stopped:
        run_here(run_id, configs, *overrides)
    return str(root_cause(stopped.value))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Demo data and a 3-epoch run with half the negatives per epoch."""
    root = tmp_path_factory.mktemp("isic")
    data = root / "data"
    write_isic_demo(data, n_patients=45, positive_rate=0.08, n_test=8, size_range=(40, 72), seed=2)
    paths = ["--dataset_dir", str(data), "--bundle_root", str(root / "bundle")]
    result = run_bundle("training", ["train.yaml"], *paths, *TRAINING)
    return root, paths, result.stdout + result.stderr


def test_training_logs_the_epoch_pos_weight_and_saves_threshold_and_settings(trained):
    root, _, log = trained
    items = isic_datalist(root / "data")
    train, _ = split_fold(items, fold=0, n_splits=3, seed=42)
    positives = sum(item["label"] == [1.0] for item in train)
    negatives_per_epoch = round(0.5 * (len(train) - positives))
    logged = float(re.search(r"BCEWithLogitsLoss pos_weight = ([\d.e+-]+)", log).group(1))
    assert logged == pytest.approx(negatives_per_epoch / positives, rel=1e-3)
    assert f"all {positives} positives and {negatives_per_epoch} of {len(train) - positives} negatives" in log
    best = torch.load(root / "bundle" / "models" / "fold0" / "model.pt", weights_only=True)
    assert set(best["thresholds"]) == {"roc_threshold", "pf1_threshold", "auroc", "best_auroc"}
    assert best["config"]["backbone"] == "resnet10t" and best["config"]["image_size"] == [48, 48]
    assert "val_pauc" in log and "val_auroc" in log
    events = list((root / "bundle" / "outputs" / "fold0" / "tensorboard").glob("events.*"))
    assert events, "no TensorBoard events"


def test_pos_weight_is_the_split_ratio_with_all_negatives(trained):
    root, _, _ = trained
    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "train.yaml"))
    parser.update({"dataset_dir": str(root / "data"), "bundle_root": str(root / "p"), "n_folds": 3, "data_fraction": 1.0,
                   "model": "resnet10t", "pretrained": False, "num_workers": 0, "progress": False})
    train = parser.get_parsed_content("split")[0]
    n_pos = sum(item["label"] == [1.0] for item in train)
    loss = parser.get_parsed_content("loss_function")
    assert float(loss.pos_weight) == pytest.approx((len(train) - n_pos) / n_pos)


@pytest.mark.slow  # the mechanism is tested in the default suite by test_resume_exact (kill -9, bit for bit)
def test_kill_9_mid_epoch_then_resume_equals_the_uninterrupted_run(trained, tmp_path):
    """The fixture's run is the uninterrupted one; this one, with the same settings and two DataLoader workers, is
    killed inside epoch 2, then resumed: it trains the rest only and ends with the same weights and metrics."""
    root, _, _ = trained
    killed = ["--dataset_dir", str(root / "data"), "--bundle_root", str(tmp_path)]
    command = bundle_command("training", ["train.yaml"], *killed, *TRAINING)
    kill_mid_epoch(command, tmp_path / "killed.log", epoch=2, env=ENV)
    checkpoint = latest_checkpoint(tmp_path / "models" / "fold0")
    assert checkpoint is not None and checkpoint.name != "last_checkpoint_epoch=3.pt"
    result = run_bundle("training", ["train.yaml"], *killed, *TRAINING, "--resume")
    assert_resumed(result.stdout + result.stderr, checkpoint, epochs=3)
    for name in ("last_checkpoint_epoch=3.pt", "model.pt"):
        reference = torch.load(root / "bundle" / "models" / "fold0" / name, weights_only=True)
        resumed = torch.load(tmp_path / "models" / "fold0" / name, weights_only=True)
        assert_same_state(reference, resumed, name)


def challenge_pauc(labels: np.ndarray, predictions: np.ndarray, min_tpr: float = 0.80) -> float:
    """The ISIC 2024 challenge's scoring code (partial AUC above `min_tpr` TPR), as published."""
    v_gt = abs(np.asarray(labels) - 1)
    v_pred = -1.0 * np.asarray(predictions)
    max_fpr = abs(1 - min_tpr)
    fpr, tpr, _ = roc_curve(v_gt, v_pred, sample_weight=None)
    stop = np.searchsorted(fpr, max_fpr, "right")
    x_interp = [fpr[stop - 1], fpr[stop]]
    y_interp = [tpr[stop - 1], tpr[stop]]
    tpr = np.append(tpr[:stop], np.interp(max_fpr, x_interp, y_interp))
    fpr = np.append(fpr[:stop], max_fpr)
    return auc(fpr, tpr)


def test_evaluate_with_flip_tta_writes_pauc_over_the_whole_validation_fold_to_its_own_folder(trained):
    root, paths, _ = trained
    run_bundle("evaluating", ["train.yaml", "evaluate.yaml"], *paths, "--num_workers", "2", "--tta", "True")
    plain = root / "bundle" / "outputs" / "fold0"
    assert not (plain / "metrics.json").exists() and not (plain / "predictions_image.csv").exists()  # kept apart
    out = plain / "tta"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["tta"] is True
    image = metrics["image"]
    assert 0.0 <= image["pauc"] <= 0.2 and 0.0 <= image["auroc"] <= 1.0
    best = root / "bundle" / "models" / "fold0" / "model.pt"
    assert metrics["threshold"] == pytest.approx(stored_thresholds(best)["roc_threshold"])
    _, val = split_fold(isic_datalist(root / "data"), fold=0, n_splits=3, seed=42)
    predictions = pd.read_csv(out / "predictions_image.csv", dtype={"image_id": str})
    assert predictions["image_id"].tolist() == [item["image_id"] for item in val]  # val_data_fraction 1: every negative
    # recomputed from the CSV with the challenge's own code and scikit-learn
    labels, scores = predictions["label"].to_numpy(), predictions["pred"].to_numpy()
    assert 0 < labels.sum() < len(labels)
    assert image["pauc"] == pytest.approx(challenge_pauc(labels, scores), abs=1e-6)
    assert image["auroc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-6)
    decided = scores >= metrics["threshold"]
    assert image["sensitivity"] == pytest.approx(decided[labels == 1].mean(), abs=1e-6)
    assert image["specificity"] == pytest.approx(1 - decided[labels == 0].mean(), abs=1e-6)


def test_inference_writes_the_kaggle_submission_and_thresholded_labels(trained):
    root, _, _ = trained
    run_bundle("run", ["inference.yaml"], "--dataset_dir", str(root / "data"), "--bundle_root", str(root / "bundle"),
               "--num_workers", "0")
    out = root / "bundle" / "outputs" / "fold0"
    submission = pd.read_csv(out / "submission.csv", dtype={"isic_id": str})
    test = pd.read_csv(root / "data" / "test-metadata.csv", dtype={"isic_id": str})
    assert list(submission.columns) == ["isic_id", "target"]
    assert submission["isic_id"].tolist() == test["isic_id"].tolist()
    assert submission["target"].between(0, 1).all()
    labels = pd.read_csv(out / "submission_labels.csv", dtype={"isic_id": str})
    threshold = stored_thresholds(root / "bundle" / "models" / "fold0" / "model.pt")["roc_threshold"]
    assert labels["isic_id"].tolist() == test["isic_id"].tolist()
    np.testing.assert_array_equal(labels["target"], (submission["target"] >= threshold).astype(int))


def test_undecodable_jpeg_stops_naming_it_or_is_skipped_and_counted(trained, tmp_path):
    root, _, _ = trained
    data = tmp_path / "data"
    shutil.copytree(root / "data", data)
    victim = pd.read_csv(data / "train-metadata.csv", dtype=str)["isic_id"].iloc[3]
    with h5py.File(data / "train-image.hdf5", "a") as file:
        del file[victim]
        file[victim] = np.bytes_(b"\xff\xd8\xff\xe0 truncated")
    # every validation negative, so the victim is read wherever its patient's fold puts it
    paths = ["--dataset_dir", str(data), "--bundle_root", str(tmp_path / "b"), "--data_fraction", "1.0"]
    last = stop_here("training", ["train.yaml"], *paths, *TINY, "--epochs", "1")
    assert victim in last and "skip_bad_images" in last
    log = run_here("training", ["train.yaml"], *paths, *TINY, "--epochs", "1", "--skip_bad_images", "True")
    assert "skipped 1 of" in log and victim in log
    skipped = pd.read_csv(tmp_path / "b" / "outputs" / "fold0" / "skipped.csv")
    assert skipped["image_id"].tolist() == [victim]


def test_missing_isic_id_names_it_and_the_bundle_key(trained, tmp_path):
    root, _, _ = trained
    data = tmp_path / "data"
    shutil.copytree(root / "data", data)
    victim = pd.read_csv(data / "train-metadata.csv", dtype=str)["isic_id"].iloc[5]
    with h5py.File(data / "train-image.hdf5", "a") as file:
        del file[victim]
    paths = ["--dataset_dir", str(data), "--bundle_root", str(tmp_path / "b")]
    last = stop_here("training", ["train.yaml"], *paths, *TINY, "--epochs", "1")
    assert victim in last and "missing_images: skip" in last


@pytest.mark.parametrize(
    ("configs", "workflow_type"),
    [(["train.yaml"], "train"), (["train.yaml", "evaluate.yaml"], "train"), (["inference.yaml"], "infer")],
)
def test_workflow_properties_are_complete(trained, configs, workflow_type):
    root, _, _ = trained
    workflow = ConfigWorkflow(
        config_file=[str(CONFIGS / c) for c in configs],
        workflow_type=workflow_type,
        dataset_dir=str(root / "data"),
        bundle_root=str(root / "bundle"),
        model="resnet10t",
        image_size=[48, 48],
        pretrained=False,
        n_folds=3,
        num_workers=0,
        progress=False,
    )
    workflow.initialize()
    assert workflow.check_properties() == []
