"""Which items an ensemble scores: the members' validation fold, a held-out CSV, a split folder, image files."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest

from medbundle.data import isic_datalist, split_fold
from medbundle.demo import write_isic_demo
from medbundle.ensemble import (
    Member,
    image_datalist,
    labelled_datalist,
    unlabelled_datalist,
)

ISIC = {"task": "isic", "backbone": "resnet10t", "image_size": [48, 48], "num_classes": 1, "n_folds": 3, "seed": 7}


@pytest.fixture(scope="module")
def isic_data(tmp_path_factory):
    data = tmp_path_factory.mktemp("isic")
    write_isic_demo(data, n_patients=9, positive_rate=0.2, n_test=3, size_range=(32, 40), seed=3)
    return data


def member(path: str, **config) -> Member:
    return Member(Path(path).parent.name, Path(path), {**ISIC, **config}, {})


def test_validation_fold_uses_the_members_stored_split_and_warns_about_other_folds(isic_data, caplog):
    members = [member("r/a/fold_1/model.pt"), member("r/b/fold_0/model.pt")]
    with caplog.at_level(logging.WARNING):
        items = labelled_datalist("isic", members, isic_data, fold=1)
    assert items == split_fold(isic_datalist(isic_data), fold=1, n_splits=3, seed=7)[1]
    assert "['fold_0'] were trained on other folds than fold 1" in caplog.text


def test_members_of_different_fold_assignments_are_refused_naming_the_file(isic_data):
    members = [member("a/fold_0/model.pt"), member("b/fold_0/model.pt", n_folds=5)]
    with pytest.raises(ValueError, match="b/fold_0/model.pt was trained with n_folds=5"):
        labelled_datalist("isic", members, isic_data)


def test_held_out_csv_is_scored_whole_and_misuse_says_what_fits(isic_data):
    members = [member("a/fold_0/model.pt", n_folds=5), member("b/fold_0/model.pt")]  # no fold split with csv
    assert labelled_datalist("isic", members, isic_data, csv="train-metadata.csv") == isic_datalist(isic_data)
    with pytest.raises(ValueError, match="eval_split val"):
        labelled_datalist("isic", members, isic_data, eval_split="test")
    with pytest.raises(ValueError, match="score a split folder with eval_split"):
        labelled_datalist("chest_xray", members, isic_data, csv="x.csv")


def test_unlabelled_items_are_the_task_bundles_test_set_and_image_files(isic_data, tmp_path):
    items = unlabelled_datalist("isic", isic_data)
    assert [item["image_id"] for item in items] == [item["image_id"] for item in isic_datalist(
        isic_data, csv="test-metadata.csv", images="test-image.hdf5", label_column=None)]
    with pytest.raises(ValueError, match="reads no \\['csv'\\]"):
        unlabelled_datalist("chest_xray", isic_data, csv="test.csv")
    for name in ("b.png", "a.jpg", "c.dcm"):
        (tmp_path / name).write_bytes(b"")
    assert [item["image_id"] for item in image_datalist("isic", image_dir=tmp_path)] == ["a", "b"]
    assert [item["image_id"] for item in image_datalist("rsna", images=str(tmp_path / "c.dcm"))] == ["c"]
    with pytest.raises(ValueError, match="either images"):
        image_datalist("isic")


def test_a_held_out_csv_is_labelled_in_the_members_stored_class_order(tmp_path):
    from medbundle.demo.classify import write_classify_demo

    write_classify_demo(tmp_path, n_patients=6, n_classes=3, n_test=3, size_range=(32, 40), seed=1)
    config = {"task": "classify", "num_classes": 3, "class_names": ["streaks", "nodule", "clear"]}
    items = labelled_datalist("classify", [Member("a", tmp_path / "a.pt", config, {})], tmp_path, csv="test.csv")
    rows = pd.read_csv(tmp_path / "test.csv")
    assert [item["label"] for item in items] == [config["class_names"].index(name) for name in rows["label"]]


def test_a_task_with_split_folders_scores_its_test_folder(tmp_path):
    """classify's evaluate.yaml reads a test class folder; the ensemble scores it as the bundle would."""
    from medbundle.demo.classify import write_classify_demo

    write_classify_demo(tmp_path, n_patients=30, n_classes=3, layout="split_folders", size_range=(32, 40), seed=1)
    classes = sorted(path.name for path in (tmp_path / "test").iterdir())
    config = {"task": "classify", "num_classes": 3, "class_names": classes, "image_size": [32, 32], "model": "resnet10t",
              "backbone": "resnet10t", "head": "mlp", "head_hidden": 16, "in_chans": 3, "color": False,
              "reduced_decode": True, "n_folds": 5, "seed": 42, "csv": "labels.csv", "layout": "auto"}
    items = labelled_datalist("classify", [Member("a", tmp_path / "a.pt", config, {})], tmp_path, eval_split="test")
    expected = sorted(str(path) for path in (tmp_path / "test").rglob("*") if path.is_file())
    assert sorted(item["image"] for item in items) == expected
    assert all(classes[item["label"]] == Path(item["image"]).parent.name for item in items)
