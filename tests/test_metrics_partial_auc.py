"""partial_auc against hand-computed areas and an independent integration of the original ROC curve."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from medbundle.metrics import SCORES, get_score, partial_auc


def _area_above(labels: np.ndarray, scores: np.ndarray, min_tpr: float) -> float:
    """∫ max(TPR - min_tpr, 0) dFPR over the linearly interpolated ROC curve, integrated in the original space."""
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    area = 0.0
    for x0, x1, y0, y1 in zip(fpr[:-1], fpr[1:], tpr[:-1], tpr[1:]):
        if x1 == x0:
            continue
        # split the segment where it crosses min_tpr, integrate the part above it
        xs = np.linspace(x0, x1, 20001)
        ys = np.interp(xs, [x0, x1], [y0, y1])
        area += np.trapezoid(np.clip(ys - min_tpr, 0.0, None), xs)
    return area


def test_perfect_ranking_gives_the_maximum():
    assert partial_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == pytest.approx(0.2)
    assert partial_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], min_tpr=0.5) == pytest.approx(0.5)


def test_reversed_ranking_gives_zero():
    assert partial_auc([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9]) == pytest.approx(0.0)


def test_all_scores_tied_is_the_diagonal():
    # TPR = FPR: the area above TPR 0.8 is the triangle 0.2 * 0.2 / 2
    assert partial_auc([0, 1, 0, 1, 1, 0], np.full(6, 0.5)) == pytest.approx(0.02)


def test_ties_between_one_positive_and_one_negative():
    # 2 positives, 2 negatives; p1 above everything, p2 tied with n1, n2 lowest.
    # ROC: (0, .5) -> tie step (.5, 1) diagonal -> (1, 1). Above TPR .8 the tie step runs from FPR .3 to .5:
    # triangle .2 * .2 / 2 = .02, then the rectangle FPR .5..1 at height .2 = .1
    assert partial_auc([1, 1, 0, 0], [0.9, 0.5, 0.5, 0.1]) == pytest.approx(0.12)


def test_one_positive_below_every_negative():
    # 9 of 10 positives above every negative: TPR 0.9 from FPR 0 to 1, so the area above 0.8 is 0.1 * 1
    labels = [1] * 10 + [0] * 5
    scores = [0.9] * 9 + [0.01] + [0.3, 0.4, 0.5, 0.6, 0.7]
    assert partial_auc(labels, scores) == pytest.approx(0.1)
    # with 5 positives the lost one drops TPR to exactly 0.8: nothing is left above it
    assert partial_auc([1] * 5 + [0] * 5, [0.9] * 4 + [0.01] + [0.3] * 5) == pytest.approx(0.0)


def test_scores_outside_unit_interval_only_order_matters():
    labels = [0, 1, 0, 1, 1, 0, 0]
    logits = np.array([-5.0, 3.0, 100.0, -1.0, 7.5, -40.0, 0.0])
    probabilities = 1.0 / (1.0 + np.exp(-logits))
    assert partial_auc(labels, logits) == pytest.approx(partial_auc(labels, probabilities))
    assert partial_auc(labels, logits) == pytest.approx(partial_auc(labels, logits * 1000.0 - 3.0))


def test_min_tpr_zero_is_the_full_auroc():
    rng = np.random.default_rng(0)
    labels = rng.random(300) < 0.2
    scores = rng.normal(size=300) + labels
    assert partial_auc(labels, scores, min_tpr=0.0) == pytest.approx(roc_auc_score(labels, scores))


@pytest.mark.parametrize("min_tpr", [0.8, 0.5, 0.95])
def test_matches_integration_of_the_original_curve(min_tpr):
    rng = np.random.default_rng(1)
    labels = (rng.random(400) < 0.1).astype(int)
    scores = np.round(rng.normal(size=400) + 1.5 * labels, 1)  # rounding makes ties
    assert partial_auc(labels, scores, min_tpr=min_tpr) == pytest.approx(
        _area_above(labels, scores, min_tpr), abs=1e-6
    )


def test_one_class_is_a_clear_error():
    with pytest.raises(ValueError, match="only negatives"):
        partial_auc([0, 0, 0], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="only positives"):
        partial_auc([1, 1], [0.1, 0.2])


def test_min_tpr_out_of_range():
    with pytest.raises(ValueError, match="min_tpr"):
        partial_auc([0, 1], [0.1, 0.9], min_tpr=1.0)


def test_registered_as_a_binary_higher_is_better_score():
    score = get_score("pauc")
    assert SCORES["pauc"] is score and score.kinds == ("binary",) and score.higher_is_better
    assert score.fn([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8]) == pytest.approx(0.2)
