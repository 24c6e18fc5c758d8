"""Combining member predictions per level, the members table, metrics.json, predictions and submissions, by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medbundle.ensemble import (
    Member,
    MemberPredictions,
    combine_predictions,
    model_table,
    prediction_table,
    write_evaluation,
)
from medbundle.report import build_report

BREASTS = ["p1_L", "p1_L", "p1_R", "p2_L", "p2_L", "p2_R"]
RSNA_LABELS = np.array([1.0, 1.0, 0.0, 0.0, 0.0, 1.0])
RSNA_A = np.array([0.8, 0.6, 0.3, 0.2, 0.4, 0.7])  # breast means 0.7 0.3 0.3 0.7
RSNA_B = np.array([0.4, 0.6, 0.1, 0.5, 0.7, 0.1])  # breast means 0.5 0.1 0.6 0.1


def rsna_members() -> list[Member]:
    config = {"task": "rsna", "backbone": "resnet10t", "image_size": [64, 32], "num_classes": 1}
    return [
        Member("a", Path("a/model.pt"), config, {"pf1_threshold": 0.5, "roc_threshold": 0.1, "auroc": 0.9}),
        Member("b", Path("b/model.pt"), {**config, "image_size": [32, 16]}, {"pf1_threshold": 0.45, "auroc": 0.6}),
    ]


def rsna_predictions() -> MemberPredictions:
    ids = pd.DataFrame({"image_id": [str(i) for i in range(6)], "breast_id": BREASTS})
    return MemberPredictions(ids, RSNA_LABELS, {"a": RSNA_A, "b": RSNA_B})


def test_rsna_soft_scores_breasts_at_the_mean_pf1_threshold(tmp_path):
    ensemble = combine_predictions(rsna_predictions(), rsna_members(), "rsna", strategy="soft")
    assert ensemble.threshold == pytest.approx(0.475)
    np.testing.assert_allclose(ensemble.levels["image"].ensemble, (RSNA_A + RSNA_B) / 2)
    np.testing.assert_allclose(ensemble.levels["breast"].ensemble, [0.6, 0.2, 0.45, 0.4])
    table = write_evaluation(ensemble, tmp_path, {"tta": True}).set_index("member")
    # breasts [1, 0, 0, 1]; a at 0.5 -> [1, 0, 0, 1]: pF1 1; b at 0.45 -> [1, 0, 1, 0]: P = R = 0.5;
    # the ensemble at 0.475 -> [1, 0, 0, 0]: P 1, R 0.5 -> 2/3
    np.testing.assert_allclose(table["pf1_at_threshold"], [1.0, 0.5, 2 / 3])
    np.testing.assert_allclose(table["threshold"], [0.5, 0.45, 0.475])
    assert table.loc["ensemble", "auroc"] == pytest.approx(3 / 4)  # 0.4 (positive) < 0.45 (negative)
    assert table.loc["b", "image_size"] == "32x16"
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["breast"]["pf1_at_threshold"] == pytest.approx(2 / 3) and metrics["aggregation"] == "mean"
    assert metrics["tta"] is True
    submission = pd.read_csv(tmp_path / "submission.csv")
    assert submission.to_dict("list") == {"prediction_id": ["p1_L", "p1_R", "p2_L", "p2_R"], "cancer": [1, 0, 0, 0]}
    breasts = pd.read_csv(tmp_path / "predictions_breast.csv")
    assert list(breasts.columns) == ["breast_id", "label", "a", "b", "ensemble", "ensemble_label"]
    np.testing.assert_allclose(breasts["a"], [0.7, 0.3, 0.3, 0.7])
    assert (tmp_path / "members.md").read_text().startswith("| member | model | image_size | threshold |")


def test_rsna_hard_weighted_members_vote_per_breast_weighted_by_auroc(tmp_path):
    ensemble = combine_predictions(rsna_predictions(), rsna_members(), "rsna", strategy="hard_weighted")
    # votes a [1, 0, 0, 1] (w 0.9), b at 0.45 [1, 0, 1, 0] (w 0.6)
    np.testing.assert_allclose(ensemble.levels["breast"].ensemble, [1.0, 0.0, 0.4, 0.6], rtol=1e-6)
    assert ensemble.threshold == 0.5 and ensemble.weights == [0.9, 0.6]
    table = write_evaluation(ensemble, tmp_path).set_index("member")
    assert table.loc["ensemble", "pf1_at_threshold"] == pytest.approx(1.0)
    np.testing.assert_allclose(table["weight"].iloc[:2], [0.9, 0.6])
    images = pd.read_csv(tmp_path / "predictions_image.csv", dtype={"image_id": str})
    votes = 0.9 * (RSNA_A >= 0.5) + 0.6 * (RSNA_B >= 0.45)
    np.testing.assert_allclose(images["ensemble"], votes / 1.5, rtol=1e-6)


def test_threshold_key_and_explicit_weights(tmp_path):
    ensemble = combine_predictions(rsna_predictions(), rsna_members()[:1], "rsna", threshold_key="roc_threshold")
    assert ensemble.threshold == pytest.approx(0.1)
    ensemble = combine_predictions(rsna_predictions(), rsna_members(), "rsna", "hard_weighted", weights=[0.0, 1.0])
    np.testing.assert_allclose(ensemble.levels["breast"].ensemble, [1, 0, 1, 0])
    with pytest.raises(ValueError, match="one per member"):
        combine_predictions(rsna_predictions(), rsna_members(), "rsna", "hard_weighted", weights=[1.0])
    bad = [rsna_members()[0], Member("c", Path("c/model.pt"), {}, {"pf1_threshold": 0.5, "auroc": float("nan")})]
    with pytest.raises(ValueError, match="c/model.pt stores validation AUROC nan"):
        combine_predictions(MemberPredictions(rsna_predictions().ids, RSNA_LABELS, {"a": RSNA_A, "c": RSNA_B}), bad,
                            "rsna", "hard_weighted")


def test_isic_submission_holds_the_ensemble_scores(tmp_path):
    config = {"task": "isic", "model": "m", "image_size": [48, 48]}
    members = [Member(n, Path(n), config, {"roc_threshold": t, "auroc": 0.7}) for n, t in (("a", 0.3), ("b", 0.6))]
    ids = pd.DataFrame({"image_id": ["ISIC_1", "ISIC_2", "ISIC_3"], "patient_id": ["P1", "P1", "P2"]})
    predictions = MemberPredictions(ids, np.array([1.0, 0.0, 0.0]), {"a": np.array([0.9, 0.2, 0.4]), "b": np.array([0.7, 0.6, 0.1])})
    table = write_evaluation(combine_predictions(predictions, members, "isic"), tmp_path)
    assert list(table.columns) == ["member", "model", "image_size", "threshold", "pauc", "auroc"]
    submission = pd.read_csv(tmp_path / "submission.csv")
    assert list(submission.columns) == ["isic_id", "target"]
    np.testing.assert_allclose(submission["target"], [0.8, 0.4, 0.25])
    images = pd.read_csv(tmp_path / "predictions_image.csv")
    assert images["ensemble_label"].tolist() == [1, 0, 0]  # at (0.3 + 0.6) / 2


def test_chest_xray_weighted_mean_table_and_class_name_predictions(tmp_path):
    names = ["Normal", "Tuberculosis", "Corona Virus Disease"]
    config = {"task": "chest_xray", "backbone": "resnet10t", "image_size": [32, 32], "num_classes": 3, "class_names": names}
    members = [Member("a", Path("a"), config, {}), Member("b", Path("b"), config, {})]
    a = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8]])
    b = np.array([[0.2, 0.7, 0.1], [0.5, 0.2, 0.3], [0.3, 0.3, 0.4]])
    ids = pd.DataFrame({"image_id": ["x", "y", "z"]})
    predictions = MemberPredictions(ids, np.array([0, 1, 2]), {"a": a, "b": b})
    ensemble = combine_predictions(predictions, members, "chest_xray", strategy="weighted_mean", weights=[1.0, 3.0])
    expected = (a + 3 * b) / 4  # [[0.3, 0.6, 0.1], [0.425, 0.275, 0.3], [0.25, 0.25, 0.5]]: argmax 1, 0, 2
    np.testing.assert_allclose(ensemble.levels["image"].ensemble, expected, rtol=1e-6)
    table = write_evaluation(ensemble, tmp_path).set_index("member")
    np.testing.assert_allclose(table["accuracy"], [1.0, 1 / 3, 1 / 3])  # argmax a 0 1 2, b 1 0 2, ensemble 1 0 2
    assert "threshold" not in table
    predicted = pd.read_csv(tmp_path / "inference" / "predictions_image.csv")
    assert predicted["pred_class"].tolist() == ["Tuberculosis", "Normal", "Corona Virus Disease"]
    np.testing.assert_allclose(predicted[[f"prob_{n}" for n in names]], expected, rtol=1e-6)
    columns = prediction_table(ensemble).columns.tolist()
    assert columns[:3] == ["image_id", "label", "label_class"] and "b:Tuberculosis" in columns
    assert columns[-1] == "ensemble_class"


def test_a_task_whose_data_set_decides_the_kind_reads_it_from_its_members(tmp_path):
    """classify's ensemble facts say binary: None; one stored output makes a binary ensemble, several a multi-class one."""
    ids = pd.DataFrame({"image_id": ["x", "y", "z", "w"]})
    config = {"task": "classify", "image_size": [32, 32], "num_classes": 1, "class_names": ["benign", "malignant"]}
    members = [Member(n, Path(n), config, {"roc_threshold": t, "auroc": 0.8}) for n, t in (("a", 0.4), ("b", 0.6))]
    predictions = MemberPredictions(ids, np.array([1.0, 0.0, 1.0, 0.0]),
                                    {"a": np.array([0.9, 0.3, 0.5, 0.2]), "b": np.array([0.7, 0.5, 0.6, 0.1])})
    binary = combine_predictions(predictions, members, "classify")
    assert binary.threshold == pytest.approx(0.5) and binary.class_names is None
    table = write_evaluation(binary, tmp_path / "binary")
    assert {"auroc", "sensitivity", "specificity"} <= set(table.columns) and "accuracy" not in table
    predicted = pd.read_csv(tmp_path / "binary" / "inference" / "predictions_image.csv")
    assert predicted["pred_class"].tolist() == ["malignant", "benign", "malignant", "benign"]  # means .8 .4 .55 .15

    names = ["clear", "nodule", "ring"]
    config = {"task": "classify", "image_size": [32, 32], "num_classes": 3, "class_names": names}
    members = [Member(n, Path(n), config, {}) for n in ("a", "b")]
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1]])
    predictions = MemberPredictions(ids, np.array([0, 1, 2, 1]), {"a": probabilities, "b": probabilities})
    multiclass = combine_predictions(predictions, members, "classify")
    assert multiclass.threshold is None and multiclass.class_names == names
    table = write_evaluation(multiclass, tmp_path / "multiclass").set_index("member")
    assert table.loc["ensemble", "accuracy"] == pytest.approx(0.75) and "auroc" not in table


def headline(report: dict) -> dict:
    return {(row["metric"], row["level"]): row["estimate"] for row in report["headline"]}


def test_the_report_is_the_ensembles_own_breast_votes_at_its_threshold(tmp_path):
    """hard_weighted votes on breast means: the breast level is the ensemble's predictions_breast.csv, not the mean of
    its image votes; the members table beside it; the ensemble stores no temperature."""
    write_evaluation(combine_predictions(rsna_predictions(), rsna_members(), "rsna", "hard_weighted"), tmp_path)
    images = model_table(pd.read_csv(tmp_path / "predictions_image.csv"), "rsna")
    assert list(images.columns) == ["image_id", "breast_id", "label", "pred"]
    page = build_report(tmp_path, None, "rsna", ensemble=True, n_resamples=20)
    report = json.loads((page.parent / "report.json").read_text())
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    found = headline(report)
    assert found["AUROC", "image"] == pytest.approx(metrics["image"]["auroc"])
    assert found["AUROC", "breast"] == pytest.approx(metrics["breast"]["auroc"])
    assert found["pF1", "breast"] == pytest.approx(metrics["breast"]["pf1_prob"]) == pytest.approx(0.8)  # not 0.737
    assert report["settings"]["threshold"] == 0.5 and report["settings"]["threshold_key"] == "ensemble_threshold"
    assert [row["member"] for row in report["members"]] == ["a", "b", "ensemble"]
    assert "ensemble of 2 members (hard_weighted)" in report["subtitle"] and report["evidence"] == []
    assert '<section id="members">' in page.read_text()
    with pytest.raises(ValueError, match="stores no temperature"):
        build_report(tmp_path, None, "rsna", ensemble=True, calibrate=True)
    with pytest.raises(ValueError, match="no 'ensemble'"):
        model_table(pd.read_csv(tmp_path / "predictions_image.csv").drop(columns="ensemble"), "rsna")


def test_a_multiclass_ensembles_report_reads_its_class_columns(tmp_path):
    names = ["Normal", "Tuberculosis", "Corona Virus Disease"]
    config = {"task": "chest_xray", "backbone": "resnet10t", "image_size": [32, 32], "num_classes": 3, "class_names": names}
    members = [Member("a", Path("a"), config, {}), Member("b", Path("b"), config, {})]
    rng = np.random.default_rng(0)
    a, b = rng.dirichlet(np.ones(3), size=(2, 12))
    predictions = MemberPredictions(pd.DataFrame({"image_id": [f"i{k}" for k in range(12)]}), np.arange(12) % 3,
                                    {"a": a, "b": b})  # fmt: skip
    write_evaluation(combine_predictions(predictions, members, "chest_xray"), tmp_path)
    table = model_table(pd.read_csv(tmp_path / "predictions_image.csv"), "chest_xray")
    assert list(table.columns) == ["image_id", "label", "label_class", *[f"prob_{n}" for n in names]]
    np.testing.assert_allclose(table[[f"prob_{n}" for n in names]], (a + b) / 2, rtol=1e-6)
    report = json.loads((build_report(tmp_path, None, "chest_xray", ensemble=True, n_resamples=20).parent
                         / "report.json").read_text())  # fmt: skip
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert headline(report)["accuracy", "image"] == pytest.approx(metrics["image"]["accuracy"])
    assert report["confusion"]["classes"] == names and np.sum(report["confusion"]["matrix"]) == 12
    assert report["settings"]["threshold"] is None
