"""End to end: the real ``python -m monai.bundle`` commands of the chest_xray bundle on generated demo data (training
killed and resumed, evaluation of the test split, inference); the other runs call what the command calls in this
process (``run_here``)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import timm
import torch
from conftest import as_overrides, assert_resumed, assert_same_state, kill_mid_epoch, run_in_process, trained_epochs
from monai.bundle import ConfigWorkflow
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from medbundle.checkpoints import latest_checkpoint
from medbundle.data import CHEST_XRAY_CLASSES
from medbundle.demo import write_chest_xray_demo
from medbundle.excepthook import root_cause

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "bundles" / "chest_xray" / "configs"
SETTINGS = ["--model", "resnet10t", "--image_size", "[48,48]", "--batch_size", "8", "--epochs", "4",
            "--stage1_epochs", "2", "--stage1_lr", "1e-3", "--stage2_backbone_lr", "1e-4", "--stage2_head_lr", "1e-3"]
TINY = [*SETTINGS, "--num_workers", "0"]
WORKERS = [*SETTINGS, "--num_workers", "1"]  # the fixture's runs: one DataLoader worker
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
    """`run_bundle` in this process (conftest's run_in_process); what it printed."""
    return run_in_process([CONFIGS / name for name in configs], run_id, **as_overrides(overrides))


def backbone_state(state: dict) -> dict[str, torch.Tensor]:
    return {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.") and "num_batches" not in k}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Demo data, a timm-format 'pretrained' backbone file, and a run killed (SIGKILL) in the first epoch of stage 2,
    then resumed from the end of stage 1 (2 epochs); one DataLoader worker."""
    root = tmp_path_factory.mktemp("chest")
    data = root / "data"
    write_chest_xray_demo(data, n_train=6, n_val=3, n_test=2, size_range=(64, 96), seed=1)
    weights = root / "resnet10t.pth"
    torch.manual_seed(0)
    torch.save(timm.create_model("resnet10t", pretrained=False).state_dict(), weights)
    paths = ["--dataset_dir", str(data), "--bundle_root", str(root / "bundle"), "--pretrained_file", str(weights)]
    command = bundle_command("training", ["train.yaml"], *paths, *WORKERS)
    kill_mid_epoch(command, root / "stage1.log", epoch=3, env=ENV)
    checkpoint = latest_checkpoint(root / "bundle" / "models" / "fold0")
    assert checkpoint is not None and checkpoint.name == "last_checkpoint_epoch=2.pt", checkpoint
    shutil.copy(checkpoint, root / "after_stage1.pt")
    stage2 = run_bundle("training", ["train.yaml"], *paths, *WORKERS, "--resume")
    return root, paths, weights, (root / "stage1.log").read_text(), stage2.stdout + stage2.stderr


def test_stage1_trains_the_head_on_an_unchanged_pretrained_backbone(trained):
    root, _, weights, log, _ = trained
    pretrained = torch.load(weights, weights_only=True)
    after_stage1 = torch.load(root / "after_stage1.pt", weights_only=True)
    backbone = backbone_state(after_stage1["model"])
    assert backbone and all(torch.equal(backbone[k], pretrained[k]) for k in backbone)
    assert after_stage1["finetuning"]["stage"] == 1
    assert "stage 1" in log and "trainable parameters" in log


def test_stage2_resumes_at_the_boundary_with_two_learning_rates(trained):
    root, _, weights, _, log = trained
    ckpt_dir = root / "bundle" / "models" / "fold0"
    assert_resumed(log, ckpt_dir / "last_checkpoint_epoch=2.pt", epochs=4)
    assert "stage 2" in log
    state = torch.load(ckpt_dir / "last_checkpoint_epoch=4.pt", weights_only=True)
    assert state["finetuning"]["stage"] == 2
    assert state["trainer"]["iteration"] // state["trainer"]["epoch_length"] == 4
    lrs = {group["name"]: group["lr"] for group in state["finetuning"]["optimizer"]["param_groups"]}
    assert set(lrs) == {"backbone", "head"} and 0 < lrs["backbone"] < lrs["head"]
    pretrained = torch.load(weights, weights_only=True)
    backbone = backbone_state(state["model"])
    assert any(not torch.equal(backbone[k], pretrained[k]) for k in backbone), "stage 2 did not train the backbone"
    best = torch.load(ckpt_dir / "model.pt", weights_only=True)
    assert best["config"]["class_names"] == list(CHEST_XRAY_CLASSES) and best["config"]["image_size"] == [48, 48]
    events = list((root / "bundle" / "outputs" / "fold0" / "tensorboard").glob("events.out.tfevents.*"))
    assert events and "val_accuracy" in log and "val_auroc_tuberculosis" in log


def test_the_killed_and_resumed_run_equals_an_uninterrupted_one(trained, tmp_path):
    root, paths, _, _, _ = trained
    uninterrupted = [*paths[:2], "--bundle_root", str(tmp_path), *paths[4:]]
    log = run_bundle("training", ["train.yaml"], *uninterrupted, *WORKERS)
    assert trained_epochs(log.stdout + log.stderr) == [1, 2, 3, 4]
    for name in ("last_checkpoint_epoch=4.pt", "model.pt"):
        reference = torch.load(tmp_path / "models" / "fold0" / name, weights_only=True)
        resumed = torch.load(root / "bundle" / "models" / "fold0" / name, weights_only=True)
        assert_same_state(reference, resumed, name)


def assert_metrics_recomputed(out: Path) -> None:
    """metrics.json's accuracy, macro F1 and macro (one-vs-rest) AUROC equal scikit-learn's on the
    predictions_image.csv written beside it, with the true classes read from their names."""
    metrics = json.loads((out / "metrics.json").read_text())["image"]
    predictions = pd.read_csv(out / "predictions_image.csv")
    names = list(CHEST_XRAY_CLASSES)
    probabilities = predictions[[f"prob_{name}" for name in names]].to_numpy()
    truth = np.array([names.index(name) for name in predictions["label_class"]])
    predicted = probabilities.argmax(axis=1)
    assert predictions["pred_class"].tolist() == [names[k] for k in predicted]
    assert metrics["accuracy"] == pytest.approx(accuracy_score(truth, predicted), abs=1e-6)
    assert metrics["macro_f1"] == pytest.approx(f1_score(truth, predicted, average="macro"), abs=1e-6)
    auroc = roc_auc_score(truth, probabilities, multi_class="ovr", average="macro", labels=range(len(names)))
    assert metrics["macro_auroc"] == pytest.approx(auroc, abs=1e-6)


def test_evaluate_writes_metrics_predictions_and_confusion_matrix(trained):
    root, paths, _, _, _ = trained
    run_here("evaluating", ["train.yaml", "evaluate.yaml"], *paths[:4], "--num_workers", "0")
    out = root / "bundle" / "outputs" / "fold0"
    metrics = json.loads((out / "metrics.json").read_text())["image"]
    assert 0.0 <= metrics["accuracy"] <= 1.0 and set(metrics["per_class"]) == set(CHEST_XRAY_CLASSES)
    predictions = pd.read_csv(out / "predictions_image.csv")
    assert len(predictions) == 5 * 3 and metrics["n"] == 5 * 3
    probabilities = predictions[[f"prob_{name}" for name in CHEST_XRAY_CLASSES]].to_numpy()
    assert np.allclose(probabilities.sum(1), 1.0, atol=1e-4)
    matrix = pd.read_csv(out / "confusion_matrix.csv", index_col=0)
    assert list(matrix.columns) == list(CHEST_XRAY_CLASSES) and matrix.to_numpy().sum() == 15
    assert (out / "confusion_matrix.png").is_file()
    assert_metrics_recomputed(out)
    test = run_bundle("evaluating", ["train.yaml", "evaluate.yaml"], *paths[:4], "--num_workers", "0", "--eval_split", "test")
    assert json.loads((out / "test" / "metrics.json").read_text())["image"]["n"] == 5 * 2
    assert_metrics_recomputed(out / "test")
    log = test.stdout + test.stderr  # named for the split evaluated, not the validation fold
    assert "caching test" in log and "per-class test scores" in log and "best metric of test_accuracy" in log
    assert "test_auroc_normal" in log and not re.search(r"\bval_", log) and "caching validation" not in log
    assert "nvImageCodec" not in log  # MONAI's GPU DICOM reader, built beside ours, is not ours to report on


def test_inference_predicts_a_folder_to_csv(trained):
    root, _, _, _, _ = trained
    run_bundle("run", ["inference.yaml"], "--bundle_root", str(root / "bundle"), "--input", str(root / "data" / "test"),
               "--num_workers", "0")
    predictions = pd.read_csv(root / "bundle" / "outputs" / "fold0" / "inference" / "predictions_image.csv")
    assert len(predictions) == 5 * 2 and set(predictions["pred_class"]) <= set(CHEST_XRAY_CLASSES)
    assert "label" not in predictions and f"prob_{CHEST_XRAY_CLASSES[0]}" in predictions


def test_compare_ranks_every_checkpoint(trained, tmp_path):
    root, _, _, _, _ = trained
    second = root / "runs" / "copy" / "models" / "fold0"
    second.mkdir(parents=True, exist_ok=True)
    shutil.copy(root / "bundle" / "models" / "fold0" / "model.pt", second / "model.pt")
    command = [sys.executable, "-c", "from medbundle.cli import main; main()", "compare", "--bundle", str(CONFIGS.parent),
               "--runs", str(root), "--out", str(tmp_path), "--dataset_dir", str(root / "data"), "--num_workers", "0",
               "--progress", "False"]
    result = subprocess.run(command, check=False, cwd=REPO, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", "PAGER": "cat"})
    assert result.returncode == 0, result.stderr[-4000:]
    table = pd.read_csv(tmp_path / "compare.csv")
    assert sorted(table["run"]) == ["bundle/fold0", "runs/copy/fold0"]
    assert {"accuracy", "macro_f1", "macro_auroc", "params", "images/s"} <= set(table.columns)
    assert table["accuracy"].is_monotonic_decreasing and (table["params"] > 0).all()
    assert "| run |" in (tmp_path / "compare.md").read_text() and "macro_f1" in result.stdout
    assert "source you trust" not in result.stdout + result.stderr  # the medbundle command runs configs it was given


def test_unknown_class_folder_is_named_in_the_error(trained, tmp_path):
    root, _, _, _, _ = trained
    data = tmp_path / "data"
    shutil.copytree(root / "data", data)
    (data / "train" / "Pneumothorax").mkdir()
    shutil.copy(next((data / "train" / "Normal").iterdir()), data / "train" / "Pneumothorax")
    with pytest.raises(Exception) as stopped:
        run_here("training", ["train.yaml"], "--dataset_dir", str(data), "--bundle_root", str(tmp_path / "b"), *TINY,
                 "--pretrained", "False")
    cause = str(root_cause(stopped.value))  # what the command prints last
    assert "Pneumothorax" in cause and "Tuberculosis" in cause


def test_a_data_set_without_tuberculosis_trains_a_four_class_model(trained, tmp_path):
    root, _, _, _, _ = trained
    data = tmp_path / "data"
    shutil.copytree(root / "data", data)
    for split in ("train", "val", "test"):
        shutil.rmtree(data / split / "Tuberculosis")
    paths = ["--dataset_dir", str(data), "--bundle_root", str(tmp_path / "b"), "--pretrained", "False"]
    log = run_here("training", ["train.yaml"], *paths, *TINY, "--epochs", "1", "--stage1", "False")
    assert "undefined" not in log.lower() and "Epoch[1] Complete" in log
    best = torch.load(tmp_path / "b" / "models" / "fold0" / "model.pt", weights_only=True)
    assert best["config"]["class_names"] == ["Viral Pneumonia", "Bacterial Pneumonia", "Corona Virus Disease", "Normal"]
    assert best["config"]["num_classes"] == 4
    run_here("evaluating", ["train.yaml", "evaluate.yaml"], *paths[:4], "--num_workers", "0", "--eval_split", "test")
    metrics = (tmp_path / "b" / "outputs" / "fold0" / "test" / "metrics.json").read_text()
    assert "Normal" in metrics and "Tuberculosis" not in metrics


def test_stage2_start_best_starts_stage2_from_the_best_validated_stage1_head(trained, tmp_path):
    """--stage2_start best with the bundle's MONAI evaluator: the boundary names the stage-1 epoch with the highest
    val_accuracy (the later one of a tie)."""
    root, _, _, _, _ = trained
    paths = ["--dataset_dir", str(root / "data"), "--bundle_root", str(tmp_path / "b"), "--pretrained", "False"]
    log = run_here("training", ["train.yaml"], *paths, *TINY, "--epochs", "4", "--stage1_epochs", "3",
                   "--stage2_start", "best")  # fmt: skip
    accuracy = {int(e): float(v) for e, v in re.findall(r"Epoch\[(\d+)\] Metrics -- val_accuracy: ([\d.]+)", log)}
    best = max(e for e in (1, 2, 3) if accuracy[e] == max(accuracy[1], accuracy[2], accuracy[3]))
    assert f"stage 2 starts from the head of stage-1 epoch {best}, the best ({accuracy[best]:.4f})" in log
    assert trained_epochs(log) == [1, 2, 3, 4]


def test_corrupt_png_is_skipped_and_counted_when_asked(trained, tmp_path):
    root, _, _, _, _ = trained
    data = tmp_path / "data"
    shutil.copytree(root / "data", data)
    victim = next((data / "train" / "Normal").glob("*.png"))
    victim.write_bytes(victim.read_bytes()[: len(victim.read_bytes()) // 2])
    paths = ["--dataset_dir", str(data), "--bundle_root", str(tmp_path / "b"), "--pretrained", "False"]
    with pytest.raises(Exception) as stopped:
        run_here("training", ["train.yaml"], *paths, *TINY, "--epochs", "1", "--stage1", "False")
    assert victim.name in str(root_cause(stopped.value))  # what the command prints last
    log = run_here("training", ["train.yaml"], *paths, *TINY, "--epochs", "1", "--stage1", "False",
                   "--skip_bad_images", "True")
    assert "skipped 1 of" in log and victim.name in log


@pytest.mark.parametrize(
    ("configs", "workflow_type"),
    [(["train.yaml"], "train"), (["train.yaml", "evaluate.yaml"], "train"), (["inference.yaml"], "infer")],
)
def test_workflow_properties_are_complete(trained, configs, workflow_type):
    root, _, _, _, _ = trained
    workflow = ConfigWorkflow(
        config_file=[str(CONFIGS / c) for c in configs],
        workflow_type=workflow_type,
        dataset_dir=str(root / "data"),
        bundle_root=str(root / "bundle"),
        model="resnet10t",
        image_size=[48, 48],
        pretrained=False,
        num_workers=0,
        progress=False,
    )
    workflow.initialize()
    assert workflow.check_properties() == []


def test_evaluation_scores_the_patient_fold_the_checkpoint_was_trained_on(trained, tmp_path):
    from monai.bundle import ConfigParser

    from medbundle.data import chest_xray_split

    root, _, _, _, _ = trained
    state = torch.load(root / "bundle" / "models" / "fold0" / "model.pt", weights_only=True)
    state["config"] |= {"patients_csv": "patients.csv", "n_folds": 2, "seed": 7}
    torch.save(state, tmp_path / "model.pt")
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "train.yaml"), str(CONFIGS / "evaluate.yaml")])
    parser.update({"dataset_dir": str(root / "data"), "ckpt_path": str(tmp_path / "model.pt")})
    expected = chest_xray_split(root / "data", fold=0, n_folds=2, seed=7, patients_csv="patients.csv")[1]
    assert parser.get_parsed_content("validate#datalist") == expected


@pytest.mark.parametrize("bundle", ["chest_xray", "classify"])
def test_stage2_keeps_batchnorm_statistics_only_when_there_are_pretrained_ones(bundle):
    """Pretrained weights: BatchNorm stays frozen in stage 2 (real_cxr kept its accuracy at the boundary); from
    scratch, frozen initial statistics left the chest demo at chance (0.21 against 0.97), so it trains them."""
    from monai.bundle import ConfigParser

    def batchnorm(**overrides) -> str:
        parser = ConfigParser()
        parser.read_config(str(REPO / "bundles" / bundle / "configs" / "train.yaml"))
        parser.update(overrides)
        return parser.get_parsed_content("stage2_batchnorm")

    assert batchnorm() == "frozen"
    assert batchnorm(pretrained=False) == "train"
    assert batchnorm(pretrained=False, pretrained_file="/weights/lite0.pth") == "frozen"
