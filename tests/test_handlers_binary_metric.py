from __future__ import annotations

import numpy as np
import pytest
from conftest import make_evaluator

from medbundle.handlers import BinaryMetric
from medbundle.metrics import auroc, pfbeta

PROBS = [0.9, 0.7, 0.2, 0.4, 0.1, 0.3, 0.8, 0.6]
LABELS = [1, 1, 0, 0, 0, 0, 1, 1]
BREASTS = ["1_L", "1_L", "1_R", "1_R", "2_L", "2_L", "2_R", "2_R"]


def test_breast_pfbeta_and_auroc_match_manual_aggregation():
    evaluator = make_evaluator(
        PROBS,
        LABELS,
        BREASTS,
        key_metric={"val_pf1": BinaryMetric(score="pfbeta", how="mean")},
        additional_metrics={"val_auroc": BinaryMetric(score="auroc", how="max"), "img": BinaryMetric(score="auroc", group_key=None)},
    )
    evaluator.run()
    means = np.array([0.8, 0.3, 0.2, 0.7])
    maxes = np.array([0.9, 0.4, 0.3, 0.8])
    breast_labels = np.array([1, 0, 0, 1])
    metrics = evaluator.state.metrics
    assert metrics["val_pf1"] == pytest.approx(pfbeta(breast_labels, means), abs=1e-6)
    assert metrics["val_auroc"] == pytest.approx(auroc(breast_labels, maxes))
    assert metrics["img"] == pytest.approx(auroc(LABELS, PROBS))
    assert evaluator.state.best_metric == pytest.approx(metrics["val_pf1"])


def test_best_threshold_pfbeta_is_one_on_separable_breasts():
    evaluator = make_evaluator(PROBS, LABELS, BREASTS, key_metric={"m": BinaryMetric(score="pfbeta_best")})
    evaluator.run()
    assert evaluator.state.metrics["m"] == pytest.approx(1.0)


def test_unknown_score_is_rejected():
    with pytest.raises(ValueError, match="unknown score"):
        BinaryMetric(score="accuracy")
