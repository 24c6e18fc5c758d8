from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_evaluator
from monai.data import DataLoader
from monai.engines import SupervisedEvaluator
from monai.transforms import Activationsd
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

from medbundle.handlers import ClassificationMetric
from medbundle.metrics import auroc, pfbeta

PROBS = [0.9, 0.7, 0.2, 0.4, 0.1, 0.3, 0.8, 0.6]
LABELS = [1, 1, 0, 0, 0, 0, 1, 1]
BREASTS = ["1_L", "1_L", "1_R", "1_R", "2_L", "2_L", "2_R", "2_R"]


def breast_metric(score: str, **kwargs) -> ClassificationMetric:
    return ClassificationMetric(score=score, group_key="breast_id", **kwargs)


def test_breast_pfbeta_and_auroc_match_manual_aggregation():
    evaluator = make_evaluator(
        PROBS,
        LABELS,
        BREASTS,
        key_metric={"val_pf1": breast_metric("pfbeta", how="mean")},
        additional_metrics={"val_auroc": breast_metric("auroc", how="max"), "img": ClassificationMetric(score="auroc")},
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
    evaluator = make_evaluator(PROBS, LABELS, BREASTS, key_metric={"m": breast_metric("pfbeta_best")})
    evaluator.run()
    assert evaluator.state.metrics["m"] == pytest.approx(1.0)


def test_score_options_reach_the_score_function():
    evaluator = make_evaluator(
        PROBS, LABELS, BREASTS, key_metric={"sens": ClassificationMetric("sensitivity", score_options={"threshold": 0.65})}
    )
    evaluator.run()
    assert evaluator.state.metrics["sens"] == pytest.approx(3 / 4)


def test_unknown_score_is_rejected():
    with pytest.raises(ValueError, match="unknown score"):
        ClassificationMetric(score="kappa")


class Identity(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


def multiclass_evaluator(logits: np.ndarray, labels: list[int], metrics: dict, groups: list[str] | None = None):
    data = []
    for i, (row, label) in enumerate(zip(logits, labels)):
        item = {"image": torch.tensor(row, dtype=torch.float32).view(-1, 1, 1), "label": torch.tensor(label)}
        if groups is not None:
            item["patient_id"] = groups[i]
        data.append(item)
    first, *rest = metrics.items()
    return SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=DataLoader(data, batch_size=4),
        network=Identity(),
        postprocessing=Activationsd(keys="pred", softmax=True),
        key_val_metric=dict([first]),
        additional_metrics=dict(rest),
    )


def test_multiclass_scores_match_sklearn():
    rng = np.random.default_rng(0)
    labels = [0, 1, 2, 0, 1, 2, 0, 1, 2, 2, 1]
    logits = rng.normal(size=(len(labels), 3)) + 2.0 * np.eye(3)[labels] * rng.uniform(0, 1, (len(labels), 1))
    names = ("accuracy", "macro_f1", "macro_auroc", "log_loss")
    evaluator = multiclass_evaluator(logits, labels, {n: ClassificationMetric(n) for n in names})
    evaluator.run()
    probs = torch.softmax(torch.tensor(logits, dtype=torch.float32), 1).double().numpy()
    probs /= probs.sum(1, keepdims=True)  # float32 softmax rows sum to 1 only within rounding
    metrics = evaluator.state.metrics
    assert metrics["accuracy"] == pytest.approx(accuracy_score(labels, probs.argmax(1)))
    assert metrics["macro_f1"] == pytest.approx(f1_score(labels, probs.argmax(1), average="macro"))
    assert metrics["macro_auroc"] == pytest.approx(roc_auc_score(labels, probs, multi_class="ovr"), abs=1e-6)
    assert metrics["log_loss"] == pytest.approx(log_loss(labels, probs), abs=1e-5)


def test_multiclass_scores_grouped_by_patient_use_mean_probabilities():
    logits = np.log(np.array([[0.7, 0.2, 0.1], [0.3, 0.2, 0.5], [0.2, 0.7, 0.1], [0.3, 0.6, 0.1]]))
    evaluator = multiclass_evaluator(
        logits, [0, 0, 1, 1], {"acc": ClassificationMetric("accuracy", group_key="patient_id")}, groups=["a", "a", "b", "b"]
    )
    evaluator.run()
    # per image one of four is wrong; per patient the mean of a is (0.5, 0.2, 0.3) -> class 0, b -> class 1
    assert evaluator.state.metrics["acc"] == pytest.approx(1.0)


def test_binary_score_on_multiclass_predictions_says_which_kind():
    evaluator = multiclass_evaluator(np.zeros((4, 3)), [0, 1, 2, 0], {"auc": ClassificationMetric("auroc")})
    with pytest.raises(ValueError, match="class probability vectors"):
        evaluator.run()
