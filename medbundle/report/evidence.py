"""Which images the report explains: the most confident true positives, false positives and false negatives.

A clinician checks where a model looked on the cases it was surest about, right or wrong, and on the positives
it missed most clearly. Binary: by the positive probability against the stored threshold. Multi-class: per
class, a true positive is an image of that class predicted as it, a false positive one of another class predicted
as it (by the probability of the class) and a false negative one of the class predicted as another (lowest
probability of its class first).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["evidence_cases"]


def _take(frame: pd.DataFrame, mask: np.ndarray, score: np.ndarray, k: int, ascending: bool) -> pd.DataFrame:
    chosen = frame.assign(_score=score)[mask].sort_values("_score", ascending=ascending, kind="stable")
    return chosen.head(k).drop(columns="_score")


def evidence_cases(
    table: pd.DataFrame, k: int = 3, threshold: float = 0.5, class_names: Sequence[str] | None = None
) -> list[tuple[str, int | None, pd.DataFrame]]:
    """``[(section title, class index or None, rows)]`` of an evaluation's image table.

    Args:
        table: ``predictions_image.csv`` with ``label`` and either ``pred`` (binary) or ``prob_<class>`` columns.
        k: images per section.
        threshold: a binary model's decision threshold (the stored one, on the same probability scale).
        class_names: a multi-class model's classes, in ``prob_`` column order.
    """
    labels = table["label"].to_numpy().astype(int)
    if "pred" in table:
        p = table["pred"].to_numpy(float)
        positive, predicted = labels == 1, p >= threshold
        return [
            ("most confident true positives", None, _take(table, positive & predicted, p, k, ascending=False)),
            ("most confident false positives", None, _take(table, ~positive & predicted, p, k, ascending=False)),
            ("clearest false negatives", None, _take(table, positive & ~predicted, p, k, ascending=True)),
        ]
    names = list(class_names or [c.removeprefix("prob_") for c in table.columns if c.startswith("prob_")])
    probabilities = table[[f"prob_{n}" for n in names]].to_numpy(float)
    argmax = probabilities.argmax(1)
    sections = []
    for index, name in enumerate(names):
        p = probabilities[:, index]
        truth, predicted = labels == index, argmax == index
        sections += [
            (f"{name}: most confident true positives", index, _take(table, truth & predicted, p, k, ascending=False)),
            (f"{name}: most confident false positives", index, _take(table, ~truth & predicted, p, k, ascending=False)),
            (f"{name}: clearest false negatives", index, _take(table, truth & ~predicted, p, k, ascending=True)),
        ]
    return sections
