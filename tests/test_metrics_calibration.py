"""Tests of ECE, reliability bins and temperature scaling, against MONAI's CalibrationErrorMetric where comparable."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from monai.metrics import CalibrationErrorMetric, calibration_binning
from scipy.special import expit, softmax

from medbundle.metrics import (
    apply_temperature,
    auroc,
    expected_calibration_error,
    fit_platt,
    fit_temperature,
    logits_from_probabilities,
    reliability_bins,
)


def _monai_ece(confidence: np.ndarray, outcome: np.ndarray, n_bins: int) -> float:
    metric = CalibrationErrorMetric(num_bins=n_bins)
    metric(y_pred=torch.as_tensor(confidence, dtype=torch.float32)[None, None], y=torch.as_tensor(outcome)[None, None])
    return float(metric.aggregate())


@pytest.fixture
def overconfident_binary() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True logits z with labels drawn from sigmoid(z); the model reports 3 z."""
    rng = np.random.default_rng(0)
    z = rng.normal(scale=2.0, size=5000)
    labels = (rng.random(z.size) < expit(z)).astype(int)
    return labels, 3.0 * z, z


@pytest.fixture
def overconfident_multiclass() -> tuple[np.ndarray, np.ndarray]:
    """Four classes, labels drawn from softmax(z); the model reports 3 z."""
    rng = np.random.default_rng(1)
    z = rng.normal(scale=1.5, size=(5000, 4))
    cumulative = softmax(z, axis=1).cumsum(axis=1)
    labels = np.minimum((rng.random((z.shape[0], 1)) > cumulative).sum(axis=1), 3)
    return labels, 3.0 * z


def test_binary_temperature_scaling_undoes_overconfidence(overconfident_binary):
    labels, logits, _ = overconfident_binary
    temperature = fit_temperature(logits, labels)
    assert temperature == pytest.approx(3.0, rel=0.1)

    before = apply_temperature(logits, 1.0)
    after = apply_temperature(logits, temperature)
    assert expected_calibration_error(labels, before) > 0.06
    assert expected_calibration_error(labels, after) < 0.5 * expected_calibration_error(labels, before)
    assert expected_calibration_error(labels, after) < 0.03
    assert auroc(labels, after) == auroc(labels, before)


def test_platt_scaling_undoes_a_prior_shift_that_a_temperature_cannot():
    """A model trained on a tenth of the negatives and with the positives weighed up: every logit too high by a
    constant. Platt's (T, b) finds the generating 1 / 0.5 and -3 again; a temperature alone leaves a large ECE."""
    rng = np.random.default_rng(3)
    true_logit = rng.normal(-5.0, 2.0, size=20000)
    labels = (rng.random(true_logit.size) < 1 / (1 + np.exp(-true_logit))).astype(int)
    shifted = 2.0 * (true_logit + 3.0)  # the model's logits: over-confident and shifted

    temperature, bias = fit_platt(shifted, labels)
    assert temperature == pytest.approx(2.0, rel=0.1) and bias == pytest.approx(-3.0, abs=0.3)
    after = apply_temperature(shifted, temperature, bias)
    assert expected_calibration_error(labels, after) < 0.01
    assert expected_calibration_error(labels, apply_temperature(shifted, fit_temperature(shifted, labels))) > 0.05
    assert auroc(labels, after) == auroc(labels, apply_temperature(shifted, 1.0))

    with pytest.raises(ValueError, match="both classes"):
        fit_platt(shifted[labels == 0], labels[labels == 0])
    with pytest.raises(ValueError, match="fit_temperature"):
        fit_platt(np.zeros((4, 3)), [0, 1, 2, 0])


def test_multiclass_temperature_scaling_undoes_overconfidence(overconfident_multiclass):
    labels, logits = overconfident_multiclass
    temperature = fit_temperature(logits, labels)
    assert temperature == pytest.approx(3.0, rel=0.1)

    before = apply_temperature(logits, 1.0)
    after = apply_temperature(logits, temperature)
    assert after.shape == (5000, 4) and np.allclose(after.sum(axis=1), 1.0)
    assert expected_calibration_error(labels, before) > 0.1
    assert expected_calibration_error(labels, after) < 0.03
    np.testing.assert_array_equal(after.argmax(axis=1), before.argmax(axis=1))


def test_temperature_from_saved_probabilities(overconfident_binary, overconfident_multiclass):
    # A report sees only the prediction CSV: the logits rebuilt from its probabilities give the same temperature.
    labels, logits, _ = overconfident_binary
    rebuilt = logits_from_probabilities(expit(logits))
    assert fit_temperature(rebuilt, labels) == pytest.approx(fit_temperature(logits, labels), rel=0.02)
    labels, logits = overconfident_multiclass
    rebuilt = logits_from_probabilities(softmax(logits, axis=1))  # clipping at 1e-7 moves the very smallest
    assert fit_temperature(rebuilt, labels) == pytest.approx(fit_temperature(logits, labels), rel=0.01)


def test_logits_from_probabilities_round_trip():
    p = np.array([0.0, 0.2, 0.5, 0.9, 1.0])
    logits = logits_from_probabilities(p)
    assert np.isfinite(logits).all() and logits[2] == 0.0
    np.testing.assert_allclose(apply_temperature(logits, 1.0), np.clip(p, 1e-7, 1 - 1e-7), rtol=1e-9)
    rows = np.array([[0.7, 0.2, 0.1], [0.0, 0.5, 0.5]])
    np.testing.assert_allclose(apply_temperature(logits_from_probabilities(rows), 1.0), rows, atol=1e-6)
    assert logits_from_probabilities(p[:, None]).shape == (5,)
    with pytest.raises(ValueError, match="look like logits"):
        logits_from_probabilities([0.5, 2.3])


def test_binary_ece_matches_monai(overconfident_binary):
    labels, logits, _ = overconfident_binary
    probabilities = expit(logits / 2.0)
    # Values on bin edges: 0 and 1 belong to the first and last bin, an inner edge to the bin below it.
    probabilities[:4] = [0.0, 1.0, 0.5, 0.2]
    for n_bins in (1, 2, 10, 15, 20):
        ours = expected_calibration_error(labels, probabilities, n_bins=n_bins)
        # MONAI sums in float32: about 1e-7 per unit of the sums, 5000 rows here.
        assert ours == pytest.approx(_monai_ece(probabilities, labels, n_bins), rel=1e-5, abs=1e-6)


def test_top_label_ece_is_monai_on_confidence_and_correctness(overconfident_multiclass):
    labels, logits = overconfident_multiclass
    probabilities = softmax(logits, axis=1)
    correct = (probabilities.argmax(axis=1) == labels).astype(float)
    assert expected_calibration_error(labels, probabilities) == pytest.approx(
        _monai_ece(probabilities.max(axis=1), correct, 15), rel=1e-5
    )


def test_reliability_bins_match_monai_binning(overconfident_binary):
    labels, logits, _ = overconfident_binary
    probabilities = expit(logits)
    bins = reliability_bins(labels, probabilities, n_bins=15)
    mean_p, mean_gt, counts = calibration_binning(
        torch.as_tensor(probabilities, dtype=torch.float32)[None, None],
        torch.as_tensor(labels, dtype=torch.float32)[None, None],
        num_bins=15,
    )
    assert bins["count"] == counts[0, 0].int().tolist()
    np.testing.assert_allclose(bins["confidence"], mean_p[0, 0].numpy(), rtol=1e-5)
    np.testing.assert_allclose(bins["frequency"], mean_gt[0, 0].numpy(), rtol=1e-5)
    np.testing.assert_allclose(bins["edges"], np.linspace(0, 1, 16))
    count = np.array(bins["count"])
    gap = np.abs(np.array(bins["confidence"]) - np.array(bins["frequency"]))
    assert (count * gap).sum() / count.sum() == pytest.approx(expected_calibration_error(labels, probabilities))


def test_reliability_bins_hand_case():
    bins = reliability_bins([0, 1, 1, 0], [0.1, 0.2, 0.9, 0.7], n_bins=4)
    assert bins["count"] == [2, 0, 1, 1]
    assert bins["confidence"][0] == pytest.approx(0.15) and math.isnan(bins["confidence"][1])
    assert bins["frequency"][0] == 0.5 and math.isnan(bins["frequency"][1])
    assert bins["frequency"][2:] == [0.0, 1.0]
    assert bins["edges"] == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_one_bin_and_one_class():
    # One bin: the gap between the mean probability and the positive rate.
    assert expected_calibration_error([0, 1, 1, 0], [0.1, 0.2, 0.9, 0.7], n_bins=1) == pytest.approx(0.025)
    # One class: still defined, the mean distance from the (constant) label.
    assert expected_calibration_error([0, 0, 0], [0.1, 0.2, 0.3], n_bins=15) == pytest.approx(0.2)
    assert expected_calibration_error([1, 1], [1.0, 1.0]) == 0.0
    # Top-label with one class in the labels: accuracy of the argmax against the top probability.
    assert expected_calibration_error([2, 2], [[0.1, 0.1, 0.8], [0.6, 0.2, 0.2]], n_bins=1) == pytest.approx(0.2)


def test_temperature_at_a_bound_warns():
    # One class, every logit on the right side: the NLL keeps falling as T -> 0.
    with pytest.warns(RuntimeWarning, match="edge of bounds"):
        temperature = fit_temperature([-2.0, -1.0, -3.0], [0, 0, 0])
    assert temperature == pytest.approx(0.01, rel=1e-3)


def test_fit_is_deterministic_and_positive(overconfident_binary):
    labels, _, z = overconfident_binary
    temperature = fit_temperature(z, labels)
    assert temperature == fit_temperature(z, labels)
    assert temperature == pytest.approx(1.0, rel=0.1)  # the true logits are already calibrated


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: expected_calibration_error([0, 1], [0.2, 1.7]), "not logits"),
        (lambda: expected_calibration_error([0, 1], [0.2, 0.7], n_bins=0), "n_bins"),
        (lambda: expected_calibration_error([], []), "at least one"),
        (lambda: apply_temperature([0.1, 2.0], 0.0), "positive finite"),
        (lambda: fit_temperature([0.1, np.inf], [0, 1]), "NaN or inf"),
        (lambda: fit_temperature([0.1, 2.0], [0, 1], bounds=(0.0, 10.0)), "0 < low < high"),
        (lambda: fit_temperature(np.zeros((2, 3)), [0, 5]), r"\[0, 3\)"),
    ],
)
def test_bad_input_says_what_to_do(call, message):
    with pytest.raises(ValueError, match=message):
        call()
