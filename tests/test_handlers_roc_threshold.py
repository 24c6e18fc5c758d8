from __future__ import annotations

import numpy as np
import pytest
from conftest import FakeWriter, make_evaluator
from sklearn.metrics import roc_auc_score

from medbundle.handlers import ROCThresholdHandler
from medbundle.metrics import pfbeta_threshold, roc_threshold


def test_thresholds_are_computed_per_breast_logged_and_stateful():
    probs = [0.9, 0.7, 0.2, 0.4, 0.1, 0.3, 0.55, 0.65, 0.35, 0.45]
    labels = [1, 1, 0, 0, 0, 0, 1, 1, 0, 0]
    breasts = ["1_L", "1_L", "1_R", "1_R", "2_L", "2_L", "2_R", "2_R", "3_L", "3_L"]
    writer = FakeWriter()
    handler = ROCThresholdHandler(how="mean", summary_writer=writer)
    evaluator = make_evaluator(probs, labels, breasts, handlers=[handler])
    evaluator.run()

    breast_labels, breast_scores = np.array([1, 0, 0, 1, 0]), np.array([0.8, 0.3, 0.2, 0.6, 0.4])
    expected_roc = roc_threshold(breast_labels, breast_scores)
    expected_pf1, best = pfbeta_threshold(breast_labels, breast_scores)
    metrics = evaluator.state.metrics
    assert metrics["val_roc_threshold"] == pytest.approx(expected_roc, abs=1e-6)
    assert metrics["val_pf1_threshold"] == pytest.approx(expected_pf1, abs=1e-6)
    assert "val_pf1_at_threshold" not in metrics  # the pF1 at this threshold is ClassificationMetric("pfbeta_best")
    area = roc_auc_score(breast_labels, breast_scores)
    assert handler.state_dict() == pytest.approx(
        {"roc_threshold": expected_roc, "pf1_threshold": expected_pf1, "auroc": area, "best_auroc": area}, abs=1e-6
    )
    roc_image, step = writer.images["val_roc_curve"]
    assert roc_image.shape[0] == 3 and roc_image.dtype == np.uint8 and step == 1
    assert writer.images["val_confusion_matrix"][0].shape[0] == 3

    restored = ROCThresholdHandler()
    restored.load_state_dict(handler.state_dict())
    assert restored.thresholds == handler.thresholds


def test_one_class_keeps_previous_thresholds():
    handler = ROCThresholdHandler()
    handler.load_state_dict({"roc_threshold": 0.3, "pf1_threshold": 0.4})
    make_evaluator([0.2, 0.6], [0, 0], ["1_L", "2_L"], handlers=[handler]).run()
    assert handler.thresholds == {"roc_threshold": 0.3, "pf1_threshold": 0.4}


def test_degenerate_thresholds_and_constant_outputs_are_warned_with_the_epoch(caplog):
    breasts = ["1_L", "1_R", "2_L", "2_R"]
    with caplog.at_level("WARNING"):
        make_evaluator([0.4, 0.4, 0.4, 0.4], [1, 0, 0, 0], breasts, handlers=[ROCThresholdHandler()]).run()
    assert "epoch 1: the model gives one constant output" in caplog.text
    caplog.clear()
    # the only positive ranks last: the best threshold must take every breast as positive
    with caplog.at_level("WARNING"):
        make_evaluator([0.1, 0.5, 0.6, 0.7], [1, 0, 0, 0], breasts, handlers=[ROCThresholdHandler()]).run()
    assert "labels every validation breast positive" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        make_evaluator([0.9, 0.1, 0.2, 0.3], [1, 0, 0, 0], breasts, handlers=[ROCThresholdHandler()]).run()
    assert "trivial rule" not in caplog.text and "constant" not in caplog.text


def test_best_auroc_is_the_highest_so_far_and_decision_roc_reports_at_the_roc_threshold():
    handler = ROCThresholdHandler(group_key=None, decision="roc")
    handler.load_state_dict({"roc_threshold": 0.5, "pf1_threshold": 0.5, "auroc": 0.95, "best_auroc": 0.95})
    probs, labels = [0.9, 0.8, 0.7, 0.45, 0.5, 0.2, 0.1], [1, 1, 1, 1, 0, 0, 0]
    evaluator = make_evaluator(probs, labels, list("abcdefg"), handlers=[handler])
    evaluator.run()
    assert handler.thresholds["auroc"] == pytest.approx(11 / 12)
    assert handler.thresholds["best_auroc"] == pytest.approx(0.95)  # this epoch did not beat the stored one
    # the point closest to (0, 1) is threshold 0.7: TPR 3/4 at FPR 0
    assert handler.thresholds["roc_threshold"] == pytest.approx(0.7, abs=1e-5)
    assert evaluator.state.metrics["val_sensitivity"] == pytest.approx(0.75)
    assert evaluator.state.metrics["val_specificity"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="decision"):
        ROCThresholdHandler(decision="youden")
