"""Tests of threshold selection."""

from __future__ import annotations

import numpy as np
import pytest

from medbundle.metrics import pfbeta, pfbeta_threshold, roc_threshold

LABELS = [0, 1, 0, 1, 1]
SCORES = [0.1, 0.3, 0.4, 0.6, 0.9]


def test_separable_data():
    labels, scores = [0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]
    assert roc_threshold(labels, scores) == pytest.approx(0.8)
    assert pfbeta_threshold(labels, scores) == pytest.approx((0.8, 1.0))


def test_roc_threshold_hand_case():
    # ROC points per threshold: 0.9 (0, 1/3), 0.6 (0, 2/3), 0.4 (.5, 2/3), 0.3 (.5, 1), 0.1 (1, 1)
    assert roc_threshold(LABELS, SCORES) == pytest.approx(0.6)


def test_roc_threshold_considers_collinear_points():
    # Tied scores make diagonal ROC steps; (0.25, 0.75) at threshold 0.5 is the closest point but
    # lies on the segment (0, .5)-(.5, 1), which drop_intermediate=True would remove.
    labels = [1, 1, 0, 1, 0, 1, 0, 0]
    scores = [0.9, 0.8, 0.5, 0.5, 0.4, 0.4, 0.1, 0.1]
    assert roc_threshold(labels, scores) == pytest.approx(0.5)


def test_pfbeta_threshold_hand_case():
    # F1 of scores >= t: 0.1 -> 6/8, 0.3 -> 6/7, 0.4 -> 4/6, 0.6 -> 4/5, 0.9 -> 2/4
    threshold, best = pfbeta_threshold(LABELS, SCORES)
    assert threshold == pytest.approx(0.3)
    assert best == pytest.approx(6 / 7)


def test_pfbeta_threshold_matches_brute_force():
    rng = np.random.default_rng(1)
    labels = (rng.random(400) < 0.15).astype(int)
    scores = np.round(rng.random(400) * 0.5 + 0.4 * labels, 2)  # ties included
    for beta in (1.0, 2.0):
        threshold, best = pfbeta_threshold(labels, scores, beta=beta)
        brute = [pfbeta(labels, (scores >= t).astype(float), beta) for t in np.unique(scores)]
        assert best == pytest.approx(max(brute))
        assert pfbeta(labels, (scores >= threshold).astype(float), beta) == pytest.approx(best)


def test_pfbeta_threshold_explicit_candidates():
    threshold, best = pfbeta_threshold(LABELS, SCORES, thresholds=[0.5, 0.95])
    assert (threshold, best) == pytest.approx((0.5, 0.8))
    # a candidate above every score predicts nothing: F = 0
    assert pfbeta_threshold(LABELS, SCORES, thresholds=[2.0]) == (2.0, 0.0)
    with pytest.raises(ValueError, match="empty"):
        pfbeta_threshold(LABELS, SCORES, thresholds=[])


@pytest.mark.parametrize("function", [roc_threshold, pfbeta_threshold])
def test_one_class_raises(function):
    with pytest.raises(ValueError, match="only class 0"):
        function([0, 0, 0], [0.1, 0.5, 0.9])
