"""Tests of per-group aggregation of binary scores and of class-probability vectors."""

from __future__ import annotations

import numpy as np
import pytest

from medbundle.metrics import aggregate_groups

GROUPS = ["p2", "p1", "p2", "p1", "p3"]
BINARY_LABELS = [0, 1, 1, 0, 0]
SCORES = [0.2, 0.9, 0.6, 0.3, 0.5]
CLASS_LABELS = [2, 0, 2, 0, 1]
VECTORS = np.array(
    [
        [0.1, 0.2, 0.7],
        [0.6, 0.3, 0.1],
        [0.3, 0.2, 0.5],
        [0.8, 0.1, 0.1],
        [0.2, 0.5, 0.3],
    ]
)


@pytest.mark.parametrize(("how", "expected"), [("mean", [0.4, 0.6, 0.5]), ("max", [0.6, 0.9, 0.5])])
def test_binary_scores_keep_their_behaviour(how, expected):
    ids, labels, predictions = aggregate_groups(GROUPS, BINARY_LABELS, SCORES, how=how)
    assert ids == ["p2", "p1", "p3"]  # order of first appearance
    np.testing.assert_array_equal(labels, [1.0, 1.0, 0.0])  # any positive image makes the group positive
    np.testing.assert_allclose(predictions, expected)
    column_ids, column_labels, column_predictions = aggregate_groups(
        GROUPS, np.array(BINARY_LABELS)[:, None], np.array(SCORES)[:, None], how=how
    )
    assert column_ids == ids and column_predictions.shape == (3,)
    np.testing.assert_array_equal(column_labels, labels)
    np.testing.assert_allclose(column_predictions, expected)


def test_probability_vectors_mean():
    ids, labels, predictions = aggregate_groups(GROUPS, CLASS_LABELS, VECTORS, how="mean")
    assert ids == ["p2", "p1", "p3"]
    np.testing.assert_array_equal(labels, [2.0, 0.0, 1.0])
    assert predictions.shape == (3, 3)
    np.testing.assert_allclose(predictions, [[0.2, 0.2, 0.6], [0.7, 0.2, 0.1], [0.2, 0.5, 0.3]])
    np.testing.assert_allclose(predictions.sum(axis=1), 1.0)  # the mean keeps them probabilities


def test_probability_vectors_max_is_column_wise():
    _, _, predictions = aggregate_groups(GROUPS, CLASS_LABELS, VECTORS, how="max")
    np.testing.assert_allclose(predictions, [[0.3, 0.2, 0.7], [0.8, 0.3, 0.1], [0.2, 0.5, 0.3]])


def test_probability_vectors_without_labels():
    ids, labels, predictions = aggregate_groups(GROUPS, None, VECTORS)
    assert ids == ["p2", "p1", "p3"] and labels is None and predictions.shape == (3, 3)


def test_probability_vectors_need_one_label_per_group():
    with pytest.raises(ValueError, match=r"group 'p1' holds images with different labels \[0.0, 1.0\]"):
        aggregate_groups(GROUPS, [2, 0, 2, 1, 1], VECTORS)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="'mean' or 'max'"):
        aggregate_groups(GROUPS, CLASS_LABELS, VECTORS, how="median")
    with pytest.raises(ValueError, match=r"groups \(4\), labels \(5\) and predictions \(5\)"):
        aggregate_groups(GROUPS[:-1], CLASS_LABELS, VECTORS)
    with pytest.raises(ValueError, match="one entry per image"):
        aggregate_groups(GROUPS, BINARY_LABELS, SCORES[:-1])
