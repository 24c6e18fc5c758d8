"""Tests of the multi-class metrics against sklearn and hand-computed values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn import metrics as skm

from medbundle.metrics import (
    accuracy,
    confusion,
    log_loss,
    macro_auroc,
    macro_f1,
    multiclass_summary,
    ovr_auroc,
    per_class_sensitivity_specificity,
)
from medbundle.metrics.inputs import multiclass_inputs

# argmax predictions: [0, 1, 1, 2, 0, 2]
LABELS = [0, 0, 1, 1, 2, 2]
PROBS = [
    [0.7, 0.2, 0.1],
    [0.3, 0.6, 0.1],
    [0.2, 0.5, 0.3],
    [0.1, 0.3, 0.6],
    [0.5, 0.1, 0.4],
    [0.1, 0.1, 0.8],
]
NAMES = ["Normal", "Bacterial Pneumonia", "Corona Virus Disease"]


def random_case(seed: int, n: int = 200, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Labels with every class present and unnormalised, label-informed probabilities (float32, as from a model)."""
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.arange(k), rng.integers(0, k, n - k)])
    probs = rng.random((n, k)) + 0.8 * np.eye(k)[labels] * rng.random((n, 1))
    return labels, probs.astype(np.float32)


def normalised(probs: np.ndarray) -> np.ndarray:
    probs = np.asarray(probs, dtype=float)
    return probs / probs.sum(axis=1, keepdims=True)


def test_hand_case():
    assert accuracy(LABELS, PROBS) == pytest.approx(3 / 6)
    # every class has TP 1, FP 1, FN 1, so F1 = 2TP / (2TP + FP + FN) = 1/2 for each
    assert macro_f1(LABELS, PROBS) == pytest.approx(0.5)
    np.testing.assert_array_equal(confusion(LABELS, PROBS, 3), [[1, 1, 0], [0, 1, 1], [1, 0, 1]])
    sensitivity, specificity = per_class_sensitivity_specificity(LABELS, PROBS)
    np.testing.assert_allclose(sensitivity, [0.5, 0.5, 0.5])
    np.testing.assert_allclose(specificity, [0.75, 0.75, 0.75])
    # class 0 one-vs-rest: positives 0.7, 0.3; negatives 0.2, 0.1, 0.5, 0.1 -> 7 of 8 pairs ranked right
    assert ovr_auroc(LABELS, PROBS)[0] == pytest.approx(7 / 8)
    expected_loss = -np.mean(np.log([0.7, 0.3, 0.5, 0.3, 0.4, 0.8]))
    assert log_loss(LABELS, PROBS) == pytest.approx(expected_loss)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_sklearn_on_random_data(seed):
    labels, probs = random_case(seed)
    predicted = probs.argmax(axis=1)
    assert accuracy(labels, probs) == pytest.approx(skm.accuracy_score(labels, predicted))
    assert macro_f1(labels, probs) == pytest.approx(skm.f1_score(labels, predicted, average="macro"))
    per_class = [skm.roc_auc_score(labels == k, probs[:, k]) for k in range(5)]
    np.testing.assert_allclose(ovr_auroc(labels, probs), per_class)
    norm = normalised(probs)  # sklearn's multi-class AUROC and log loss require rows summing to 1
    expected_auroc = skm.roc_auc_score(labels, norm, multi_class="ovr", average="macro")
    assert macro_auroc(labels, norm) == pytest.approx(expected_auroc)
    assert log_loss(labels, norm) == pytest.approx(skm.log_loss(labels, norm, labels=range(5)))
    np.testing.assert_array_equal(confusion(labels, probs, 5), skm.confusion_matrix(labels, predicted))
    sensitivity, _ = per_class_sensitivity_specificity(labels, probs)
    np.testing.assert_allclose(sensitivity, skm.recall_score(labels, predicted, average=None))


def test_specificity_matches_sklearn_one_vs_rest():
    labels, probs = random_case(3)
    predicted = probs.argmax(axis=1)
    _, specificity = per_class_sensitivity_specificity(labels, probs)
    expected = [skm.recall_score(labels != k, predicted != k) for k in range(5)]
    np.testing.assert_allclose(specificity, expected)


def test_macro_f1_uses_sklearn_label_set_when_classes_are_missing():
    # truth {0, 1}, predictions {0, 1, 3}: classes 2 and 4 are neither, so they are left out of the mean
    labels = [0, 0, 1, 1]
    probs = np.eye(5)[[0, 1, 1, 3]]
    assert macro_f1(labels, probs) == pytest.approx(skm.f1_score(labels, [0, 1, 1, 3], average="macro"))
    assert macro_f1(labels, probs) == pytest.approx((2 / 3 + 0.5 + 0.0) / 3)


def test_log_loss_clips_zero_probability_of_true_class():
    # true-class probabilities 0 (clipped to eps) and 1
    assert log_loss([0, 1], [[0.0, 1.0], [0.0, 1.0]], eps=1e-4) == pytest.approx(-np.log(1e-4) / 2)
    assert log_loss([1, 1], [[0.0, 1.0], [0.0, 1.0]]) == 0.0
    with pytest.raises(ValueError, match="eps must be in"):
        log_loss([0], [[0.5, 0.5]], eps=0.0)


def test_absent_class_gives_nan_auroc_and_sensitivity_with_warning():
    labels = [0, 0, 1, 1]
    probs = [[0.9, 0.05, 0.05], [0.4, 0.5, 0.1], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4]]
    with pytest.warns(RuntimeWarning, match=r"classes \[2\]"):
        aurocs = ovr_auroc(labels, probs)
    assert math.isnan(aurocs[2]) and aurocs[0] == pytest.approx(1.0)
    with pytest.warns(RuntimeWarning, match=r"classes \[2\]"):
        assert macro_auroc(labels, probs) == pytest.approx(np.nanmean(aurocs))
    sensitivity, specificity = per_class_sensitivity_specificity(labels, probs)
    assert math.isnan(sensitivity[2]) and specificity[2] == pytest.approx(3 / 4)


def test_single_class_labels_give_nan_macro_auroc_with_warning():
    with pytest.warns(RuntimeWarning) as record:
        assert math.isnan(macro_auroc([1, 1], [[0.2, 0.8], [0.6, 0.4]]))
    messages = [str(warning.message) for warning in record]
    assert any("classes [0, 1]" in message for message in messages)
    assert any("macro AUROC is undefined" in message for message in messages)
    _, specificity = per_class_sensitivity_specificity([1, 1], [[0.2, 0.8], [0.6, 0.4]])
    assert math.isnan(specificity[1])


def test_summary_is_json_ready_and_consistent():
    labels = [0, 0, 1, 1, 1]
    probs = [[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.3, 0.6, 0.1], [0.6, 0.3, 0.1]]
    with pytest.warns(RuntimeWarning, match=r"classes \[2\]"):
        summary = multiclass_summary(labels, probs, NAMES)
    decoded = json.loads(json.dumps(summary))
    assert decoded["n"] == 5
    assert decoded["accuracy"] == pytest.approx(3 / 5)
    assert decoded["log_loss"] == pytest.approx(log_loss(labels, probs))
    assert decoded["confusion_matrix"] == [[1, 1, 0], [1, 2, 0], [0, 0, 0]]
    assert list(decoded["per_class"]) == NAMES
    pneumonia = decoded["per_class"]["Bacterial Pneumonia"]
    assert pneumonia["support"] == 3
    assert pneumonia["sensitivity"] == pytest.approx(2 / 3)
    assert pneumonia["specificity"] == pytest.approx(1 / 2)
    assert pneumonia["f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    corona = decoded["per_class"]["Corona Virus Disease"]
    assert corona["support"] == 0 and math.isnan(corona["auroc"]) and math.isnan(corona["f1"])
    # a class neither true nor predicted is left out of macro F1 and (NaN) per-class F1 alike
    assert decoded["macro_f1"] == pytest.approx(np.nanmean([c["f1"] for c in decoded["per_class"].values()]))
    assert decoded["macro_auroc"] == pytest.approx(np.nanmean([c["auroc"] for c in decoded["per_class"].values()]))


def test_summary_rejects_wrong_class_names():
    with pytest.raises(ValueError, match="one unique name per probability column"):
        multiclass_summary(LABELS, PROBS, NAMES[:2])
    with pytest.raises(ValueError, match="one unique name"):
        multiclass_summary(LABELS, PROBS, ["a", "a", "b"])


def test_inputs_accept_column_labels_and_integral_floats():
    labels, probs = multiclass_inputs(np.array([[0.0], [2.0]]), [[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    assert labels.dtype == np.int64 and labels.tolist() == [0, 2]
    assert probs.dtype == np.float64 and probs.shape == (2, 3)


@pytest.mark.parametrize(
    ("labels", "probs", "match"),
    [
        ([0, 1], [[0.5, 0.5]], "1 rows"),
        ([0, 1.5], [[0.5, 0.5], [0.5, 0.5]], r"\[1.5\] at positions \[1\]"),
        ([0, 3, -1], [[0.5, 0.5]] * 3, r"\[0, 2\) for K=2.*\[-1.0, 3.0\] at positions \[1, 2\]"),
        ([0, 1], [[0.5, float("nan")], [0.5, 0.5]], r"NaN or inf in rows \[0\]"),
        ([0, 1], [[0.5, 0.5], [float("inf"), 0.5]], r"rows \[1\]"),
        ([0, 1], [0.3, 0.8], "binary metrics"),
        ([0, 1], [[0.3], [0.8]], "binary metrics"),
        ([[1, 0], [0, 1]], [[0.5, 0.5], [0.5, 0.5]], "argmax"),
    ],
)
def test_bad_inputs_raise(labels, probs, match):
    with pytest.raises(ValueError, match=match):
        multiclass_inputs(labels, probs)
    with pytest.raises(ValueError, match=match):
        accuracy(labels, probs)


def test_confusion_checks_num_classes():
    with pytest.raises(ValueError, match="3 columns but num_classes is 5"):
        confusion(LABELS, PROBS, 5)
