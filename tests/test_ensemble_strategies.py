"""Ensemble strategies against hand-computed small arrays."""

from __future__ import annotations

import numpy as np
import pytest

from medbundle.ensemble.strategies import (
    combine,
    hard_weighted_vote,
    max_probabilities,
    mean_probabilities,
    soft_vote,
)

BINARY = np.array([[0.2, 0.6, 0.9], [0.4, 0.3, 0.7]])  # 2 members, 3 items
MULTI = np.array(
    [
        [[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]],
        [[0.5, 0.4, 0.1], [0.2, 0.2, 0.6]],
        [[0.1, 0.8, 0.1], [0.3, 0.3, 0.4]],
    ]
)  # 3 members, 2 items, 3 classes


def test_soft_vote_is_the_mean_probability_at_the_mean_threshold():
    scores, threshold = soft_vote(BINARY, [0.5, 0.3])
    np.testing.assert_allclose(scores, [0.3, 0.45, 0.8])
    assert threshold == pytest.approx(0.4)


def test_hard_weighted_vote_is_the_auroc_weighted_fraction_of_own_threshold_votes():
    # member 0 at 0.5 votes [0, 1, 1]; member 1 at 0.3 votes [1, 1, 1] (0.3 >= 0.3 counts)
    scores, threshold = hard_weighted_vote(BINARY, [0.5, 0.3], weights=[0.9, 0.6])
    np.testing.assert_allclose(scores, [0.6 / 1.5, 1.0, 1.0], rtol=1e-6)
    assert threshold == 0.5
    equal, _ = hard_weighted_vote(BINARY, [0.5, 0.3])
    np.testing.assert_allclose(equal, [0.5, 1.0, 1.0])


def test_multiclass_mean_max_and_weighted_mean():
    np.testing.assert_allclose(mean_probabilities(MULTI), [[1.3 / 3, 1.4 / 3, 0.1], [0.2, 0.8 / 3, 1.6 / 3]])
    np.testing.assert_allclose(max_probabilities(MULTI), [[0.7, 0.8, 0.1], [0.3, 0.3, 0.6]])
    weighted = mean_probabilities(MULTI, weights=[1, 2, 1])
    np.testing.assert_allclose(weighted, [[1.8 / 4, 1.8 / 4, 0.1], [0.8 / 4, 1.0 / 4, 2.2 / 4]], rtol=1e-6)
    np.testing.assert_allclose(weighted.sum(1), 1.0, rtol=1e-6)


def test_combine_dispatches_by_name_and_kind():
    assert combine("soft", BINARY, [0.5, 0.3]).threshold == pytest.approx(0.4)
    np.testing.assert_allclose(combine("soft", MULTI).scores, mean_probabilities(MULTI))
    np.testing.assert_allclose(combine("mean", MULTI).scores, mean_probabilities(MULTI))
    np.testing.assert_allclose(combine("weighted_mean", MULTI).scores, mean_probabilities(MULTI))  # equal weights
    np.testing.assert_allclose(combine("weighted_mean", MULTI, weights=[0, 0, 1]).scores, MULTI[2], rtol=1e-6)
    result = combine("max", MULTI)
    assert result.threshold is None
    np.testing.assert_allclose(result.scores, max_probabilities(MULTI))


@pytest.mark.parametrize(
    ("strategy", "probabilities", "kwargs", "message"),
    [
        ("max", BINARY, {"thresholds": [0.5, 0.5]}, "choose one of \\['soft', 'hard_weighted'\\]"),
        ("hard_weighted", MULTI, {}, "multi-class"),
        ("soft", BINARY, {}, "threshold"),
        ("soft", BINARY, {"thresholds": [0.5]}, "one per member"),
        ("hard_weighted", BINARY, {"thresholds": [0.5, 0.5], "weights": [1.0]}, "one weight per member"),
        ("weighted_mean", MULTI, {"weights": [1, -1, 1]}, "non-negative"),
    ],
)
def test_misuse_raises_saying_what_fits(strategy, probabilities, kwargs, message):
    with pytest.raises(ValueError, match=message):
        combine(strategy, probabilities, **kwargs)
