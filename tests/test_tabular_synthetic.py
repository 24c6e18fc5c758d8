"""Tests for the synthetic ISIC 2024 training table (medbundle.tabular.synthetic)."""

from __future__ import annotations

import pytest

from medbundle.demo.isic import TRAIN_COLUMNS
from medbundle.tabular import synthetic_isic_table


def test_synthetic_table_has_the_requested_size() -> None:
    table = synthetic_isic_table(n_rows=3000, n_patients=40, n_positive=12, seed=1)
    assert list(table.columns) == list(TRAIN_COLUMNS)
    assert len(table) == 3000 and table["patient_id"].nunique() == 40 and table["target"].sum() == 12
    assert table["isic_id"].is_unique and table["isic_id"].is_monotonic_increasing
    assert ((table["iddx_1"] == "Malignant") == (table["target"] == 1)).all()  # diagnosis columns follow the target
    per_patient = table.groupby("patient_id")[["age_approx", "sex", "attribution"]].nunique(dropna=False)
    assert (per_patient == 1).all().all()


def test_synthetic_table_rejects_impossible_sizes() -> None:
    with pytest.raises(ValueError, match="n_patients"):
        synthetic_isic_table(n_rows=10, n_patients=11)
    with pytest.raises(ValueError, match="n_positive"):
        synthetic_isic_table(n_rows=10, n_patients=2, n_positive=11)
