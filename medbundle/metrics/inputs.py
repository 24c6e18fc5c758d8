"""Input checks shared by the binary metrics."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["binary_inputs"]


def binary_inputs(labels: npt.ArrayLike, scores: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate and flatten binary labels and real-valued scores for the metric functions.

    Every metric calls it, so they all reject bad input with the same message.
    ``(N, 1)`` arrays (a collated batch of ``[label]`` / a one-logit model output) are flattened.

    Args:
        labels: ground truth, values 0 or 1, shape ``(N,)`` or ``(N, 1)``.
        scores: predictions or scores, same number of elements as ``labels``.

    Returns:
        ``(labels, scores)`` as 1-D float arrays.

    Raises:
        ValueError: lengths differ, labels are not 0/1, or scores hold NaN.
    """
    y = np.asarray(labels, dtype=float).reshape(-1)
    s = np.asarray(scores, dtype=float).reshape(-1)
    if y.shape != s.shape:
        raise ValueError(
            f"labels have {y.size} elements but predictions/scores have {s.size}; pass one score per label."
        )
    bad = ~np.isin(y, (0.0, 1.0))
    if bad.any():
        raise ValueError(
            f"labels must be 0 or 1; found {np.unique(y[bad])[:5].tolist()} at positions "
            f"{np.flatnonzero(bad)[:5].tolist()}; binarise the labels first."
        )
    if np.isnan(s).any():
        raise ValueError(
            f"predictions/scores hold NaN at positions {np.flatnonzero(np.isnan(s))[:5].tolist()}; "
            "check the model output (e.g. a diverged training run)."
        )
    return y, s
