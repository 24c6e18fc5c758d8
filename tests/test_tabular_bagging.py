"""Seed-bagged boosters: every positive and neg_per_pos negatives per bag, predictions repeated from the same seeds
and from the saved folder, gains normalised, and feature tables that do not match the model refused by column."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest
from planted_features import synthetic_features

from medbundle.metrics.binary import auroc
from medbundle.tabular import BOOSTERS, MANIFEST, BaggedModel, bag_rows, fit_bagged

TRAIN = 1500  # rows fitted on; the rest of the 2,000 are held out


@pytest.fixture(scope="module")
def table() -> tuple[pd.DataFrame, np.ndarray]:
    """2,000 rows x 20 float32 features, 10 % NaN, ~250 positives planted on x000 most of all."""
    X, y, _ = synthetic_features(2000, 100, 250, n_features=20, missing=0.1, seed=0)
    return X, y


def _fit(name: str, table) -> BaggedModel:
    X, y = table
    return fit_bagged(name, X.iloc[:TRAIN], y[:TRAIN], seeds=[0, 1], neg_per_pos=3, threads=1)


@pytest.fixture(scope="module", params=sorted(BOOSTERS))
def bagged(request, table) -> BaggedModel:
    pytest.importorskip(BOOSTERS[request.param].package)
    return _fit(request.param, table)


def test_a_bag_keeps_every_positive_and_draws_neg_per_pos_negatives_per_positive():
    y = np.zeros(1000, int)
    y[::100] = 1
    rows = bag_rows(y, 20, seed=0)
    assert (np.diff(rows) > 0).all() and set(np.flatnonzero(y)) <= set(rows)
    assert (y[rows] == 0).sum() == 200 and len(rows) == 210
    np.testing.assert_array_equal(bag_rows(y, 20, seed=0), rows)
    assert not np.array_equal(bag_rows(y, 20, seed=1), rows)
    assert len(bag_rows(y, 2.5, seed=0)) == 10 + 25
    np.testing.assert_array_equal(bag_rows(y, None, seed=0), np.arange(1000))
    np.testing.assert_array_equal(bag_rows(y, 500, seed=0), np.arange(1000))  # fewer negatives than asked: all


@pytest.mark.parametrize(("labels", "neg_per_pos", "message"), [
    ([0, 1, 2], 1, r"labels must be 0 or 1, found \[0, 1, 2\]"),
    ([0, 0, 0], 1, "0 positives and 3 negatives"),
    ([0, 1, 0], 0, "neg_per_pos must be above 0"),
])  # fmt: skip
def test_a_bag_refuses_labels_it_cannot_draw_from(labels, neg_per_pos, message):
    with pytest.raises(ValueError, match=message):
        bag_rows(labels, neg_per_pos, seed=0)


def test_a_bagged_model_learns_and_predicts_the_same_from_its_saved_folder(bagged, table, tmp_path):
    X, y = table
    probabilities = bagged.predict(X.iloc[TRAIN:])
    assert auroc(y[TRAIN:], probabilities) > 0.8
    manifest = json.loads(bagged.save(tmp_path).read_text())
    suffix = BOOSTERS[bagged.booster].suffix
    assert manifest["files"] == [f"{bagged.booster}_seed0{suffix}", f"{bagged.booster}_seed1{suffix}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([MANIFEST, *manifest["files"]])
    assert manifest["booster"] == bagged.booster and manifest["columns"] == list(X.columns)
    assert manifest["seeds"] == [0, 1] and manifest["neg_per_pos"] == 3 and manifest["params"] == bagged.params
    loaded = BaggedModel.load(tmp_path, threads=1)
    np.testing.assert_allclose(loaded.predict(X), bagged.predict(X), rtol=0, atol=1e-6)
    assert loaded.importance().equals(bagged.importance())


def test_a_bagged_model_averages_its_members(bagged, table):
    X = table[0]
    booster, matrix = BOOSTERS[bagged.booster], X.to_numpy(np.float32)
    members = [booster.predict(model, matrix, 1) for model in bagged.models]
    assert len(members) == 2 and not np.array_equal(*members)
    np.testing.assert_allclose(bagged.predict(X), np.mean(members, axis=0), rtol=0, atol=1e-12)


def test_the_same_data_and_seeds_give_the_same_predictions(bagged, table):
    X = table[0]
    np.testing.assert_array_equal(_fit(bagged.booster, table).predict(X), bagged.predict(X))


def test_importance_sums_to_one_and_ranks_the_planted_feature_first(bagged, table):
    importance = bagged.importance()
    assert sorted(importance.index) == sorted(table[0].columns) and importance.index[0] == "x000"
    assert importance.sum() == pytest.approx(1.0) and (importance >= 0).all()


def test_predict_matches_columns_by_name_and_names_the_missing_and_extra_ones(bagged, table):
    X = table[0].iloc[TRAIN:]
    np.testing.assert_array_equal(bagged.predict(X[X.columns[::-1]]), bagged.predict(X))
    with pytest.raises(ValueError, match=r"missing \['x003'\], extra \['age_approx'\]"):
        bagged.predict(X.drop(columns="x003").assign(age_approx=50.0))
    with pytest.raises(ValueError, match=r"feature columns \['x005'\] are not numeric"):
        bagged.predict(X.assign(x005="left arm"))


def test_predict_scores_one_metadata_row_given_as_a_mapping(bagged, table):
    X = table[0]
    last = int(np.flatnonzero(X.isna().any(axis=1))[-1])  # a row with missing cells
    row = {column: X[column].iloc[last].item() for column in X.columns[::-1]}  # plain floats, NaN where missing
    np.testing.assert_allclose(bagged.predict(row), bagged.predict(X.iloc[last : last + 1]), rtol=0, atol=1e-6)


def test_fit_bagged_refuses_what_it_cannot_fit(table):
    X, y = table
    pytest.importorskip("lightgbm")
    with pytest.raises(ValueError, match="seeds is empty"):
        fit_bagged("lightgbm", X, y, seeds=[])
    with pytest.raises(ValueError, match=r"y holds \(10,\) labels for 2000 rows"):
        fit_bagged("lightgbm", X, y[:10])
    with pytest.raises(ValueError, match="unknown booster 'lgbm'"):
        fit_bagged("lgbm", X, y)


def test_load_names_a_missing_manifest_model_file_or_library(table, tmp_path, monkeypatch):
    pytest.importorskip("lightgbm")
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}/{MANIFEST}: no bagged tree model here"):
        BaggedModel.load(tmp_path)
    _fit("lightgbm", table).save(tmp_path)
    (tmp_path / "lightgbm_seed1.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing from .*: \['lightgbm_seed1.txt'\]"):
        BaggedModel.load(tmp_path)
    monkeypatch.setitem(sys.modules, "lightgbm", None)
    with pytest.raises(ImportError, match=r"pip install 'medbundle\[tabular\]'"):
        BaggedModel.load(tmp_path)
