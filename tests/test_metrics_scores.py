from __future__ import annotations

import numpy as np
import pytest

from medbundle.metrics import (
    SCORES,
    auroc,
    get_score,
    log_loss,
    metric_higher_is_better,
    split_metric_name,
)


def test_every_score_is_callable_on_its_kinds_of_predictions():
    rng = np.random.default_rng(0)
    binary_labels, binary_scores = np.array([0, 1, 0, 1, 1, 0]), rng.uniform(size=6)
    labels = np.array([0, 1, 2, 0, 1, 2])
    probabilities = rng.dirichlet(np.ones(3), size=6)
    for name, score in SCORES.items():
        if "binary" in score.kinds:
            assert np.isfinite(score.fn(binary_labels, binary_scores)), name
        if "multiclass" in score.kinds:
            assert np.isfinite(score.fn(labels, probabilities)), name


def test_binary_log_loss_reads_a_probability_as_two_classes():
    labels, p = np.array([0, 1, 1]), np.array([0.2, 0.7, 0.9])
    assert get_score("log_loss").fn(labels, p) == pytest.approx(log_loss(labels, np.stack([1 - p, p], 1)))
    assert get_score("auroc").fn(labels, p) == auroc(labels, p)


def test_unknown_score_lists_the_names_per_kind():
    with pytest.raises(ValueError, match=r"binary scores: \[.*'auroc'.*multi-class: \[.*'macro_f1'"):
        get_score("kappa")


@pytest.mark.parametrize(("name", "higher"), [("val_loss", False), ("val_log_loss", False), ("val_accuracy", True),
                                              ("val_macro_auroc", True), ("val_pf1_best", True)])
def test_metric_direction_follows_its_score(name, higher):
    assert metric_higher_is_better(name) is higher


def test_metric_names_follow_the_evaluated_split():
    assert split_metric_name("val_accuracy", "test") == "test_accuracy"
    assert split_metric_name("val_auroc", "val") == "val_auroc"  # the validation fold keeps its names
    assert split_metric_name("accuracy", "test") == "accuracy"
