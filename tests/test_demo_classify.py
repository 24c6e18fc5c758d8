"""Tests for medbundle.demo.classify (the synthetic sets in each layout), its demo_data and validate commands."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from medbundle import cli
from medbundle.data import (
    classify_classes,
    classify_csv_datalist,
    classify_split,
    detect_color,
)
from medbundle.datacheck import check_dataset
from medbundle.demo import write_classify_demo
from medbundle.demo.classify import GREY_FORMATS
from medbundle.io import read_grayscale

SMALL = {"size_range": (32, 48)}


def digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


def test_the_same_seed_writes_the_same_bytes_and_another_seed_other_ones(tmp_path):
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        write_classify_demo(tmp_path / name, n_patients=8, n_test=2, seed=seed, **SMALL)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a") != digest(tmp_path / "c")


def test_csv_layout_has_relative_paths_patients_of_one_class_and_a_disjoint_held_out_csv(tmp_path):
    summary = write_classify_demo(tmp_path, n_patients=20, n_classes=2, n_test=4, seed=0, **SMALL)
    labels = pd.read_csv(summary["labels_csv"], dtype=str)
    test = pd.read_csv(summary["test_csv"], dtype=str)
    assert list(labels.columns) == ["image", "label", "patient_id"] and summary["class_names"] == ["benign", "malignant"]
    assert all((tmp_path / image).is_file() for image in [*labels["image"], *test["image"]])
    assert labels.groupby("patient_id")["label"].nunique().max() == 1
    assert labels["patient_id"].nunique() == 20 and test["patient_id"].nunique() == 4
    assert not set(labels["patient_id"]) & set(test["patient_id"])
    assert set(summary["formats"]) == set(GREY_FORMATS) and summary["n_images"] == len(labels) + len(test)
    for image in labels["image"]:  # every format reads as one grey image in [0, 1]
        pixels, _ = read_grayscale(tmp_path / image)
        assert pixels.ndim == 2 and 0.0 <= pixels.min() and pixels.max() <= 1.0 and pixels.max() > 0.2, image


def test_split_folders_give_every_class_train_and_val_and_keep_patients_in_one_split(tmp_path):
    summary = write_classify_demo(tmp_path, n_patients=30, n_classes=5, layout="split_folders", seed=0, **SMALL)
    names = classify_classes(tmp_path)
    assert names == summary["class_names"] == ["clear", "dots", "nodule", "ring", "streaks"]
    train, val = classify_split(tmp_path, names)
    assert {item["label"] for item in train} == {item["label"] for item in val} == set(range(5))
    assert (tmp_path / "test").is_dir() and "labels_csv" not in summary


def test_plain_folders_in_colour_and_arguments_that_cannot_work(tmp_path):
    summary = write_classify_demo(tmp_path, n_patients=9, n_classes=3, layout="folders", color=True, seed=0, **SMALL)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clear", "nodule", "streaks"]
    assert set(summary["formats"]) == {"png8", "jpeg", "tiff"}
    items = [{"image": str(p)} for p in sorted(tmp_path.rglob("*.*"))]
    assert detect_color(items)
    for options, message in (({"n_classes": 7}, "n_classes must be in"), ({"layout": "kaggle"}, "layout must be one of"),
                             ({"n_patients": 3}, "n_patients must be >= 2 per class")):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            write_classify_demo(tmp_path / "bad", **options)


def test_demo_data_and_validate_commands_find_the_classify_task(tmp_path):
    data = tmp_path / "data"
    written = cli.demo_data(task="classify", out=str(data), n_patients=12, n_test=0, size_range=(32, 40))
    assert written["labels_csv"] == str(data / "labels.csv")
    report = check_dataset("classify", data, n_folds=3, num_workers=0, progress=False)
    assert report["ok"] and report["n_images"] == len(classify_csv_datalist(data))
    assert report["n_patients"] == 12 and set(report["classes"]["by_split"]["train"]) >= {"benign", "malignant"}
    assert (data / "data_check" / "data_check.md").is_file()
    missing = pd.read_csv(data / "labels.csv")
    (data / missing["image"][0]).unlink()
    broken = check_dataset("classify", data, n_folds=3, num_workers=0, progress=False)
    assert broken["n_images"] == report["n_images"] and broken["n_readable"] == report["n_readable"] - 1
