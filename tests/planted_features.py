"""A float32 feature table with a planted signal, for the booster tests: the trees must find x000 first."""

from __future__ import annotations

import numpy as np
import pandas as pd


def synthetic_features(
    n_rows: int, n_patients: int, n_positive: int, n_features: int = 150, missing: float = 0.05, seed: int = 0
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """A float32 feature table with a planted signal: (features, 0/1 labels, patient per row).

    Features are standard normal, named ``x000``...; exactly `n_positive` rows are positive, drawn without
    replacement with odds ``exp(2 x000 + x001 + x002 / 1.5 + ...)`` (the first five features, weights 2 / (1 + i)),
    so ``x000`` carries the most signal. A `missing` share of cells is NaN. Rows are spread over `n_patients`
    uniformly.
    """
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((n_rows, n_features), dtype=np.float32)
    informative = min(5, n_features)
    risk = values[:, :informative].astype(np.float64) @ (2.0 / (1.0 + np.arange(informative)))
    # Gumbel top-k: the k largest of risk + Gumbel noise are a draw without replacement with odds exp(risk)
    positives = np.argpartition(-(risk + rng.gumbel(size=n_rows)), n_positive - 1)[:n_positive]
    labels = np.zeros(n_rows, np.int8)
    labels[positives] = 1
    values[rng.random((n_rows, n_features), dtype=np.float32) < missing] = np.nan
    columns = [f"x{i:03d}" for i in range(n_features)]
    patients = rng.integers(n_patients, size=n_rows)
    return pd.DataFrame(values, columns=columns, copy=False), labels, patients
