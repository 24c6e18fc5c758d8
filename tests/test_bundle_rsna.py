"""End to end: the real ``python -m monai.bundle`` commands of the rsna bundle on generated demo data; the resumed
run and the run over a truncated DICOM call what the command calls in this process (``bundle_here``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import as_overrides, assert_resumed, blank_dicom, host_pfbeta, run_in_process
from monai.bundle import ConfigWorkflow
from sklearn.metrics import roc_auc_score

from medbundle.data import rsna_datalist, split_fold
from medbundle.demo import write_rsna_demo

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "bundles" / "rsna" / "configs"
NETWORK = ["--backbone", "resnet10t", "--head", "linear", "--image_size", "[64,32]", "--num_workers", "0"]
TINY = [*NETWORK, "--pretrained", "False", "--batch_size", "8", "--pos_per_batch", "2", "--n_folds", "3",
        "--learning_rate", "0.001"]


def bundle(run_id: str, configs: list[str], *overrides: str) -> subprocess.CompletedProcess:
    files = [str(CONFIGS / name) for name in configs]
    command = [sys.executable, "-m", "monai.bundle", "run", run_id, "--config_file", repr(files),
               "--logging_file", str(CONFIGS / "logging.conf"), *overrides]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(command, check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


def bundle_here(run_id: str, configs: list[str], *overrides: str) -> str:
    """`bundle` in this process (conftest's run_in_process); what it printed. The command with --resume runs in
    test_resume_exact (rsna, kill -9) and test_bundle_chest_xray."""
    return run_in_process([CONFIGS / name for name in configs], run_id, **as_overrides(overrides))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Demo data, one validation image blank, and a 2-epoch training run, shared by the tests below."""
    root = tmp_path_factory.mktemp("rsna")
    data = root / "data"
    write_rsna_demo(data, n_patients=24, positive_rate=0.1, n_test_patients=3, image_shape=(256, 208), seed=1)
    blank_dicom(Path(split_fold(rsna_datalist(data), 0, n_splits=3, seed=42)[1][0]["image"]))
    paths = ["--dataset_dir", str(data), "--bundle_root", str(root / "bundle")]
    result = bundle("training", ["train.yaml"], *paths, *TINY, "--epochs", "2")
    return root, paths, result


def test_training_writes_checkpoints_thresholds_and_tensorboard(trained):
    root, _, result = trained
    ckpt_dir = root / "bundle" / "models" / "fold0"
    assert (ckpt_dir / "model.pt").is_file() and (ckpt_dir / "last_checkpoint_epoch=2.pt").is_file()
    best = torch.load(ckpt_dir / "model.pt", weights_only=True)
    assert set(best) == {"model", "thresholds", "config"}
    assert best["config"] == {"task": "rsna", "backbone": "resnet10t", "head": "linear", "in_chans": 1,
                              "num_classes": 1, "image_size": [64, 32], "aggregation": "mean", "reduced_decode": True,
                              "n_folds": 3, "seed": 42}
    assert 0.0 <= best["thresholds"]["pf1_threshold"] <= 1.0
    events = list((root / "bundle" / "outputs" / "fold0" / "tensorboard").glob("events.out.tfevents.*"))
    assert events, "TensorBoard event file missing"
    log = result.stdout + result.stderr
    assert "val_auroc" in log and "val_pf1_threshold" in log


def test_training_reports_the_crop_of_both_splits_before_the_first_epoch(trained):
    root, _, result = trained
    log = result.stdout + result.stderr
    report = root / "bundle" / "outputs" / "fold0" / "crop_report.csv"
    frame = pd.read_csv(report, dtype={"image_id": str}, keep_default_na=False)
    n_train, n_val = (frame["split"] == "train").sum(), (frame["split"] == "validation").sum()
    assert n_train + n_val == len(pd.read_csv(root / "data" / "train.csv"))
    train_line = f"crop (train): breast found in {n_train} of {n_train} images; whole image kept for 0 ({report})"
    val_line = f"crop (validation): breast found in {n_val - 1} of {n_val} images; whole image kept for 1 ({report})"
    assert train_line in log and val_line in log
    assert log.index(val_line) < log.index("Epoch[1]")
    kept = frame[~frame["found"]]
    assert kept["split"].tolist() == ["validation"] and "blank or constant" in kept["note"].iloc[0]
    assert frame.loc[frame["found"], "box_area"].between(0.2, 1.0).all()
    assert "!!! crop" not in log  # 1 of ~30 is under crop_fallback_warn


def test_resume_continues_epochs_and_best_metric(trained):
    root, paths, _ = trained
    ckpt_dir = root / "bundle" / "models" / "fold0"
    before = torch.load(ckpt_dir / "last_checkpoint_epoch=2.pt", weights_only=True)
    log = bundle_here("training", ["train.yaml"], *paths, *TINY, "--epochs", "3", "--resume", "True")
    assert_resumed(log, ckpt_dir / "last_checkpoint_epoch=2.pt", epochs=3)
    after = torch.load(ckpt_dir / "last_checkpoint_epoch=3.pt", weights_only=True)
    assert not (ckpt_dir / "last_checkpoint_epoch=2.pt").exists(), "the resumed-from checkpoint was left behind"
    epochs = [state["trainer"]["iteration"] // state["trainer"]["epoch_length"] for state in (before, after)]
    assert epochs == [2, 3]
    assert after["validation"]["best_metric"] >= before["validation"]["best_metric"]
    if after["validation"]["best_metric_epoch"] != 3:  # no improvement: the restored best must be kept as it was
        assert after["validation"]["best_metric"] == before["validation"]["best_metric"]
        assert after["validation"]["best_metric_epoch"] == before["validation"]["best_metric_epoch"]


def test_evaluate_writes_metrics_and_predictions(trained):
    """No network flags are repeated: backbone, head and image size come from the checkpoint. The crop report of the
    validation split warns loudly when its share kept whole passes crop_fallback_warn."""
    root, paths, _ = trained
    result = bundle("evaluating", ["train.yaml", "evaluate.yaml"], *paths, "--num_workers", "0",
                    "--crop_fallback_warn", "0.01")  # fmt: skip
    log = result.stdout + result.stderr
    assert "crop (validation): breast found in" in log and "whole image kept for 1" in log
    assert "!!! crop (validation): no breast found in 1 of" in log and "above crop_fallback_warn=1%" in log
    out = root / "bundle" / "outputs" / "fold0"
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"image", "breast", "threshold"} <= set(metrics)
    assert 0.0 <= metrics["breast"]["auroc"] <= 1.0
    images, breasts = pd.read_csv(out / "predictions_image.csv"), pd.read_csv(out / "predictions_breast.csv")
    assert len(images) > len(breasts) > 0
    assert images["pred"].between(0, 1).all()
    # recomputed from the CSVs with the competition's pF1 and scikit-learn; a breast is the mean of its images
    by_breast = images.groupby("breast_id", sort=False).agg(pred=("pred", "mean"), label=("label", "max"))
    assert by_breast.index.tolist() == breasts["breast_id"].tolist()
    np.testing.assert_allclose(breasts["pred"], by_breast["pred"], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(breasts["label"], by_breast["label"])
    assert 0 < breasts["label"].sum() < len(breasts)
    for level, frame in (("image", images), ("breast", breasts)):
        labels, scores = frame["label"].to_numpy(), frame["pred"].to_numpy()
        assert metrics[level]["pf1_prob"] == pytest.approx(host_pfbeta(labels, scores), abs=1e-6)
        assert metrics[level]["auroc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-6)
        decided = (scores >= metrics["threshold"]).astype(float)
        assert metrics[level]["pf1_at_threshold"] == pytest.approx(host_pfbeta(labels, decided), abs=1e-6)


def test_inference_writes_kaggle_submission(trained):
    root, paths, _ = trained
    result = bundle("run", ["inference.yaml"], *paths, "--num_workers", "0")  # network settings read from the checkpoint
    submission = pd.read_csv(root / "bundle" / "outputs" / "fold0" / "submission.csv")
    n_test = len(pd.read_csv(root / "data" / "test.csv"))
    assert f"crop (test): breast found in {n_test} of {n_test} images" in result.stdout + result.stderr
    crops = pd.read_csv(root / "bundle" / "outputs" / "fold0" / "crop_report.csv")
    assert (crops["split"] == "test").sum() == n_test
    test = pd.read_csv(root / "data" / "test.csv")
    assert list(submission.columns) == ["prediction_id", "cancer"]
    assert sorted(submission["prediction_id"]) == sorted(test["prediction_id"].unique())
    assert set(submission["cancer"]) <= {0, 1}


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
        backbone="resnet10t",
        head="linear",
        image_size=[64, 32],
        pretrained=False,
        n_folds=3,
        num_workers=0,
        progress=False,
    )
    workflow.initialize()
    assert workflow.check_properties() == []


@pytest.mark.slow
def test_same_seed_gives_the_same_model(trained, tmp_path):
    root, _, _ = trained
    weights = []
    for run in ("a", "b"):
        paths = ["--dataset_dir", str(root / "data"), "--bundle_root", str(tmp_path / run)]
        bundle("training", ["train.yaml"], *paths, *TINY, "--epochs", "1", "--num_workers", "2")
        weights.append(torch.load(tmp_path / run / "models" / "fold0" / "model.pt", weights_only=True)["model"])
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_unreadable_dicom_is_skipped_and_counted_when_asked(trained, tmp_path):
    root, _, _ = trained
    data = tmp_path / "data"
    shutil.copytree(root / "data", data)
    victim = next((data / "train_images").rglob("*.dcm"))
    victim.write_bytes(victim.read_bytes()[:2000])  # truncated mid-header: pydicom cannot parse it
    paths = ["--dataset_dir", str(data), "--bundle_root", str(tmp_path / "bundle")]
    log = bundle_here("training", ["train.yaml"], *paths, *TINY, "--epochs", "1", "--skip_bad_images", "True")
    assert "skipped 1 of" in log and victim.name in log
