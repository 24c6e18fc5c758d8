"""End to end: the ensemble bundle over two tiny isic members of different image sizes, trained in this process, its
evaluation through the real command against a hand computation; chest_xray and rsna runs over saved tiny members;
the ad-hoc command; metadata."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import as_overrides, run_in_process
from monai.bundle import run, verify_metadata
from sklearn.metrics import roc_auc_score

from medbundle.cli import report as report_command
from medbundle.data import CHEST_XRAY_CLASSES
from medbundle.demo import write_chest_xray_demo, write_isic_demo, write_rsna_demo
from medbundle.ensemble import ensemble
from medbundle.metrics import partial_auc
from medbundle.networks import TimmClassifier

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "bundles" / "ensemble" / "configs"
ISIC_CONFIGS = REPO / "bundles" / "isic" / "configs"
SCHEMA = REPO.parent / "shared" / "schema" / "meta_schema_20240725.json"
SIZES = {"r48": "[48,48]", "r40": "[40,40]"}  # two members at different image sizes, on purpose
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}


def bundle_command(run_id: str, configs: list[Path], *overrides: str) -> list[str]:
    return [sys.executable, "-m", "monai.bundle", "run", run_id, "--config_file", repr([str(c) for c in configs]),
            "--logging_file", str(CONFIGS / "logging.conf"), *overrides]


def run_command(command: list[str]) -> None:
    done = subprocess.run(command, check=False, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]


@pytest.fixture(scope="module")
def isic(tmp_path_factory):
    """Two resnet10t members trained for one epoch on fold 0 (in this process), laid out as
    <root>/<model>/fold_0/model.pt, and the ensemble bundle run over them with soft voting (and its report: the real
    command) and with hard_weighted voting (in this process)."""
    root = tmp_path_factory.mktemp("ensemble")
    data = root / "data"
    write_isic_demo(data, n_patients=24, positive_rate=0.15, n_test=6, size_range=(40, 64), seed=5)
    tiny = ["--model", "resnet10t", "--pretrained", "False", "--batch_size", "16", "--num_workers", "0", "--epochs", "1",
            "--val_interval", "1", "--min_epochs", "0", "--n_folds", "3", "--learning_rate", "1e-3", "--progress", "False"]
    for name, size in SIZES.items():
        run_in_process(ISIC_CONFIGS / "train.yaml", "training", **as_overrides(
            ["--dataset_dir", str(data), "--bundle_root", str(root / "train" / name), "--image_size", size, *tiny]))
    checkpoints = root / "checkpoints"
    for name in SIZES:
        (checkpoints / name / "fold_0").mkdir(parents=True)
        shutil.copy(root / "train" / name / "models" / "fold0" / "model.pt", checkpoints / name / "fold_0" / "model.pt")
    common = ["--task", "isic", "--checkpoints", str(checkpoints), "--dataset_dir", str(data), "--num_workers", "0",
              "--report_k", "1", "--report_resamples", "50"]
    run_command(bundle_command("evaluating", [CONFIGS / "evaluate.yaml"], *common, "--strategy", "soft",
                               "--output_dir", str(root / "soft"), "--report", "True"))
    run_in_process(CONFIGS / "evaluate.yaml", "evaluating", **as_overrides(
        [*common, "--strategy", "hard_weighted", "--output_dir", str(root / "hard_weighted"), "--report", "False"]))
    return root, data, checkpoints


def stored(checkpoints: Path, name: str) -> dict:
    return torch.load(checkpoints / name / "fold_0" / "model.pt", weights_only=True)


def member_columns(predictions: pd.DataFrame) -> np.ndarray:
    return np.stack([predictions[f"{name}/fold_0"].to_numpy() for name in sorted(SIZES)])


def test_each_member_sees_its_own_image_size_as_its_bundle_evaluation_does(isic):
    root, data, checkpoints = isic
    ensembled = pd.read_csv(root / "soft" / "predictions_image.csv", dtype={"image_id": str})
    for name in SIZES:
        out = root / "own" / name
        run(run_id="evaluating", config_file=[str(ISIC_CONFIGS / "train.yaml"), str(ISIC_CONFIGS / "evaluate.yaml")],
            dataset_dir=str(data), ckpt_path=str(checkpoints / name / "fold_0" / "model.pt"), output_dir=str(out),
            num_workers=0, progress=False, report=False)
        own = pd.read_csv(out / "predictions_image.csv", dtype={"image_id": str})
        assert own["image_id"].tolist() == ensembled["image_id"].tolist()
        np.testing.assert_allclose(ensembled[f"{name}/fold_0"], own["pred"], atol=1e-6)
    assert not np.allclose(ensembled["r40/fold_0"], ensembled["r48/fold_0"])


def test_soft_ensemble_is_the_mean_probability_at_the_mean_roc_threshold(isic):
    root, _, checkpoints = isic
    predictions = pd.read_csv(root / "soft" / "predictions_image.csv", dtype={"image_id": str})
    probabilities = member_columns(predictions)
    threshold = np.mean([stored(checkpoints, name)["thresholds"]["roc_threshold"] for name in sorted(SIZES)])
    mean = probabilities.mean(0)
    np.testing.assert_allclose(predictions["ensemble"], mean, rtol=1e-6)
    np.testing.assert_array_equal(predictions["ensemble_label"], (mean >= threshold).astype(int))
    metrics = json.loads((root / "soft" / "metrics.json").read_text())
    labels = predictions["label"].to_numpy()
    assert metrics["threshold"] == pytest.approx(threshold)
    assert metrics["image"]["auroc"] == pytest.approx(roc_auc_score(labels, mean))
    assert metrics["image"]["pauc"] == pytest.approx(partial_auc(labels, mean, min_tpr=0.8))
    table = pd.read_csv(root / "soft" / "members.csv").set_index("member")
    assert table.index.tolist() == ["r40/fold_0", "r48/fold_0", "ensemble"]
    assert table.loc["r48/fold_0", "image_size"] == "48x48" and table.loc["r40/fold_0", "image_size"] == "40x40"
    for name in SIZES:
        assert table.loc[f"{name}/fold_0", "auroc"] == pytest.approx(roc_auc_score(labels, predictions[f"{name}/fold_0"]))
    assert table.loc["ensemble", "pauc"] == pytest.approx(metrics["image"]["pauc"])
    submission = pd.read_csv(root / "soft" / "submission.csv", dtype={"isic_id": str})
    assert submission["isic_id"].tolist() == predictions["image_id"].tolist()
    np.testing.assert_allclose(submission["target"], mean, rtol=1e-6)
    assert (root / "soft" / "members.md").read_text().startswith("| member |")


def test_hard_weighted_is_the_auroc_weighted_fraction_of_own_threshold_votes(isic):
    root, _, checkpoints = isic
    predictions = pd.read_csv(root / "hard_weighted" / "predictions_image.csv", dtype={"image_id": str})
    thresholds = [stored(checkpoints, name)["thresholds"] for name in sorted(SIZES)]
    votes = member_columns(predictions) >= np.array([[t["roc_threshold"]] for t in thresholds])
    weights = np.array([t["auroc"] for t in thresholds])
    fraction = (weights[:, None] * votes).sum(0) / weights.sum()
    np.testing.assert_allclose(predictions["ensemble"], fraction, rtol=1e-6)
    np.testing.assert_array_equal(predictions["ensemble_label"], (fraction >= 0.5).astype(int))
    metrics = json.loads((root / "hard_weighted" / "metrics.json").read_text())
    assert metrics["threshold"] == 0.5 and metrics["weights"] == pytest.approx(weights.tolist())
    assert metrics["image"]["auroc"] == pytest.approx(roc_auc_score(predictions["label"], fraction))
    soft = pd.read_csv(root / "soft" / "predictions_image.csv", dtype={"image_id": str})
    np.testing.assert_allclose(member_columns(predictions), member_columns(soft))


def test_the_report_is_the_ensembles_and_medbundle_report_rebuilds_it(isic):
    root, _, checkpoints = isic
    folder = root / "soft" / "report"
    report = json.loads((folder / "report.json").read_text())
    metrics = json.loads((root / "soft" / "metrics.json").read_text())
    auroc = next(row["estimate"] for row in report["headline"] if (row["metric"], row["level"]) == ("AUROC", "image"))
    assert auroc == pytest.approx(metrics["image"]["auroc"]) and report["settings"]["threshold"] == metrics["threshold"]
    assert [row["member"] for row in report["members"]] == ["r40/fold_0", "r48/fold_0", "ensemble"]
    evidence = checkpoints / "r40" / "fold_0" / "model.pt"  # the first member by path explains
    assert f"evidence maps: member {evidence} " in " ".join(report["notes"])
    shown = sum(len(section["items"]) for section in report["evidence"])
    assert 0 < shown <= 3 and len(list((folder / "evidence").glob("*.png"))) == shown
    for name in SIZES:  # nothing stored in the members: each is still the file its training wrote
        assert filecmp.cmp(checkpoints / name / "fold_0" / "model.pt", root / "train" / name / "models" / "fold0" / "model.pt",
                           shallow=False)  # fmt: skip
    (folder / "index.html").unlink()
    assert report_command(run=str(root / "soft"), k=0, n_resamples=20) == str(folder / "index.html")  # medbundle report
    assert "ensemble of 2 members (soft)" in (folder / "index.html").read_text()
    rebuilt = json.loads((folder / "report.json").read_text())
    assert rebuilt["members"] == report["members"] and not any(section["items"] for section in rebuilt["evidence"])


def test_command_predicts_image_files_like_the_ensemble_inference_bundle(isic, tmp_path):
    _, data, checkpoints = isic
    images = tmp_path / "crops"
    images.mkdir()
    with h5py.File(data / "test-image.hdf5", "r") as file:
        for key in file:
            (images / f"{key}.jpg").write_bytes(file[key][()])
    written = ensemble(task="isic", checkpoints=str(checkpoints), image_dir=str(images), strategy="hard_weighted",
                       output_csv=str(tmp_path / "out.csv"))
    rows = pd.read_csv(written, dtype={"image_id": str})
    assert list(rows.columns) == ["image", "image_id", "r40/fold_0", "r48/fold_0", "ensemble", "ensemble_label"]
    run(run_id="run", config_file=str(CONFIGS / "inference.yaml"), task="isic", checkpoints=str(checkpoints),
        dataset_dir=str(data), output_dir=str(tmp_path / "inference"), strategy="hard_weighted", num_workers=0)
    bundle = pd.read_csv(tmp_path / "inference" / "predictions_image.csv", dtype={"image_id": str}).set_index("image_id")
    bundle = bundle.loc[rows["image_id"]]
    for column in ("r40/fold_0", "r48/fold_0", "ensemble"):
        np.testing.assert_allclose(rows[column], bundle[column], atol=1e-6)
    submission = pd.read_csv(tmp_path / "inference" / "submission.csv", dtype={"isic_id": str})
    assert submission["isic_id"].tolist() == pd.read_csv(data / "test-metadata.csv", dtype=str)["isic_id"].tolist()


def test_console_command_takes_several_images_after_one_flag(isic, tmp_path):
    _, data, checkpoints = isic
    files = []
    with h5py.File(data / "test-image.hdf5", "r") as file:
        for key in list(file)[:2]:
            files.append(tmp_path / f"{key}.jpg")
            files[-1].write_bytes(file[key][()])
    command = [sys.executable, "-c", "from medbundle.cli import main; main()", "ensemble", "--task", "isic",
               "--checkpoints", str(checkpoints), "--images", *map(str, files), "--strategy", "hard_weighted",
               "--output_csv", str(tmp_path / "out.csv")]
    result = subprocess.run(command, cwd=REPO, env={**ENV, "PAGER": "cat"}, capture_output=True, text=True, timeout=300,
                            check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = pd.read_csv(tmp_path / "out.csv", dtype={"image_id": str})
    assert rows["image_id"].tolist() == [f.stem for f in files] and rows["ensemble"].between(0, 1).all()


@pytest.fixture(scope="module")
def chest(tmp_path_factory):
    """Tiny chest_xray demo data and two untrained members saved as a training run would: 32 px, and 40 px with CLAHE."""
    root = tmp_path_factory.mktemp("chest")
    write_chest_xray_demo(root / "data", n_train=1, n_val=1, n_test=2, size_range=(64, 80), seed=0)
    for seed, (name, size, clahe) in enumerate([("small", [32, 32], False), ("clahe", [40, 40], True)]):
        torch.manual_seed(seed)
        network = TimmClassifier("resnet10t", num_classes=len(CHEST_XRAY_CLASSES), head="mlp", head_hidden=16)
        config = {"task": "chest_xray", "model": "resnet10t", "backbone": "resnet10t", "head": "mlp", "head_hidden": 16,
                  "in_chans": 3, "num_classes": 5, "class_names": list(CHEST_XRAY_CLASSES), "image_size": size,
                  "clahe": clahe, "norm_stats": None, "n_folds": 5, "seed": 42, "patients_csv": None}
        path = root / "checkpoints" / name / "models" / "fold0" / "model.pt"
        path.parent.mkdir(parents=True)
        torch.save({"model": network.state_dict(), "config": config}, path)
    return root


def test_chest_xray_weighted_mean_on_the_test_folder(chest):
    out = chest / "out"
    run(run_id="evaluating", config_file=str(CONFIGS / "evaluate.yaml"), task="chest_xray",
        checkpoints=str(chest / "checkpoints"), dataset_dir=str(chest / "data"), output_dir=str(out),
        strategy="weighted_mean", weights=[1.0, 3.0], num_workers=0, report_k=0, report_resamples=20)
    predictions = pd.read_csv(out / "predictions_image.csv")
    assert len(predictions) == 2 * len(CHEST_XRAY_CLASSES) and predictions["image_id"].str.startswith("test/").all()
    names = list(CHEST_XRAY_CLASSES)
    clahe, small = (predictions[[f"{m}/fold0:{c}" for c in names]].to_numpy() for m in ("clahe", "small"))
    expected = (clahe + 3 * small) / 4  # members sorted by path: clahe, small
    np.testing.assert_allclose(predictions[[f"ensemble:{c}" for c in names]], expected, rtol=1e-5)
    assert predictions["ensemble_class"].tolist() == [names[k] for k in expected.argmax(1)]
    table = pd.read_csv(out / "members.csv").set_index("member")
    assert table.loc["ensemble", "accuracy"] == pytest.approx(np.mean(expected.argmax(1) == predictions["label"]))
    assert set(table.columns) >= {"accuracy", "macro_f1", "macro_auroc"}
    assert pd.read_csv(out / "inference" / "predictions_image.csv")["pred_class"].isin(names).all()
    report = json.loads((out / "report" / "report.json").read_text())
    assert report["confusion"]["classes"] == names and np.sum(report["confusion"]["matrix"]) == len(predictions)
    files = sorted((chest / "data" / "test").rglob("*.*"))[:3]
    written = ensemble(task="chest_xray", checkpoints=str(chest / "checkpoints"), images=f"[{','.join(map(str, files))}]",
                       strategy="max", output_csv=str(chest / "command.csv"))  # a list as the shell passes it to fire
    rows = pd.read_csv(written)
    assert rows["image"].tolist() == [str(f) for f in files]
    np.testing.assert_allclose(rows[[f"ensemble:{c}" for c in names]],
                               np.maximum(*(rows[[f"{m}/fold0:{c}" for c in names]].to_numpy() for m in ("clahe", "small"))))


def test_metadata_validates_against_the_shared_schema():
    if not SCHEMA.is_file():
        pytest.skip(f"{SCHEMA} not present")
    verify_metadata(meta_file=str(CONFIGS / "metadata.json"), filepath=str(SCHEMA))


@pytest.fixture(scope="module")
def rsna(tmp_path_factory):
    """Tiny rsna demo DICOMs and two untrained one-channel members at 64x32 and 48x24, with stored thresholds."""
    root = tmp_path_factory.mktemp("rsna")
    write_rsna_demo(root / "data", n_patients=6, positive_rate=0.2, n_test_patients=2, image_shape=(128, 104), seed=1)
    for seed, (name, size) in enumerate([("wide", [64, 32]), ("narrow", [48, 24])]):
        torch.manual_seed(seed)
        network = TimmClassifier("resnet10t", num_classes=1, in_chans=1, head="linear")
        config = {"task": "rsna", "backbone": "resnet10t", "head": "linear", "in_chans": 1, "num_classes": 1,
                  "image_size": size, "aggregation": "mean", "n_folds": 3, "seed": 42}
        thresholds = {"pf1_threshold": 0.45 + seed / 10, "roc_threshold": 0.5, "auroc": 0.6 + seed / 10, "best_auroc": 0.8}
        path = root / "checkpoints" / name / "fold_0" / "model.pt"
        path.parent.mkdir(parents=True)
        torch.save({"model": network.state_dict(), "config": config, "thresholds": thresholds}, path)
    return root


def test_rsna_members_vote_per_breast_and_the_submission_has_one_row_per_test_breast(rsna):
    out = rsna / "out"
    common = {"task": "rsna", "checkpoints": str(rsna / "checkpoints"), "dataset_dir": str(rsna / "data"), "num_workers": 0}
    run(run_id="evaluating", config_file=str(CONFIGS / "evaluate.yaml"), output_dir=str(out), strategy="hard_weighted",
        report_k=0, report_resamples=20, **common)
    images = pd.read_csv(out / "predictions_image.csv", dtype=str)
    breasts = pd.read_csv(out / "predictions_breast.csv", dtype={"breast_id": str})
    members = ["narrow/fold_0", "wide/fold_0"]
    means = images.astype({m: float for m in members}).groupby("breast_id", sort=False)[members].mean()
    np.testing.assert_allclose(breasts[members], means.loc[breasts["breast_id"]].to_numpy())
    # narrow: pf1_threshold 0.55, AUROC 0.7; wide: 0.45, 0.6 (votes on the breast means)
    fraction = (0.7 * (breasts["narrow/fold_0"] >= 0.55) + 0.6 * (breasts["wide/fold_0"] >= 0.45)) / 1.3
    np.testing.assert_allclose(breasts["ensemble"], fraction, rtol=1e-6)
    table = pd.read_csv(out / "members.csv").set_index("member")
    assert {"pf1_at_threshold", "pf1_prob", "auroc"} <= set(table.columns)
    np.testing.assert_allclose(table["threshold"], [0.55, 0.45, 0.5])
    report = json.loads((out / "report" / "report.json").read_text())
    pf1 = next(row["estimate"] for row in report["headline"] if (row["metric"], row["level"]) == ("pF1", "breast"))
    assert pf1 == pytest.approx(table.loc["ensemble", "pf1_prob"])  # the ensemble's breast votes
    run(run_id="run", config_file=str(CONFIGS / "inference.yaml"), output_dir=str(rsna / "inference"), **common)
    submission = pd.read_csv(rsna / "inference" / "submission.csv", dtype=str)
    test = pd.read_csv(rsna / "data" / "test.csv", dtype=str)
    assert list(submission.columns) == ["prediction_id", "cancer"]
    assert submission["prediction_id"].tolist() == test["prediction_id"].drop_duplicates().tolist()
    assert set(submission["cancer"]) <= {"0", "1"}
    # each group of members (one image size each) reports what the breast crop did on its images
    crops = pd.read_csv(out / "crop_report.csv")
    assert set(crops["split"]) == {"validation for wide/fold_0", "validation for narrow/fold_0"}
    assert crops["found"].all() and len(crops) == 2 * len(images)
    assert (pd.read_csv(rsna / "inference" / "crop_report.csv")["split"].str.startswith("test for ")).all()
