"""Tests of the (group) percentile bootstrap: coverage of a known AUROC, cluster width, skipped resamples, seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm, rankdata

from medbundle.metrics import Interval, auroc, bootstrap_interval


def _rank_auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mann-Whitney AUROC (equal to sklearn's, ties counted half); a few times faster, for the coverage loop."""
    positives = labels == 1
    n_pos = int(positives.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = rankdata(scores)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _binormal(rng: np.random.Generator, n_per_class: int, separation: float) -> tuple[np.ndarray, np.ndarray]:
    labels = np.repeat([0, 1], n_per_class)
    scores = rng.normal(size=2 * n_per_class) + separation * labels
    return labels, scores


def test_rank_auroc_matches_auroc():
    labels, scores = _binormal(np.random.default_rng(1), 50, 1.0)
    scores = np.round(scores, 1)  # with ties
    assert _rank_auroc(labels, scores) == pytest.approx(auroc(labels, scores))


def test_interval_covers_known_auroc_about_95_percent():
    # Binormal scores, negatives N(0, 1) and positives N(d, 1): the true AUROC is Phi(d / sqrt(2)).
    separation = 1.2
    true_auroc = norm.cdf(separation / math.sqrt(2))
    rng = np.random.default_rng(2024)
    repeats = 200
    covered = 0
    for repeat in range(repeats):
        labels, scores = _binormal(rng, 100, separation)
        interval = bootstrap_interval(_rank_auroc, labels, scores, n_resamples=300, seed=repeat)
        assert interval.low <= interval.estimate <= interval.high
        covered += interval.low <= true_auroc <= interval.high
    assert 0.88 <= covered / repeats <= 0.99


def test_grouped_interval_is_wider_when_rows_are_copies():
    labels, scores = _binormal(np.random.default_rng(7), 100, 1.0)
    copies = 4
    labels4, scores4 = np.repeat(labels, copies), np.repeat(scores, copies)
    groups4 = np.repeat(np.arange(labels.size), copies)

    naive = bootstrap_interval(auroc, labels4, scores4, n_resamples=500)
    grouped = bootstrap_interval(auroc, labels4, scores4, groups=groups4, n_resamples=500)
    original = bootstrap_interval(auroc, labels, scores, n_resamples=500)

    assert grouped.estimate == naive.estimate == pytest.approx(original.estimate)
    ratio = (grouped.high - grouped.low) / (naive.high - naive.low)
    assert 1.6 <= ratio <= 2.5  # sqrt(4) = 2: row resampling takes four copies for four patients
    # Resampling the groups of the copies is resampling the original rows.
    assert grouped.high - grouped.low == pytest.approx(original.high - original.low, rel=0.2)


def test_groups_keep_all_their_rows():
    # Two groups of unequal size whose rows all carry the group's size: every resample's mean row value is a
    # mean over whole groups, so it can only be one of a few values.
    groups = np.array(["a", "b", "b", "b"])
    values = np.array([1.0, 3.0, 3.0, 3.0])
    seen = set()

    def mean_value(labels: np.ndarray, scores: np.ndarray) -> float:
        seen.add(round(float(scores.mean()), 9))
        return float(scores.mean())

    bootstrap_interval(mean_value, values, values, groups=groups, n_resamples=200)
    # {a, a}: 1, {a, b}: (1 + 9) / 4 = 2.5, {b, b}: 3; the full-data estimate is also 2.5.
    assert seen == {1.0, 2.5, 3.0}


def test_undefined_resamples_are_skipped():
    # Three rows, one positive: about 30 % of row resamples miss the positive and AUROC is undefined there.
    labels = np.array([0, 0, 1])
    scores = np.array([0.1, 0.2, 0.9])
    interval = bootstrap_interval(auroc, labels, scores, n_resamples=400)
    assert interval.estimate == 1.0
    assert interval.low == interval.high == 1.0
    assert 220 < interval.n_resamples < 340  # expected 400 * (1 - (2/3)^3 - (1/3)^3) = 267

    def raises_on_one_class(labels: np.ndarray, scores: np.ndarray) -> float:
        if np.unique(labels).size < 2:
            raise ValueError("one class")
        return 1.0

    assert bootstrap_interval(raises_on_one_class, labels, scores, n_resamples=400).n_resamples == interval.n_resamples


def test_no_defined_resample_gives_nan_bounds():
    with pytest.warns(RuntimeWarning, match="only one class"):
        interval = bootstrap_interval(auroc, [1, 1, 1], [0.2, 0.5, 0.9], n_resamples=50)
    assert math.isnan(interval.estimate) and math.isnan(interval.low) and math.isnan(interval.high)
    assert interval.n_resamples == 0


def test_bugs_in_the_statistic_are_not_skipped():
    def broken(labels: np.ndarray, scores: np.ndarray) -> float:
        raise TypeError("bug")

    with pytest.raises(TypeError, match="bug"):
        bootstrap_interval(broken, [0, 1], [0.1, 0.9])


def test_seed_determines_the_interval():
    labels, scores = _binormal(np.random.default_rng(3), 40, 1.0)
    first = bootstrap_interval(auroc, labels, scores, n_resamples=200, seed=5)
    assert bootstrap_interval(auroc, labels, scores, n_resamples=200, seed=5) == first
    assert bootstrap_interval(auroc, labels, scores, n_resamples=200, seed=6) != first
    assert isinstance(first, Interval)


def test_multiclass_scores_are_resampled_by_row():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 3, 90)
    probabilities = rng.dirichlet(np.ones(3), size=90)
    probabilities[np.arange(90), labels] += 0.3
    probabilities /= probabilities.sum(axis=1, keepdims=True)

    def top1(labels: np.ndarray, probabilities: np.ndarray) -> float:
        assert probabilities.shape == (labels.size, 3)
        return float((probabilities.argmax(axis=1) == labels).mean())

    interval = bootstrap_interval(top1, labels, probabilities, groups=np.arange(90) // 3, n_resamples=200)
    assert interval.low < interval.estimate < interval.high


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"labels": [0, 1], "scores": [0.1]}, "same number of rows"),
        ({"groups": [1]}, "one id per row"),
        ({"n_resamples": 0}, "n_resamples"),
        ({"confidence": 1.0}, "confidence"),
    ],
)
def test_bad_arguments_say_what_to_do(kwargs, message):
    arguments = {"labels": [0, 1], "scores": [0.1, 0.9]} | kwargs
    with pytest.raises(ValueError, match=message):
        bootstrap_interval(auroc, **arguments)
