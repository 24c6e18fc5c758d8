"""End to end: the real ``python -m monai.bundle`` commands of the classify bundle on generated demo data, a binary
label CSV with patient ids and multi-class train/val/test folders, and the tools that take its checkpoints. The
command trains the binary model and evaluates the multi-class one's test folder; the other runs call what it calls
in this process (``run_here``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import as_overrides, run_in_process
from sklearn.metrics import accuracy_score, roc_auc_score

from medbundle import cli
from medbundle.data import classify_classes, classify_split
from medbundle.demo import write_classify_demo
from medbundle.excepthook import root_cause

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "bundles" / "classify" / "configs"
TINY = ["--model", "resnet10t", "--pretrained", "False", "--image_size", "[32,32]", "--batch_size", "16",
        "--num_workers", "0", "--progress", "False", "--epochs", "2", "--stage1_epochs", "1", "--stage1_lr", "1e-3",
        "--stage2_backbone_lr", "1e-3", "--stage2_head_lr", "2e-3"]


def run_here(configs: list[str], *flags: str, run_id: str = "run", **overrides) -> str:
    """``monai.bundle run`` in this process (what the command calls, conftest's run_in_process), for runs whose
    start-up time is not tested; `flags` as on the command line. What it printed."""
    return run_in_process([CONFIGS / name for name in configs], run_id, **as_overrides(flags), **overrides)


def run_bundle(run_id: str, configs: list[str], *overrides: str, check: bool = True) -> subprocess.CompletedProcess:
    files = [str(CONFIGS / name) for name in configs]
    command = [sys.executable, "-m", "monai.bundle", "run", run_id, "--config_file", repr(files),
               "--logging_file", str(CONFIGS / "logging.conf"), *overrides]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(command, check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    if check:
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


@pytest.fixture(scope="module")
def binary(tmp_path_factory):
    """A binary label CSV with patient ids (and a held-out test.csv), trained for 2 epochs (one per stage)."""
    root = tmp_path_factory.mktemp("binary")
    write_classify_demo(root / "data", n_patients=24, n_classes=2, layout="csv", n_test=6, size_range=(40, 64), seed=1)
    paths = ["--dataset_dir", str(root / "data"), "--bundle_root", str(root / "bundle")]
    log = run_bundle("training", ["train.yaml"], *paths, *TINY, "--n_folds", "3")
    return root, paths, log.stdout + log.stderr


@pytest.fixture(scope="module")
def multiclass(tmp_path_factory):
    """Three classes in train/val/test folders (the fixed split), trained for 2 epochs."""
    root = tmp_path_factory.mktemp("multiclass")
    write_classify_demo(root / "data", n_patients=30, n_classes=3, layout="split_folders", size_range=(40, 64), seed=2)
    paths = ["--dataset_dir", str(root / "data"), "--bundle_root", str(root / "bundle")]
    return root, paths, run_here(["train.yaml"], *paths, *TINY, run_id="training")  # the command trains `binary`


def test_binary_csv_trains_one_sigmoid_output_and_stores_the_roc_threshold(binary):
    root, _, log = binary
    best = torch.load(root / "bundle" / "models" / "fold0" / "model.pt", weights_only=True)
    config = best["config"]
    assert config["task"] == "classify" and config["num_classes"] == 1 and config["color"] is False
    assert config["class_names"] == ["benign", "malignant"] and config["n_folds"] == 3
    assert 0.0 < best["thresholds"]["roc_threshold"] < 1.0 and "auroc" in best["thresholds"]
    assert list(best["model"].values())[-1].shape == (1,)  # the head's last bias: one logit
    assert "val_auroc" in log and "val_sensitivity" in log and "val_specificity" in log and "stage 2" in log
    assert "BCEWithLogitsLoss pos_weight" in log


def test_binary_folds_keep_each_patient_on_one_side(binary):
    root, _, _ = binary
    data = root / "data"
    train, val = classify_split(data, classify_classes(data), fold=0, n_folds=3)
    assert not {item["patient_id"] for item in train} & {item["patient_id"] for item in val}


def test_binary_evaluation_of_a_held_out_csv_matches_sklearn(binary):
    root, paths, _ = binary
    run_here(["train.yaml", "evaluate.yaml"], *paths, "--num_workers", "0", "--eval_csv", "test.csv",
             run_id="evaluating")  # the command evaluates the multi-class test folder
    out = root / "bundle" / "outputs" / "fold0" / "test"
    metrics = json.loads((out / "metrics.json").read_text())
    predictions = pd.read_csv(out / "predictions_image.csv")
    held_out = pd.read_csv(root / "data" / "test.csv")
    assert len(predictions) == len(held_out) == metrics["image"]["tp"] + metrics["image"]["fp"] + metrics["image"][
        "tn"] + metrics["image"]["fn"]  # fmt: skip
    assert metrics["image"]["auroc"] == pytest.approx(roc_auc_score(predictions["label"], predictions["pred"]))
    assert predictions["label_class"].tolist() == held_out["label"].tolist()
    threshold = torch.load(root / "bundle" / "models" / "fold0" / "model.pt", weights_only=True)["thresholds"]["roc_threshold"]
    assert metrics["threshold"] == pytest.approx(threshold)
    expected = np.where(predictions["pred"] >= threshold, "malignant", "benign")
    assert predictions["pred_class"].tolist() == expected.tolist()


def test_binary_inference_predicts_a_csv_of_images_with_class_names(binary):
    root, _, _ = binary
    run_here(["inference.yaml"], bundle_root=str(root / "bundle"), input=str(root / "data" / "test.csv"),
             num_workers=0)
    predictions = pd.read_csv(root / "bundle" / "outputs" / "fold0" / "inference" / "predictions_image.csv")
    assert len(predictions) == len(pd.read_csv(root / "data" / "test.csv"))
    assert list(predictions.columns) == ["image_id", "pred", "pred_class"]
    assert set(predictions["pred_class"]) <= {"benign", "malignant"} and predictions["pred"].between(0, 1).all()


def test_multiclass_folders_train_a_softmax_and_evaluate_the_test_folder(multiclass):
    root, paths, log = multiclass
    best = torch.load(root / "bundle" / "models" / "fold0" / "model.pt", weights_only=True)
    assert best["config"]["num_classes"] == 3 and best["config"]["class_names"] == ["clear", "nodule", "streaks"]
    assert "thresholds" not in best and "val_accuracy" in log and "val_auroc_nodule" in log
    run_bundle("evaluating", ["train.yaml", "evaluate.yaml"], *paths, "--num_workers", "0", "--eval_split", "test")
    out = root / "bundle" / "outputs" / "fold0" / "test"
    metrics = json.loads((out / "metrics.json").read_text())["image"]
    predictions = pd.read_csv(out / "predictions_image.csv")
    assert len(predictions) == metrics["n"] == len(list((root / "data" / "test").rglob("*.*")))
    names = ["clear", "nodule", "streaks"]
    probabilities = predictions[[f"prob_{name}" for name in names]].to_numpy()
    assert np.allclose(probabilities.sum(1), 1.0, atol=1e-4)
    assert metrics["accuracy"] == pytest.approx(accuracy_score(predictions["label"], probabilities.argmax(1)))
    assert (out / "confusion_matrix.csv").is_file() and set(metrics["per_class"]) == set(names)


def test_multiclass_inference_predicts_a_folder(multiclass):
    root, _, _ = multiclass
    run_here(["inference.yaml"], bundle_root=str(root / "bundle"), input=str(root / "data" / "test"), num_workers=0)
    predictions = pd.read_csv(root / "bundle" / "outputs" / "fold0" / "inference" / "predictions_image.csv")
    assert predictions["image_id"].str.contains("/").all() and "label" not in predictions
    assert set(predictions["pred_class"]) <= {"clear", "nodule", "streaks"} and "prob_streaks" in predictions


def test_a_csv_without_label_column_stops_with_the_file_and_column_last(tmp_path):
    data = tmp_path / "data"
    write_classify_demo(data, n_patients=6, n_test=0, size_range=(32, 40))
    pd.read_csv(data / "labels.csv").rename(columns={"label": "diagnosis"}).to_csv(data / "labels.csv", index=False)
    with pytest.raises(Exception) as stopped:
        run_here(["train.yaml"], "--dataset_dir", str(data), "--bundle_root", str(tmp_path / "b"), *TINY,
                 run_id="training")
    cause = root_cause(stopped.value)  # the command prints "medbundle: error: ValueError: <cause>" last
    assert isinstance(cause, ValueError)
    message = str(cause)
    assert f"{data / 'labels.csv'} lacks required column(s) ['label']" in message and "rename its columns" in message


@pytest.mark.slow
def test_demo_command_trains_through_the_demo_overlay(tmp_path):
    data = tmp_path / "data"
    cli.demo_data(task="classify", out=str(data), n_patients=16, n_test=0, size_range=(32, 48))
    cli.demo(task="classify", out=str(data), bundle_dir=str(CONFIGS.parent), bundle_root=str(tmp_path / "run"),
             epochs=2, stage1_epochs=1, image_size=[32, 32], num_workers=0, progress=False, n_folds=3)
    state = torch.load(tmp_path / "run" / "models" / "fold0" / "model.pt", weights_only=True)
    assert state["config"]["model"] == "resnet10t" and state["config"]["class_names"] == ["benign", "malignant"]


@pytest.mark.slow
@pytest.mark.parametrize("run", ["binary", "multiclass"])
def test_export_of_a_classify_checkpoint_passes_its_parity_check(run, request, tmp_path):
    root, _, _ = request.getfixturevalue(run)
    images = sorted(str(p) for p in (root / "data").rglob("*.*") if p.suffix in (".png", ".jpg", ".tif", ".dcm"))[:4]
    result = cli.export(str(CONFIGS.parent), str(root / "bundle" / "models" / "fold0" / "model.pt"), out=str(tmp_path),
                        parity_images=images)
    assert set(result["files"]) == {"ts", "onnx", "deploy", "parity"}
    parity = json.loads((tmp_path / "parity.json").read_text())
    deploy = json.loads((tmp_path / "deploy.json").read_text())
    assert parity["passed"] and deploy["task"] == "classify"
    if run == "binary":
        assert deploy["output"]["activation"] == "sigmoid" and deploy["decision_threshold_key"] == "roc_threshold"
    else:
        assert deploy["output"]["shape"] == [None, 3] and deploy["class_names"] == ["clear", "nodule", "streaks"]
