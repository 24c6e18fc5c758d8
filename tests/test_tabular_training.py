"""isic's second stage through its commands: ``medbundle tabular`` on the demo metadata and an out-of-fold table
in the sweep's layout, then ``medbundle tabular_predict`` on the test metadata; bad input named.

The image scores here are drawn (a noisy function of the label, on the patient-grouped folds the bundle uses), so
the test runs in seconds; ``test_tabular_end_to_end`` (slow) takes them from a trained sweep instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medbundle.data.folds import grouped_folds
from medbundle.demo import write_isic_demo
from medbundle.tabular.image_scores import image_scores_of_test, oof_image_scores
from medbundle.tabular.model import TabularModel, blend_scores

pytest.importorskip("lightgbm")
REPO = Path(__file__).resolve().parents[1]


def medbundle(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "medbundle", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600, check=False, env={**os.environ, "PAGER": "cat"})  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def image_scores(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A mediocre image model: AUROC about 0.8."""
    return 1 / (1 + np.exp(-(1.2 * labels + rng.normal(0, 1, labels.size) - 3)))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("tabular")
    write_isic_demo(root / "data", n_patients=90, positive_rate=0.06, n_test=25, size_range=(32, 40), seed=4)
    train = pd.read_csv(root / "data" / "train-metadata.csv", dtype={"isic_id": str, "patient_id": str})
    rng = np.random.default_rng(0)
    oof = pd.DataFrame({"fold": grouped_folds(train["patient_id"].tolist(), train["target"], n_splits=3),
                        "image_id": train["isic_id"], "label": train["target"], "patient_id": train["patient_id"],
                        "pred": image_scores(train["target"].to_numpy(), rng)})  # fmt: skip
    (root / "runs" / "cv" / "resnet10t").mkdir(parents=True)
    oof.to_csv(root / "runs" / "cv" / "resnet10t" / "oof.csv", index=False)
    test = pd.read_csv(root / "data" / "test-metadata.csv", dtype={"isic_id": str})
    pd.DataFrame({"isic_id": test["isic_id"][::-1], "target": rng.random(len(test))}).to_csv(
        root / "test_scores.csv", index=False
    )
    printed = medbundle("tabular", "--dataset_dir", str(root / "data"), "--oof", str(root / "runs" / "cv"),
                        "--out", str(root / "tabular"), "--seeds", "0,1", "--boosters", "lightgbm,xgboost",
                        "--threads", "1")  # fmt: skip
    return root, printed


def test_the_report_has_the_four_entries_out_of_fold_and_the_models_of_every_fold(trained):
    root, printed = trained
    out = root / "tabular"
    assert printed.strip().endswith("report.md")
    report = json.loads((out / "report.json").read_text())
    assert list(report["entries"]) == ["image", "tabular", "tabular+image", "blend"]
    for entry in report["entries"].values():
        assert 0.0 <= entry["pauc"] <= 0.2 and 0.0 <= entry["auroc"] <= 1.0
    assert set(report["boosters"]) == {f"{b}:{v}" for b in ("lightgbm", "xgboost") for v in ("tabular", "tabular+image")}
    assert report["importance"] and abs(sum(pd.read_csv(out / "importance.csv")["gain"]) - 1.0) < 1e-6
    text = (out / "report.md").read_text()
    assert "| tabular+image |" in text and "| blend |" in text
    for booster in ("lightgbm", "xgboost"):
        assert all((out / "models" / booster / f"fold_{fold}").is_dir() for fold in range(3))

    oof = pd.read_csv(out / "oof.csv", dtype={"isic_id": str})
    train = pd.read_csv(root / "data" / "train-metadata.csv", dtype={"isic_id": str})
    assert oof["isic_id"].tolist() == train["isic_id"].tolist()
    from medbundle.metrics import partial_auc

    assert report["entries"]["blend"]["pauc"] == pytest.approx(partial_auc(oof["target"], oof["blend"]))
    np.testing.assert_allclose(oof["blend"], blend_scores(oof["tabular+image"], oof["image"], 0.25))


def test_the_submission_follows_the_test_csv_and_equals_the_model_folder_prediction(trained):
    root, _ = trained
    path = medbundle("tabular_predict", "--model", str(root / "tabular"), "--dataset_dir", str(root / "data"),
                     "--image_scores", str(root / "test_scores.csv")).strip()  # fmt: skip
    submission = pd.read_csv(path, dtype={"isic_id": str})
    test = pd.read_csv(root / "data" / "test-metadata.csv", dtype={"isic_id": str, "patient_id": str})
    assert submission.columns.tolist() == ["isic_id", "target"]
    assert submission["isic_id"].tolist() == test["isic_id"].tolist()
    expected = TabularModel.load(root / "tabular").predict(test, image_scores_of_test(root / "test_scores.csv"))
    np.testing.assert_allclose(submission["target"], expected["target"], atol=1e-12)
    assert submission["target"].between(0, 1).all() and submission["target"].nunique() > 1


def test_a_column_missing_from_the_test_csv_is_named(trained, tmp_path):
    root, _ = trained
    test = pd.read_csv(root / "data" / "test-metadata.csv", dtype={"isic_id": str, "patient_id": str})
    with pytest.raises(ValueError, match="tbp_lv_areaMM2"):
        TabularModel.load(root / "tabular").predict(test.drop(columns=["tbp_lv_areaMM2"]),
                                                    np.full(len(test), 0.1), source="test-metadata.csv")  # fmt: skip


def test_missing_out_of_fold_scores_and_absent_sweeps_say_what_to_do(trained, tmp_path):
    root, _ = trained
    with pytest.raises(FileNotFoundError, match="sweep.py oof"):
        oof_image_scores(tmp_path)
    oof = pd.read_csv(root / "runs" / "cv" / "resnet10t" / "oof.csv", dtype={"image_id": str})
    (tmp_path / "m").mkdir()
    oof.iloc[5:].to_csv(tmp_path / "m" / "oof.csv", index=False)
    from medbundle.tabular import train_tabular

    with pytest.raises(ValueError, match="5 of .* have no out-of-fold image score"):
        train_tabular(root / "data", tmp_path, tmp_path / "out", boosters=["lightgbm"], seeds=[0])


def test_the_torch_free_predictor_scores_a_lesion_from_its_crop_and_metadata_as_training_does(trained, tmp_path):
    """An isic export with the trees: StackedPredictor's blend equals ``medbundle tabular_predict`` given the same
    image scores (the export's own), to 1e-6."""
    pytest.importorskip("onnxruntime")
    from test_export_bundle import write_checkpoint

    from medbundle.cli import export, tabular_predict
    from medbundle.tabular import StackedPredictor

    root, _ = trained
    checkpoint = write_checkpoint("isic", tmp_path / "model.pt")
    files = export(str(REPO / "bundles" / "isic"), str(checkpoint), format="onnx", out=str(tmp_path / "export"),
                   tabular=str(root / "tabular"))["files"]  # fmt: skip
    with pytest.raises(ValueError, match="--format onnx"):
        export(str(REPO / "bundles" / "isic"), str(checkpoint), format="ts", out=str(tmp_path / "ts"), tabular="x")
    assert Path(files["tabular"]) == tmp_path / "export" / "tabular"
    test = pd.read_csv(root / "data" / "test-metadata.csv", dtype={"isic_id": str, "patient_id": str})
    images = {isic_id: f"{root / 'data' / 'test-image.hdf5'}::{isic_id}" for isic_id in test["isic_id"]}
    stacked = StackedPredictor(tmp_path / "export").predict(test, images)
    assert stacked["isic_id"].tolist() == test["isic_id"].tolist()
    stacked[["isic_id", "image"]].rename(columns={"image": "target"}).to_csv(tmp_path / "scores.csv", index=False)
    path = tabular_predict(str(root / "tabular"), str(root / "data"), str(tmp_path / "scores.csv"),
                           out=str(tmp_path / "sub"))  # the command's function: the command runs in the test above
    np.testing.assert_allclose(stacked["target"], pd.read_csv(path)["target"], atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="no crop"):
        StackedPredictor(tmp_path / "export").predict(test, dict(list(images.items())[1:]))


def test_a_label_other_than_0_or_1_names_its_csv_line(trained, tmp_path):
    root, _ = trained
    train = pd.read_csv(root / "data" / "train-metadata.csv", dtype={"isic_id": str, "patient_id": str})
    train.loc[3, "target"] = 2
    (tmp_path / "data").mkdir()
    train.to_csv(tmp_path / "data" / "train-metadata.csv", index=False)
    from medbundle.tabular import train_tabular

    with pytest.raises(ValueError, match=r"column 'target' must be 0 or 1; line\(s\) \[5\]"):
        train_tabular(tmp_path / "data", root / "runs" / "cv", tmp_path / "out", boosters=["lightgbm"], seeds=[0])
