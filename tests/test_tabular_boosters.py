"""The tree-library registry: each library learns through missing cells, predicts the same after its file round
trip, repeats itself given a seed, ranks the planted feature first, and names the install command when missing."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from planted_features import synthetic_features

from medbundle.metrics.binary import auroc
from medbundle.tabular import BOOSTERS, available_boosters, default_threads, get_booster

TRAIN = 1500  # rows fitted on; the rest of the 2,000 are held out


@pytest.fixture(scope="module")
def table() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """2,000 rows x 20 float32 features, 10 % NaN, ~250 positives planted on x000 most of all."""
    X, y, _ = synthetic_features(2000, 100, 250, n_features=20, missing=0.1, seed=0)
    return X.to_numpy(), y.astype(np.float32), list(X.columns)


@pytest.fixture(scope="module", params=sorted(BOOSTERS))
def fitted(request, table):
    """(booster, its module, a model fitted with the default settings, seed 0 and one thread)."""
    booster = BOOSTERS[request.param]
    module = pytest.importorskip(booster.package)
    X, y, columns = table
    return booster, module, booster.fit(module, X[:TRAIN], y[:TRAIN], columns, dict(booster.params), 0, 1)


def test_each_booster_learns_the_planted_signal_through_missing_cells(fitted, table):
    booster, _, model = fitted
    X, y, _ = table
    assert np.isnan(X[:TRAIN]).mean() > 0.05 and np.isnan(X[TRAIN:]).any()
    probabilities = booster.predict(model, X[TRAIN:], 1)
    assert probabilities.shape == (len(X) - TRAIN,) and ((probabilities >= 0) & (probabilities <= 1)).all()
    assert auroc(y[TRAIN:], probabilities) > 0.8


def test_a_saved_model_predicts_as_the_fitted_one_did(fitted, table, tmp_path):
    booster, module, model = fitted
    path = tmp_path / f"model{booster.suffix}"
    booster.save(model, path)
    loaded = booster.load(module, path)
    X = table[0]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    np.testing.assert_allclose(booster.predict(loaded, X, 1), booster.predict(model, X, 1), rtol=0, atol=1e-6)


def test_the_same_seed_fits_the_same_model_and_another_seed_another(fitted, table):
    booster, module, model = fitted
    X, y, columns = table
    again = booster.fit(module, X[:TRAIN], y[:TRAIN], columns, dict(booster.params), 0, 1)
    other = booster.fit(module, X[:TRAIN], y[:TRAIN], columns, dict(booster.params), 1, 1)
    np.testing.assert_array_equal(booster.predict(again, X, 1), booster.predict(model, X, 1))
    assert not np.array_equal(booster.predict(other, X, 1), booster.predict(model, X, 1))


def test_importance_ranks_the_planted_feature_first(fitted, table):
    booster, _, model = fitted
    columns = table[2]
    gains = np.asarray(booster.importance(model, columns))
    assert gains.shape == (len(columns),) and (gains >= 0).all() and columns[int(gains.argmax())] == "x000"


def test_a_missing_library_is_left_out_and_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "lightgbm", None)  # `import lightgbm` now raises ImportError
    assert "lightgbm" not in available_boosters()
    with pytest.raises(ImportError, match=r"'lightgbm' needs the lightgbm package.*pip install 'medbundle\[tabular\]'"):
        get_booster("lightgbm").module()


def test_available_boosters_keeps_the_registry_order():
    assert available_boosters() == [name for name in BOOSTERS if name in available_boosters()]


def test_an_unknown_booster_is_refused_with_the_registered_names():
    with pytest.raises(ValueError, match=r"unknown booster 'lgbm'; choose one of \['catboost', 'lightgbm', 'xg"):
        get_booster("lgbm")


def test_default_threads_are_the_cores_this_process_may_use():
    assert 1 <= default_threads() <= (os.cpu_count() or 1)
