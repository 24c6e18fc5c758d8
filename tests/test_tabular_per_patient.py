"""Tests for the per-patient statistics of the tabular stage (medbundle.tabular.per_patient)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from medbundle.tabular.per_patient import EPS, patient_means, patient_ranks, patient_zscores


def random_lesions() -> tuple[np.ndarray, np.ndarray]:
    """20 features of 600 lesions of 60 interleaved patients: many ties, 10 % NaN, a patient with one lesion and one
    whose first feature is all NaN."""
    rng = np.random.default_rng(0)
    patients = rng.integers(0, 58, 600)
    patients[[5, 9]] = 58, 59  # single lesions
    numeric = rng.integers(0, 6, (20, 600)).astype(float)
    numeric[:, 100:] += rng.normal(size=(20, 500))
    numeric[rng.random(numeric.shape) < 0.1] = np.nan
    numeric[0, patients == 3] = np.nan
    return numeric, patients


def test_ranks_equal_pandas() -> None:
    numeric, patients = random_lesions()
    expected = pd.DataFrame(numeric.T).groupby(patients).rank(pct=True).to_numpy().T
    np.testing.assert_allclose(patient_ranks(numeric, patients), expected, equal_nan=True)


def test_means_and_zscores_equal_pandas() -> None:
    numeric, patients = random_lesions()
    frame = pd.DataFrame(numeric.T)
    mean = frame.groupby(patients).transform("mean")
    std = frame.groupby(patients).transform(lambda x: x.std(ddof=0))
    np.testing.assert_allclose(patient_means(numeric, patients)[:, patients], mean.to_numpy().T, equal_nan=True)
    z = patient_zscores(numeric, patients)
    np.testing.assert_allclose(z, ((frame - mean) / (std + EPS)).to_numpy().T, equal_nan=True, atol=1e-9)
    assert np.all((z[:, [5, 9]] == 0) | np.isnan(numeric[:, [5, 9]]))  # a patient's only lesion


def test_no_lesions() -> None:
    empty, patients = np.empty((3, 0)), np.empty(0, np.intp)
    assert patient_ranks(empty, patients).shape == patient_zscores(empty, patients).shape == (3, 0)
