"""Tests for the synthetic ISIC 2024 skin-lesion demo data set."""

from __future__ import annotations

from pathlib import Path

import cv2
import h5py
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from medbundle.demo import write_isic_demo
from medbundle.demo.isic import TEST_COLUMNS, TRAIN_COLUMNS

SIZE_RANGE = (90, 200)
FILES = ["sample_submission.csv", "test-image.hdf5", "test-metadata.csv", "train-image.hdf5", "train-metadata.csv"]
SITES = {"head/neck", "upper extremity", "lower extremity", "anterior torso", "posterior torso"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One small data set shared by the tests of this module (~80 train images)."""
    return write_isic_demo(tmp_path_factory.mktemp("isic"), n_patients=12, positive_rate=0.1, n_test=8)


@pytest.fixture(scope="module")
def train(demo: dict) -> pd.DataFrame:
    return pd.read_csv(demo["train_csv"])


@pytest.fixture(scope="module")
def unlabelled(demo: dict) -> pd.DataFrame:
    """The test metadata (named so pytest does not take it for a test)."""
    return pd.read_csv(demo["test_csv"])


def read_images(path: Path) -> dict[str, np.ndarray]:
    """Every image of an HDF5 file, decoded the way the real Kaggle file is read (BGR)."""
    images = {}
    with h5py.File(path, "r") as f:
        for isic_id in f:
            data = f[isic_id][()]
            assert isinstance(data, np.bytes_), isic_id
            images[isic_id] = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    return images


def test_layout_columns_and_summary(demo: dict, train: pd.DataFrame, unlabelled: pd.DataFrame):
    root = demo["root"]
    assert sorted(p.name for p in root.iterdir()) == FILES
    assert list(train.columns) == list(TRAIN_COLUMNS)
    assert list(unlabelled.columns) == list(TEST_COLUMNS) and "target" not in unlabelled.columns
    assert list(TRAIN_COLUMNS[:10]) == [
        "isic_id", "target", "patient_id", "age_approx", "sex", "anatom_site_general",
        "clin_size_long_diam_mm", "image_type", "tbp_tile_type", "tbp_lv_A",
    ]  # fmt: skip
    assert train["isic_id"].str.fullmatch(r"ISIC_\d{7}").all() and train["isic_id"].is_monotonic_increasing
    assert train["patient_id"].str.fullmatch(r"IP_\d{7}").all()
    assert set(train["target"]) == {0, 1}
    assert (train["image_type"] == "TBP tile: close-up").all()
    assert set(train["tbp_tile_type"]) <= {"3D: white", "3D: XP"}
    assert set(train["sex"].dropna()) <= {"male", "female"}
    assert set(train["anatom_site_general"].dropna()) <= SITES
    assert train["age_approx"].dropna().mod(5).eq(0).all()
    assert train["clin_size_long_diam_mm"].between(1.0, 15.0).all()
    assert (train["tbp_lv_deltaL"] < 0).mean() > 0.95  # lesions are darker than the skin around them
    assert (demo["n_train"], demo["n_patients"], demo["n_test"]) == (len(train), 12, 8)
    assert demo["n_positive"] == train["target"].sum()
    submission = pd.read_csv(demo["sample_submission_csv"])
    assert list(submission.columns) == ["isic_id", "target"]
    assert list(submission["isic_id"]) == list(unlabelled["isic_id"])


def test_missing_values_like_the_real_file(tmp_path: Path):
    train = pd.read_csv(write_isic_demo(tmp_path, n_patients=150, lesions_per_patient=(1, 2),
                                        size_range=(32, 40), n_test=0)["train_csv"])  # fmt: skip
    for column in ["age_approx", "sex", "anatom_site_general"]:
        assert 0 < train[column].isna().mean() < 0.1, column
    assert train[["isic_id", "target", "patient_id", "tbp_lv_L", "iddx_full", "iddx_1"]].notna().all().all()


def test_every_csv_id_is_an_hdf5_key_and_back(demo: dict, train: pd.DataFrame, unlabelled: pd.DataFrame):
    for frame, hdf5 in ((train, demo["train_hdf5"]), (unlabelled, demo["test_hdf5"])):
        assert frame["isic_id"].is_unique
        with h5py.File(hdf5, "r") as f:
            assert sorted(f.keys()) == list(frame["isic_id"])
            assert all(f[key].shape == () and f[key].dtype.kind == "S" for key in f)


def test_images_are_rgb_jpegs_of_varied_sizes(demo: dict):
    images = read_images(demo["train_hdf5"]) | read_images(demo["test_hdf5"])
    shapes = {image.shape for image in images.values()}
    assert all(len(shape) == 3 and shape[2] == 3 for shape in shapes)
    assert all(SIZE_RANGE[0] <= side <= SIZE_RANGE[1] for shape in shapes for side in shape[:2])
    assert len(shapes) > len(images) // 2
    assert any(rows != cols for rows, cols, _ in shapes) and any(rows == cols for rows, cols, _ in shapes)
    with h5py.File(demo["train_hdf5"], "r") as f:
        assert all(f[key][()].startswith(b"\xff\xd8") for key in f)
    for image in images.values():  # skin in the corners: red above blue once decoded BGR -> RGB
        corners = np.concatenate([image[:8, :8], image[-8:, -8:]]).reshape(-1, 3).mean(0)
        assert corners[2] > corners[0] + 20


def test_test_split_is_separate_and_unlabelled(demo: dict, train: pd.DataFrame, unlabelled: pd.DataFrame):
    assert len(unlabelled) == 8
    assert not set(unlabelled["isic_id"]) & set(train["isic_id"])
    assert not set(unlabelled["patient_id"]) & set(train["patient_id"])
    assert demo["n_test_patients"] == unlabelled["patient_id"].nunique()


def test_several_lesions_per_patient(train: pd.DataFrame, tmp_path: Path):
    per_patient = train.groupby("patient_id").size()
    assert per_patient.between(1, 12).all() and per_patient.nunique() > 3 and per_patient.mean() > 3
    fixed = write_isic_demo(tmp_path, n_patients=4, lesions_per_patient=(3, 3), n_test=5, size_range=(48, 64))
    assert pd.read_csv(fixed["train_csv"]).groupby("patient_id").size().eq(3).all()
    assert fixed["n_train"] == 12 and fixed["n_test_patients"] == 2


def test_positive_rate_is_honoured(tmp_path: Path):
    summary = write_isic_demo(tmp_path, n_patients=80, positive_rate=0.05, n_test=0, size_range=(40, 48))
    train = pd.read_csv(summary["train_csv"])
    assert summary["n_positive"] == train["target"].sum() == round(0.05 * len(train))
    assert train.loc[train["target"] == 1, "patient_id"].nunique() >= 2


def test_at_least_two_positive_patients_whatever_the_rate(tmp_path: Path):
    summary = write_isic_demo(tmp_path, n_patients=3, positive_rate=1e-4, lesions_per_patient=(1, 1), n_test=0)
    train = pd.read_csv(summary["train_csv"])
    assert train["target"].tolist().count(1) == summary["n_positive"] == 2
    assert train.loc[train["target"] == 1, "patient_id"].nunique() == 2
    assert pd.read_csv(summary["test_csv"]).empty
    with h5py.File(summary["test_hdf5"], "r") as f:
        assert len(f) == 0


def test_diagnosis_columns_follow_the_target(train: pd.DataFrame):
    malignant = train["target"] == 1
    assert (train["iddx_1"].eq("Malignant") == malignant).all()
    assert train.loc[malignant, "lesion_id"].str.fullmatch(r"IL_\d{7}").all()
    assert train["lesion_id"].dropna().is_unique
    assert (train["iddx_full"].str.split("::").str[0] == train["iddx_1"]).all()
    invasive = train["iddx_full"].str.contains("Melanoma Invasive")
    assert train.loc[~invasive, ["mel_thick_mm", "mel_mitotic_index"]].isna().all().all()


def test_same_seed_writes_same_bytes(demo: dict, tmp_path: Path):
    again = write_isic_demo(tmp_path / "again", n_patients=12, positive_rate=0.1, n_test=8)
    other = write_isic_demo(tmp_path / "other", n_patients=12, positive_rate=0.1, n_test=8, seed=1)
    for name in FILES:
        assert (demo["root"] / name).read_bytes() == (again["root"] / name).read_bytes(), name
    assert (demo["root"] / "train-metadata.csv").read_bytes() != (other["root"] / "train-metadata.csv").read_bytes()


def test_malignancy_is_visible_but_not_trivial(tmp_path: Path):
    """Colour spread in the centre of the tile, at the 64 px a tiny CNN would see, ranks
    malignant lesions high (variegation, dark irregular borders) without separating them fully
    (atypical benign and subtle malignant lesions overlap)."""
    summary = write_isic_demo(tmp_path, n_patients=40, positive_rate=0.25, n_test=0, size_range=(90, 140))
    train = pd.read_csv(summary["train_csv"])
    images = read_images(summary["train_hdf5"])
    feature = []
    for isic_id in train["isic_id"]:
        small = cv2.resize(images[isic_id], (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32)
        feature.append(small[16:48, 16:48].reshape(-1, 3).std(0).mean())
    auroc = roc_auc_score(train["target"], feature)
    assert 0.8 < auroc < 0.99, auroc


def test_default_size_is_the_documented_demo(tmp_path: Path):
    summary = write_isic_demo(tmp_path)
    assert (summary["n_patients"], summary["n_test"]) == (100, 20)
    assert 300 < summary["n_train"] < 1000
    assert summary["n_positive"] == max(2, round(0.01 * summary["n_train"]))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n_patients": 2}, "n_patients"),
        ({"positive_rate": 0.0}, "positive_rate"),
        ({"positive_rate": 1.0}, "positive_rate"),
        ({"n_test": -1}, "n_test"),
        ({"lesions_per_patient": (0, 3)}, "lesions_per_patient"),
        ({"lesions_per_patient": (5, 2)}, "lesions_per_patient"),
        ({"size_range": (200, 100)}, "size_range"),
        ({"size_range": (16, 64)}, "size_range"),
    ],
)
def test_invalid_arguments_raise(tmp_path: Path, kwargs: dict, name: str):
    with pytest.raises(ValueError, match=name):
        write_isic_demo(tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())
