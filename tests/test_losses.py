"""Tests of the classification loss factory and its class-balancing weights."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import math

import numpy as np
import pytest
import torch
from monai.losses import FocalLoss
from torch import nn

from medbundle.losses import class_weights, classification_loss, positive_weight


@pytest.mark.parametrize(
    "labels", [[0, 0, 0, 1], np.array([0.0, 1.0, 0.0, 0.0]), torch.tensor([[0], [0], [1], [0]])], ids=type
)
def test_positive_weight_is_negatives_over_positives(labels) -> None:
    assert positive_weight(labels) == pytest.approx(3.0)


def test_positive_weight_rare_positives() -> None:
    labels = np.zeros(2000, dtype=int)
    labels[:2] = 1  # 0.1 % positives, as in the skin lesion data
    assert positive_weight(labels) == pytest.approx(999.0)


def test_positive_weight_without_positive_names_the_problem() -> None:
    with pytest.raises(ValueError, match="the training split has no positive label.*check the fold/labels"):
        positive_weight([0, 0, 0])


@pytest.mark.parametrize(
    "labels, message", [([1, 1], "no negative label"), ([], "no labels"), ([0, 1, 2], "must be 0 or 1")]
)
def test_positive_weight_rejects_degenerate_labels(labels, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        positive_weight(labels)


def test_bce_auto_weight_from_labels() -> None:
    loss = classification_loss("bce", labels=[0, 0, 0, 0, 1])
    assert isinstance(loss, nn.BCEWithLogitsLoss)
    torch.testing.assert_close(loss.pos_weight, torch.tensor([4.0]))
    logits, targets = torch.tensor([[0.3], [-1.2]]), torch.tensor([[1.0], [0.0]])
    expected = (4.0 * -math.log(torch.sigmoid(logits[0]).item()) - math.log(torch.sigmoid(-logits[1]).item())) / 2
    assert loss(logits, targets).item() == pytest.approx(expected, rel=1e-5)


def test_bce_weight_options() -> None:
    assert classification_loss("bce").pos_weight is None  # "auto" without labels
    assert classification_loss("bce", labels=[0, 1], pos_weight=None).pos_weight is None
    torch.testing.assert_close(classification_loss("bce", pos_weight=7).pos_weight, torch.tensor([7.0]))


def test_bce_auto_weight_without_positive_raises() -> None:
    with pytest.raises(ValueError, match="no positive label"):
        classification_loss("bce", labels=[0, 0, 0])


def _sigmoid_focal(logit: float, target: float, gamma: float, alpha: float | None) -> float:
    """Focal loss of one logit by the formula -alpha_t (1 - p_t)^gamma log(p_t)."""
    p = 1 / (1 + math.exp(-logit))
    p_t = p if target == 1 else 1 - p
    alpha_t = 1.0 if alpha is None else (alpha if target == 1 else 1 - alpha)
    return -alpha_t * (1 - p_t) ** gamma * math.log(p_t)


@pytest.mark.parametrize("alpha", [None, 0.25])
def test_focal_matches_hand_computed_value(alpha: float | None) -> None:
    loss = classification_loss("focal", gamma=2.0, alpha=alpha)
    assert isinstance(loss, FocalLoss) and not loss.use_softmax
    cases = [(0.0, 1.0), (2.0, 0.0), (-1.5, 1.0)]
    logits = torch.tensor([[x] for x, _ in cases])
    targets = torch.tensor([[t] for _, t in cases])
    expected = sum(_sigmoid_focal(x, t, 2.0, alpha) for x, t in cases) / len(cases)
    assert loss(logits, targets).item() == pytest.approx(expected, rel=1e-5)
    if alpha is None:  # p = 0.5 for a zero logit: 0.25 * log 2
        assert _sigmoid_focal(0.0, 1.0, 2.0, None) == pytest.approx(0.25 * math.log(2))


def test_focal_decreases_as_logits_approach_targets() -> None:
    loss = classification_loss("focal", labels=[0, 1])
    targets = torch.tensor([[1.0], [0.0], [1.0]])
    values = [loss(step * (2 * targets - 1), targets).item() for step in (-2.0, -0.5, 0.0, 0.5, 2.0, 5.0)]
    assert all(a > b for a, b in zip(values, values[1:]))


def test_focal_with_gamma_zero_is_bce() -> None:
    logits, targets = torch.randn(6, 1), torch.randint(0, 2, (6, 1)).float()
    focal = classification_loss("focal", gamma=0.0)
    torch.testing.assert_close(focal(logits, targets), nn.BCEWithLogitsLoss()(logits, targets))


def test_focal_rejects_numeric_pos_weight() -> None:
    with pytest.raises(ValueError, match="alpha"):
        classification_loss("focal", pos_weight=10.0)


def test_class_weights_inverse_frequency() -> None:
    weights = class_weights([0, 0, 0, 1, 2, 2], num_classes=3)
    torch.testing.assert_close(weights, torch.tensor([6 / 9, 6 / 3, 6 / 6]))
    torch.testing.assert_close(class_weights([0, 1, 2, 0, 1, 2], 3), torch.ones(3))


def test_ce_auto_class_weights_and_label_smoothing() -> None:
    loss = classification_loss("ce", num_classes=3, labels=[0, 0, 0, 1, 2, 2], label_smoothing=0.1)
    assert isinstance(loss, nn.CrossEntropyLoss) and loss.label_smoothing == 0.1
    torch.testing.assert_close(loss.weight, class_weights([0, 0, 0, 1, 2, 2], 3))
    logits, targets = torch.randn(4, 3), torch.tensor([0, 1, 2, 1])
    expected = nn.functional.cross_entropy(logits, targets, weight=loss.weight, label_smoothing=0.1)
    torch.testing.assert_close(loss(logits, targets), expected)
    assert classification_loss("ce", num_classes=3).weight is None
    assert classification_loss("ce", num_classes=3, labels=[0, 1, 1], pos_weight=None).weight is None


def test_ce_missing_class_raises() -> None:
    with pytest.raises(ValueError, match=r"no label of class\(es\) \[4\]"):
        classification_loss("ce", num_classes=5, labels=[0, 1, 2, 3, 3])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "dice"}, "unknown loss 'dice'"),
        ({"name": "bce", "num_classes": 5}, "use 'ce'"),
        ({"name": "focal", "label_smoothing": 0.1}, "label_smoothing"),
        ({"name": "ce", "num_classes": 1}, "num_classes >= 2"),
        ({"name": "ce", "num_classes": 3, "pos_weight": 2.0}, "not a number"),
        ({"name": "ce", "num_classes": 3, "labels": [0, 1, 3]}, r"class indices in \[0, 3\)"),
    ],
)
def test_invalid_configurations_raise(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        classification_loss(**kwargs)


def test_losses_follow_module_device_moves() -> None:
    bce = classification_loss("bce", labels=[0, 0, 1])
    ce = classification_loss("ce", num_classes=2, labels=[0, 0, 1])
    assert "pos_weight" in dict(bce.named_buffers()) and "weight" in dict(ce.named_buffers())
