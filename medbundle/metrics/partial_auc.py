"""Partial AUC above a minimum true-positive rate: the ISIC 2024 challenge score.

A skin-cancer triage model is only useful where it misses few melanomas, so the challenge scores the
area under the ROC curve in the region ``TPR >= min_tpr`` (80 %) only. The official metric computes it
by swapping the classes and negating the scores, which turns that region into ``FPR <= 1 - min_tpr`` of
the swapped curve, and integrates there with sklearn's ``roc_curve`` and ``auc``, interpolating the
curve linearly at the border. This module does exactly that, so a validation score here is the score
Kaggle's leaderboard gives the same predictions.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from sklearn.metrics import auc, roc_curve

from medbundle.metrics.inputs import binary_inputs

__all__ = ["partial_auc"]


def partial_auc(labels: npt.ArrayLike, scores: npt.ArrayLike, min_tpr: float = 0.8) -> float:
    """Area under the ROC curve above ``min_tpr`` true-positive rate, as the ISIC 2024 metric defines it.

    The result lies in ``[0, 1 - min_tpr]`` (0 to 0.2 for the challenge's 80 %); ``min_tpr=0`` gives the
    full AUROC. Tied scores count as sklearn's ``roc_curve`` counts them (one diagonal step), and scores
    need not be probabilities: only their order matters.

    Args:
        labels: 0/1 ground truth per image (1 = malignant).
        scores: score per image, higher means more likely malignant.
        min_tpr: the true-positive rate above which the area counts, in ``[0, 1)``.

    Returns:
        The partial AUC.

    Raises:
        ValueError: ``min_tpr`` is outside ``[0, 1)``, the inputs are malformed, or the labels hold only one
            class (the ROC curve is undefined then).
    """
    if not 0.0 <= min_tpr < 1.0:
        raise ValueError(f"min_tpr must be in [0, 1), got {min_tpr}.")
    y, s = binary_inputs(labels, scores)
    n_positive = int(y.sum())
    if n_positive in (0, y.size):
        raise ValueError(
            f"partial AUC is undefined: the {y.size} labels hold only {'positives' if n_positive else 'negatives'}; "
            "score a split that holds both classes (check the fold / data_fraction)."
        )
    # the official metric: swap the classes and negate the scores, then integrate FPR in [0, max_fpr]
    max_fpr = 1.0 - min_tpr
    fpr, tpr, _ = roc_curve(1.0 - y, -s)
    if max_fpr == 1.0:
        return float(auc(fpr, tpr))
    stop = int(np.searchsorted(fpr, max_fpr, "right"))
    border_tpr = np.interp(max_fpr, fpr[stop - 1 : stop + 1], tpr[stop - 1 : stop + 1])
    return float(auc(np.append(fpr[:stop], max_fpr), np.append(tpr[:stop], border_tpr)))
