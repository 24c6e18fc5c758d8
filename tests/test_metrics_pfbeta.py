"""Tests of the RSNA probabilistic F-beta and per-breast aggregation."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import host_pfbeta

from medbundle.metrics import aggregate_by_breast, pfbeta


def test_hand_computed_f1():
    # ctp = 1.3, cfp = 0.8, P = 13/21, R = 13/20 -> F1 = 2PR / (P + R) = 26/41
    assert pfbeta([1, 0, 1, 0], [0.9, 0.2, 0.4, 0.6]) == pytest.approx(26 / 41, abs=1e-12)


def test_hand_computed_beta_2():
    # F2 = 5PR / (4P + R) with P = 13/21, R = 13/20 -> 65/101
    assert pfbeta([1, 0, 1, 0], [0.9, 0.2, 0.4, 0.6], beta=2.0) == pytest.approx(65 / 101, abs=1e-12)


def test_predictions_are_clipped():
    clipped = pfbeta([1, 0, 1, 0], [1.0, 0.0, 0.4, 0.6])
    assert pfbeta([1, 0, 1, 0], [1.7, -0.3, 0.4, 0.6]) == pytest.approx(clipped)


def test_perfect_and_zero_cases():
    assert pfbeta([1, 0, 1], [1.0, 0.0, 1.0]) == pytest.approx(1.0)
    assert pfbeta([0, 0, 0], [0.5, 0.2, 0.9]) == 0.0  # no positive label
    assert pfbeta([1, 0, 1], [0.0, 0.0, 0.0]) == 0.0  # no predicted mass
    assert pfbeta([1, 0, 1], [0.0, 0.7, 0.0]) == 0.0  # mass only on negatives


def test_matches_host_code_on_random_data():
    rng = np.random.default_rng(0)
    labels = (rng.random(500) < 0.1).astype(int)
    predictions = rng.normal(0.3, 0.4, 500)  # some outside [0, 1]
    for beta in (0.5, 1.0, 2.0):
        assert pfbeta(labels, predictions, beta) == pytest.approx(host_pfbeta(labels, predictions, beta), rel=1e-12)


def test_column_vectors_accepted():
    labels = np.array([[1], [0], [1], [0]])
    predictions = np.array([[0.9], [0.2], [0.4], [0.6]])
    assert pfbeta(labels, predictions) == pytest.approx(26 / 41)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="one score per label"):
        pfbeta([1, 0], [0.5])
    with pytest.raises(ValueError, match="0 or 1"):
        pfbeta([2, 0], [0.5, 0.5])
    with pytest.raises(ValueError, match="NaN"):
        pfbeta([1, 0], [float("nan"), 0.5])


PATIENTS = [1, 1, 1, 2, 2, 2, 1]
SIDES = ["L", "L", "R", "R", "L", "L", "R"]
LABELS = [0, 0, 1, 0, 1, 1, 1]
PREDICTIONS = [0.2, 0.4, 0.9, 0.1, 0.3, 0.7, 0.5]


@pytest.mark.parametrize(("how", "expected"), [("mean", [0.3, 0.7, 0.1, 0.5]), ("max", [0.4, 0.9, 0.1, 0.7])])
def test_aggregate_by_breast(how, expected):
    ids, labels, predictions = aggregate_by_breast(PATIENTS, SIDES, LABELS, PREDICTIONS, how=how)
    assert ids == ["1_L", "1_R", "2_R", "2_L"]  # order of first appearance
    np.testing.assert_array_equal(labels, [0.0, 1.0, 0.0, 1.0])
    np.testing.assert_allclose(predictions, expected)


def test_aggregate_conflicting_labels_take_max():
    ids, labels, _ = aggregate_by_breast(["7", "7"], ["L", "L"], [0, 1], [0.1, 0.2])
    assert ids == ["7_L"]
    np.testing.assert_array_equal(labels, [1.0])


def test_aggregate_rejects_bad_arguments():
    with pytest.raises(ValueError, match="'mean' or 'max'"):
        aggregate_by_breast(PATIENTS, SIDES, LABELS, PREDICTIONS, how="median")
    with pytest.raises(ValueError, match="one entry per image"):
        aggregate_by_breast(PATIENTS[:-1], SIDES, LABELS, PREDICTIONS)
