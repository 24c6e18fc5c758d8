"""Tests of AUROC, sensitivity/specificity and the summary dict."""

from __future__ import annotations

import math

import numpy as np

import pytest

from medbundle.metrics import auroc, binary_summary, partial_auc, pfbeta, sensitivity_specificity

LABELS = [0, 1, 0, 1, 1]
SCORES = [0.1, 0.3, 0.4, 0.6, 0.9]


def test_auroc_hand_case():
    # positive-negative pairs ranked correctly: 0.3>0.1, 0.6>both, 0.9>both -> 5 of 6
    assert auroc(LABELS, SCORES) == pytest.approx(5 / 6)


def test_auroc_one_class_warns_and_is_nan():
    with pytest.warns(RuntimeWarning, match="only one class"):
        assert math.isnan(auroc([1, 1], [0.2, 0.8]))


def test_sensitivity_specificity():
    # scores >= 0.5 -> predictions [0, 0, 0, 1, 1]: TP 2, FN 1, TN 2, FP 0
    assert sensitivity_specificity(LABELS, SCORES, 0.5) == pytest.approx((2 / 3, 1.0))
    # threshold equal to a score counts it as positive
    assert sensitivity_specificity(LABELS, SCORES, 0.3) == pytest.approx((1.0, 0.5))
    sensitivity, specificity = sensitivity_specificity([0, 0], [0.2, 0.8], 0.5)
    assert math.isnan(sensitivity) and specificity == 0.5


def test_binary_summary():
    summary = binary_summary(LABELS, SCORES, 0.5)
    assert summary["auroc"] == pytest.approx(5 / 6)
    assert summary["pauc"] == pytest.approx(partial_auc(LABELS, SCORES))
    assert summary["pf1_prob"] == pytest.approx(pfbeta(LABELS, SCORES))
    assert summary["pf1_at_threshold"] == pytest.approx(pfbeta(LABELS, (np.asarray(SCORES) >= 0.5).astype(float)))
    assert summary["pf1_best"] >= summary["pf1_at_threshold"]
    assert summary["threshold"] == 0.5
    assert summary["sensitivity"] == pytest.approx(2 / 3)
    assert summary["specificity"] == 1.0
    assert {key: summary[key] for key in ("tp", "fp", "tn", "fn")} == {"tp": 2, "fp": 0, "tn": 2, "fn": 1}
