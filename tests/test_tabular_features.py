"""Tests for the ISIC 2024 tabular feature matrix (medbundle.tabular.features)."""

from __future__ import annotations

import dataclasses
import json
import logging
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from medbundle.demo.isic import TEST_COLUMNS, TRAIN_ONLY_COLUMNS, write_isic_demo
from medbundle.tabular import (
    CATEGORICAL_COLUMNS,
    ENGINEERED,
    NUMERIC_COLUMNS,
    FeatureSpec,
    feature_table_markdown,
    fit_features,
    make_features,
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A small demo data set (~200 train lesions of 30 patients, ~10 % malignant) with small images."""
    return write_isic_demo(
        tmp_path_factory.mktemp("isic"), n_patients=30, positive_rate=0.1, n_test=20, size_range=(32, 48)
    )


@pytest.fixture(scope="module")
def train(demo: dict) -> pd.DataFrame:
    return pd.read_csv(demo["train_csv"])


@pytest.fixture(scope="module")
def fitted(train: pd.DataFrame) -> tuple[FeatureSpec, pd.DataFrame]:
    return fit_features(train, source="train-metadata.csv")


def lesions(patients: list[str], **columns: list) -> pd.DataFrame:
    """A hand-made test-metadata frame: one row per entry of `patients`, every value 1.0 or a fixed category
    unless given in `columns`."""
    frame = pd.DataFrame({"isic_id": [f"ISIC_{k:07d}" for k in range(len(patients))], "patient_id": patients})
    for column in NUMERIC_COLUMNS:
        frame[column] = 1.0
    for column in CATEGORICAL_COLUMNS:
        frame[column] = {"sex": "male", "anatom_site_general": "posterior torso", "attribution": "ACEMID MIA"}.get(
            column, "Torso Back" if column.startswith("tbp_lv_location") else "3D: XP"
        )
    for column, values in columns.items():
        frame[column] = values
    return frame


def test_spec_json_round_trip(fitted: tuple[FeatureSpec, pd.DataFrame]) -> None:
    spec, _ = fitted
    text = spec.to_json()
    assert isinstance(json.loads(text), dict)
    assert FeatureSpec.from_json(text) == spec
    with pytest.raises(ValueError, match="not a FeatureSpec JSON"):
        FeatureSpec.from_json(json.dumps({"numeric": []}))


def test_train_and_test_columns_match(demo: dict, fitted: tuple[FeatureSpec, pd.DataFrame]) -> None:
    spec, train_matrix = fitted
    test = pd.read_csv(demo["test_csv"])
    test_matrix = make_features(test, spec, source="test-metadata.csv")
    assert list(train_matrix.columns) == list(test_matrix.columns) == list(spec.columns)
    assert set(train_matrix.dtypes) == set(test_matrix.dtypes) == {np.dtype(np.float32)}
    assert test_matrix.index.equals(test.index)


def test_make_features_on_training_rows_equals_fit(
    train: pd.DataFrame, fitted: tuple[FeatureSpec, pd.DataFrame]
) -> None:
    spec, matrix = fitted
    pd.testing.assert_frame_equal(make_features(train, spec), matrix)


def test_rows_keep_their_order_and_index(train: pd.DataFrame, fitted: tuple[FeatureSpec, pd.DataFrame]) -> None:
    spec, matrix = fitted
    shuffled = train.sample(frac=1.0, random_state=0)
    shuffled.index = shuffled.index + 1000
    result = make_features(shuffled, spec)
    assert result.index.equals(shuffled.index)
    np.testing.assert_allclose(result.to_numpy(), matrix.loc[shuffled.index - 1000].to_numpy(), rtol=1e-6, atol=1e-6)


def test_column_names_suit_the_boosters_and_count(fitted: tuple[FeatureSpec, pd.DataFrame]) -> None:
    spec, matrix = fitted
    assert all(re.fullmatch(r"[A-Za-z0-9_]+", name) for name in matrix.columns)
    assert matrix.columns.is_unique
    numeric = len(NUMERIC_COLUMNS) + len(ENGINEERED)
    one_hot = sum(len(vocabulary) for vocabulary in spec.categories.values())
    assert matrix.shape[1] == numeric + 1 + 2 * numeric + one_hot  # features, lesion count, z, rank, one-hot
    assert "patient_lesion_count" in matrix and "tbp_lv_H_patient_z" in matrix and "hue_contrast_patient_rank" in matrix
    assert "attribution__department_of_dermatology_hospital_clinic_de_barcelona" in matrix  # "Clínic": ASCII


def test_demo_matrix_is_finite_where_known_and_separates_target(
    train: pd.DataFrame, fitted: tuple[FeatureSpec, pd.DataFrame]
) -> None:
    _, matrix = fitted
    assert not np.isinf(matrix.to_numpy()).any()
    aurocs = {}
    for name in ENGINEERED:
        known = matrix[name].notna()
        aurocs[name] = roc_auc_score(train["target"][known], matrix[name][known])
    assert aurocs["lesion_severity_index"] > 0.6, aurocs  # malignant demo lesions: irregular and variegated


def test_train_only_columns_are_ignored(train: pd.DataFrame, fitted: tuple[FeatureSpec, pd.DataFrame]) -> None:
    spec, matrix = fitted
    assert not set(spec.numeric) & {*TRAIN_ONLY_COLUMNS, "isic_id", "patient_id"}
    changed = train.copy()
    changed["target"] = 1 - changed["target"]
    changed["iddx_1"] = "Malignant"
    changed["tbp_lv_dnn_lesion_confidence"] = 0.0
    pd.testing.assert_frame_equal(make_features(changed, spec), matrix)
    pd.testing.assert_frame_equal(make_features(changed[list(TEST_COLUMNS)], spec), matrix)


def test_missing_columns_are_all_named(demo: dict, fitted: tuple[FeatureSpec, pd.DataFrame]) -> None:
    spec, _ = fitted
    test = pd.read_csv(demo["test_csv"]).drop(columns=["tbp_lv_x", "sex"])
    with pytest.raises(ValueError, match=r"test-metadata.csv lacks the column\(s\) 'tbp_lv_x', 'sex'"):
        make_features(test, spec, source="test-metadata.csv")
    with pytest.raises(ValueError, match="patient_id"):
        make_features(pd.read_csv(demo["test_csv"]).drop(columns=["patient_id"]), spec)
    with pytest.raises(ValueError, match="image model's score column 'score'"):
        fit_features(lesions(["a"]), image_score="score")


def test_missing_patient_and_bad_numbers_are_errors() -> None:
    with pytest.raises(ValueError, match=r"my.csv: 1 row\(s\) have no patient_id"):
        fit_features(lesions(["a", None]), source="my.csv")
    with pytest.raises(ValueError, match="column 'tbp_lv_x' holds text that is not a number in 1 row"):
        fit_features(lesions(["a", "a"], tbp_lv_x=["1.5", "left"]))


def test_unknown_and_missing_categories_give_zeros(
    fitted: tuple[FeatureSpec, pd.DataFrame], caplog: pytest.LogCaptureFixture
) -> None:
    spec, _ = fitted
    frame = lesions(["a", "a", "a"], sex=["male", "unknown-sex", None], tbp_lv_location=["Nowhere", "", np.nan])
    with caplog.at_level(logging.WARNING, logger="medbundle.tabular.features"):
        matrix = make_features(frame, spec, source="new.csv")
    sex = matrix[[c for c in matrix if c.startswith("sex__")]].to_numpy()
    np.testing.assert_array_equal(sex, [[0, 1], [0, 0], [0, 0]])  # female, male
    location = matrix[[c for c in matrix if c.startswith("tbp_lv_location__")]].to_numpy()
    assert not location.any()
    assert "new.csv: 1 row(s) have a sex that the training frame did not have, or had on too few rows (e.g. " \
        "'unknown-sex')" in caplog.text
    assert "1 row(s) have a tbp_lv_location" in caplog.text


def test_a_category_value_on_too_few_training_rows_gets_no_column(train: pd.DataFrame) -> None:
    """A free-text column (real_isic's attribution names each image's source id) must not become a column per row."""
    frame = train.assign(attribution=[f"source id {k}" for k in range(len(train))])
    frame.loc[frame.index[:12], "attribution"] = "a common source"
    spec, matrix = fit_features(frame)
    assert spec.categories["attribution"] == ("a common source",)
    assert [c for c in matrix if c.startswith("attribution__")] == ["attribution__a_common_source"]
    assert matrix["attribution__a_common_source"].sum() == 12
    assert fit_features(frame, min_category_count=1)[0].categories["attribution"].__len__() == len(train) - 11


def test_per_patient_z_score_rank_and_count_by_hand() -> None:
    # patient a: 1, 2, 6 (mean 3, population std sqrt(14/3)); b: 5, 5; c: 7 alone; rows interleaved
    frame = lesions(["a", "b", "a", "c", "b", "a"], tbp_lv_x=[1.0, 5.0, 2.0, 7.0, 5.0, 6.0])
    _, matrix = fit_features(frame)
    std = np.sqrt(14 / 3)
    np.testing.assert_allclose(
        matrix["tbp_lv_x_patient_z"], [-2 / std, 0.0, -1 / std, 0.0, 0.0, 3 / std], rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(matrix["tbp_lv_x_patient_rank"], [1 / 3, 0.75, 2 / 3, 1.0, 0.75, 1.0], rtol=1e-6)
    np.testing.assert_array_equal(matrix["patient_lesion_count"], [3, 2, 3, 1, 2, 3])
    np.testing.assert_array_equal(matrix["tbp_lv_y_patient_z"], 0.0)  # constant within every patient


def test_missing_cells_stay_nan() -> None:
    frame = lesions(["a", "a", "a"], tbp_lv_x=[np.nan, 2.0, 4.0], tbp_lv_y=["", " 3", "5"], age_approx=np.nan)
    _, matrix = fit_features(frame)
    for name in ("tbp_lv_x", "position_distance_3d", "tbp_lv_x_patient_z", "tbp_lv_x_patient_rank"):
        assert np.isnan(matrix[name].iloc[0]), name
    np.testing.assert_allclose(matrix["tbp_lv_x_patient_rank"].iloc[1:], [0.5, 1.0])  # ranked among known values
    np.testing.assert_allclose(matrix["tbp_lv_x_patient_z"].iloc[1:], [-1.0, 1.0], rtol=1e-4)
    assert np.isnan(matrix["tbp_lv_y"].iloc[0]) and matrix["tbp_lv_y"].iloc[1] == 3.0
    assert matrix[["age_approx", "size_age_interaction", "age_approx_patient_rank"]].isna().all().all()


def test_division_by_zero_gives_nan_not_inf() -> None:
    frame = lesions(["a", "b"], clin_size_long_diam_mm=[0.0, 2.0], tbp_lv_perimeterMM=[0.0, 4.0])
    _, matrix = fit_features(frame)
    assert np.isnan(matrix[["lesion_size_ratio", "lesion_shape_index", "area_to_perimeter_ratio"]].iloc[0]).all()
    assert matrix["lesion_size_ratio"].iloc[1] == 0.5 and matrix["lesion_shape_index"].iloc[1] == 1 / 16
    assert not np.isinf(matrix.to_numpy()).any()


def test_image_score_is_a_feature(train: pd.DataFrame) -> None:
    frame = train.assign(score=np.linspace(0.0, 1.0, len(train)))
    spec, matrix = fit_features(frame, image_score="score")
    assert spec.image_score == "score"
    np.testing.assert_allclose(matrix["image_score"], frame["score"], rtol=1e-6)
    expected = frame.groupby("patient_id")["score"].transform("mean")
    np.testing.assert_allclose(matrix["image_score_patient_mean"], expected, rtol=1e-5)
    assert {"image_score_patient_z", "image_score_patient_rank"} <= set(matrix.columns)
    with pytest.raises(ValueError, match="image_score='target' is an ISIC metadata column"):
        fit_features(train, image_score="target")


def test_spec_of_another_version_is_refused(fitted: tuple[FeatureSpec, pd.DataFrame], train: pd.DataFrame) -> None:
    spec, _ = fitted
    with pytest.raises(ValueError, match="refit it"):
        make_features(train, dataclasses.replace(spec, engineered=(*spec.engineered, "future_ratio")))
    with pytest.raises(ValueError, match="other column names or order"):
        make_features(train, dataclasses.replace(spec, columns=spec.columns[::-1]))


def test_feature_table_lists_every_engineered_feature() -> None:
    table = feature_table_markdown().splitlines()
    assert len(table) == 2 + len(ENGINEERED)
    assert table[2].startswith("| `lesion_size_ratio` | `tbp_lv_minorAxisMM / clin_size_long_diam_mm` |")
    assert 30 <= len(ENGINEERED) <= 45


def test_the_isic_guide_documents_the_features_as_the_code_builds_them() -> None:
    """bundles/isic/docs/README.md embeds feature_table_markdown(): a formula changed here must be changed there."""
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[1] / "bundles" / "isic" / "docs" / "README.md").read_text()
    assert feature_table_markdown() in guide
