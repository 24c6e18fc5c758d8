"""Each task's metrics on hand-made prediction tables and the threshold chosen on out-of-fold predictions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from medbundle.metrics import auroc, partial_auc, roc_threshold
from medbundle.sweep.task_metrics import get_task_metrics, rsna_decision, rsna_metrics


def rsna_table(breasts: dict[str, tuple[int, list[float]]], folds: dict[str, int] | None = None) -> pd.DataFrame:
    """predictions_image.csv rows: breast id "<patient>_<L|R>" -> (label, image probabilities)."""
    rows = []
    for breast, (label, predictions) in breasts.items():
        patient, laterality = breast.split("_")
        for i, pred in enumerate(predictions):
            rows.append({"fold": (folds or {}).get(breast, 0), "image_id": f"{breast}{i}", "patient_id": patient,
                         "laterality": laterality, "breast_id": breast, "pred": pred, "label": float(label)})  # fmt: skip
    return pd.DataFrame(rows)


# max wins: positives have one strong image each, a negative breast is uniformly medium
MAX_WINS = {"1_L": (1, [0.9, 0.1]), "2_L": (0, [0.6, 0.6]), "3_R": (1, [0.8, 0.2]), "4_R": (0, [0.3, 0.3])}
# mean wins: a negative breast has one spurious strong image
MEAN_WINS = {"1_L": (1, [0.7, 0.7]), "2_L": (0, [0.95, 0.05]), "3_R": (1, [0.6, 0.6]), "4_R": (0, [0.2, 0.2])}


def test_rsna_chooses_max_aggregation_when_it_gives_the_higher_breast_pf1():
    # mean per breast: positives 0.5, 0.5; negatives 0.6, 0.3 -> best pF1 0.8 at 0.5 (2 TP, 1 FP)
    # max per breast: positives 0.9, 0.8; negatives 0.6, 0.3 -> pF1 1.0 at 0.8
    decision = rsna_decision(rsna_table(MAX_WINS))
    assert (decision.aggregation, decision.threshold, decision.score) == ("max", 0.8, 1.0)
    metrics = rsna_metrics(rsna_table(MAX_WINS))
    assert metrics["pf1_mean"] == pytest.approx(0.8) and metrics["pf1_max"] == 1.0
    assert metrics["auroc_mean"] == pytest.approx(auroc([1, 0, 1, 0], [0.5, 0.6, 0.5, 0.3]))
    assert metrics["n"] == 8


def test_rsna_chooses_mean_aggregation_when_it_is_better_or_equal():
    decision = rsna_decision(rsna_table(MEAN_WINS))
    assert (decision.aggregation, decision.threshold, decision.score) == ("mean", 0.6, 1.0)
    tie = {"1_L": (1, [0.9]), "2_L": (0, [0.2])}  # one image per breast: mean and max agree
    assert rsna_decision(rsna_table(tie)).aggregation == "mean"


def test_rsna_breasts_from_patient_and_laterality_without_a_breast_id_column():
    table = rsna_table(MAX_WINS).drop(columns="breast_id")
    assert rsna_decision(table).aggregation == "max"


def test_a_fold_with_one_class_scores_nan_not_an_error():
    metrics = rsna_metrics(rsna_table({"1_L": (0, [0.2]), "2_R": (0, [0.4])}))
    assert math.isnan(metrics["pf1_mean"]) and math.isnan(metrics["auroc_max"])
    isic = get_task_metrics("isic").metrics(pd.DataFrame({"label": [0.0, 0.0], "pred": [0.1, 0.2]}))
    assert math.isnan(isic["pauc"]) and math.isnan(isic["auroc"])


def test_isic_partial_auc_auroc_and_roc_threshold():
    rng = np.random.default_rng(0)
    labels = (rng.random(200) < 0.1).astype(float)
    scores = np.clip(labels * 0.3 + rng.random(200) * 0.7, 0, 1)
    table = pd.DataFrame({"label": labels, "pred": scores})
    spec = get_task_metrics("isic")
    assert spec.metrics(table) == {"n": 200, "pauc": partial_auc(labels, scores), "auroc": auroc(labels, scores)}
    assert spec.decide(table).threshold == roc_threshold(labels, scores) and spec.decide(table).aggregation is None


def test_chest_xray_accuracy_and_macro_f1_of_the_argmax_class():
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.5, 0.3], [0.3, 0.4, 0.3], [0.1, 0.1, 0.8]])
    labels = np.array([0, 1, 2, 1, 2])
    table = pd.DataFrame({"image_id": list("abcde"), "label": labels, "label_class": "x", "pred_class": "y"})
    table[["prob_NORMAL", "prob_PNEUMONIA", "prob_TB"]] = probabilities
    spec = get_task_metrics("chest_xray")
    metrics = spec.metrics(table)
    assert metrics["accuracy"] == pytest.approx(0.8)
    assert metrics["macro_f1"] == pytest.approx(f1_score(labels, [0, 1, 1, 1, 2], average="macro"))
    assert spec.decide is None


def test_unknown_task_is_named():
    with pytest.raises(ValueError, match="'mnist'.*chest_xray"):
        get_task_metrics("mnist")


def test_per_image_metrics_and_decision_follow_the_kind_of_the_table():
    from medbundle.sweep.task_metrics import per_image_decision, per_image_metrics

    binary = pd.DataFrame({"image_id": list("abcd"), "label": [0.0, 1.0, 0.0, 1.0], "pred": [0.1, 0.8, 0.6, 0.4]})
    assert per_image_metrics(binary) == {"n": 4, "auroc": pytest.approx(0.75)}
    assert per_image_decision(binary).threshold == roc_threshold(binary["label"], binary["pred"])
    multiclass = pd.DataFrame({"label": [0, 1, 2], "prob_a": [0.7, 0.2, 0.1], "prob_b": [0.2, 0.7, 0.8],
                               "prob_c": [0.1, 0.1, 0.1]})  # fmt: skip
    assert per_image_metrics(multiclass) == {"n": 3, "accuracy": pytest.approx(2 / 3), "macro_f1": pytest.approx(
        f1_score([0, 1, 2], [0, 1, 1], average="macro"))}  # fmt: skip
    assert per_image_decision(multiclass) is None
