"""Tests for medbundle.data.classify: layouts found from the folder alone, class order, folds and bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from medbundle.data import (
    check_no_leakage,
    classify_classes,
    classify_csv_datalist,
    classify_folder_datalist,
    classify_held_out,
    classify_layout,
    classify_split,
    detect_color,
    resolve_color,
)
from medbundle.demo import write_classify_demo

REAL_CXR = Path(__file__).resolve().parents[2] / "shared" / "data" / "real_cxr"
SMALL = {"size_range": (32, 40), "seed": 3}


@pytest.fixture(scope="module")
def demos(tmp_path_factory) -> dict[str, Path]:
    """One small demo set per layout: binary CSV with patients, 4-class split folders, 3-class plain folders."""
    root = tmp_path_factory.mktemp("classify")
    write_classify_demo(root / "csv", n_patients=30, n_classes=2, layout="csv", n_test=4, **SMALL)
    write_classify_demo(root / "split", n_patients=40, n_classes=4, layout="split_folders", **SMALL)
    write_classify_demo(root / "folders", n_patients=24, n_classes=3, layout="folders", color=True, **SMALL)
    return {name: root / name for name in ("csv", "split", "folders")}


def write_png(path: Path, value: int = 100) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((8, 8), value, np.uint8))
    return path.name


def csv_set(root: Path, labels: list, patients: list | None = None) -> Path:
    """A label CSV over one tiny PNG per row, in images/ below `root`."""
    rows = {"image": [f"images/{i}.png" for i in range(len(labels))], "label": labels}
    for name in rows["image"]:
        write_png(root / name)
    if patients is not None:
        rows["patient_id"] = patients
    pd.DataFrame(rows).to_csv(root / "labels.csv", index=False)
    return root


def label_index(item: dict) -> int:
    return int(item["label"][0] if isinstance(item["label"], list) else item["label"])


def test_each_layout_is_found_from_the_folder_alone(demos, tmp_path):
    assert classify_layout(demos["csv"]) == "csv"
    assert classify_layout(demos["split"]) == "split_folders"
    assert classify_layout(demos["folders"]) == "class_folders"
    assert classify_layout(demos["csv"], csv="other.csv") == "class_folders"  # no such CSV: its images/ folder
    assert classify_layout(demos["csv"], layout="folders") == "class_folders"
    with pytest.raises(ValueError, match="layout must be one of"):
        classify_layout(demos["csv"], layout="kfold")
    with pytest.raises(FileNotFoundError, match=f"dataset_dir {tmp_path / 'none'} does not exist"):
        classify_layout(tmp_path / "none")


def test_classes_sort_numbers_numerically_names_alphabetically_and_class_names_set_the_order(tmp_path):
    assert classify_classes(csv_set(tmp_path / "n", [10, 2, 2, "10", 1.0])) == ["1", "2", "10"]
    assert classify_classes(csv_set(tmp_path / "s", ["b", "B2", "a", "C"])) == ["a", "b", "B2", "C"]
    assert classify_classes(tmp_path / "n", class_names=[10, 1, 2]) == ["10", "1", "2"]
    with pytest.raises(ValueError, match=r"lacks \['2'\].*names classes without images \['3'\]"):
        classify_classes(tmp_path / "n", class_names=["10", "1", "3"])
    with pytest.raises(ValueError, match="at least two"):
        classify_classes(csv_set(tmp_path / "one", ["x", "x"]))
    # a network-only parse (no data set) keeps the given classes
    assert classify_classes(tmp_path / "absent", class_names=["neg", "pos"]) == ["neg", "pos"]


def test_csv_items_are_relative_to_the_csv_with_binary_or_index_labels(demos):
    rows = pd.read_csv(demos["csv"] / "labels.csv", dtype=str)
    names = classify_classes(demos["csv"])
    items = classify_csv_datalist(demos["csv"], class_names=names)
    assert names == ["benign", "malignant"] and len(items) == len(rows)
    first = items[0]
    assert first["image"] == str(demos["csv"] / rows["image"][0]) and Path(first["image"]).is_file()
    assert first["image_id"] == rows["image"][0].rsplit(".", 1)[0] and first["patient_id"] == rows["patient_id"][0]
    assert [item["label"] for item in items] == [[float(label == "malignant")] for label in rows["label"]]
    multi = classify_csv_datalist(demos["csv"], class_names=["malignant", "benign", "other"])
    assert [item["label"] for item in multi] == [int(label == "benign") for label in rows["label"]]


def test_patient_grouped_folds_never_leak_a_patient_and_validate_every_class(demos):
    names = classify_classes(demos["csv"])
    seen = []
    for fold in range(3):
        train, val = classify_split(demos["csv"], names, fold=fold, n_folds=3, seed=7)
        check_no_leakage(train, val)
        assert {label_index(item) for item in val} == {0, 1}
        patients = {item["patient_id"] for item in val}
        assert not patients & {item["patient_id"] for item in train}
        seen.extend(item["image_id"] for item in val)
    assert sorted(seen) == sorted(item["image_id"] for item in classify_csv_datalist(demos["csv"]))
    assert classify_split(demos["csv"], names, fold=1, n_folds=3, seed=7) == classify_split(
        demos["csv"], names, fold=1, n_folds=3, seed=7)


def test_without_patient_ids_folds_split_images_stratified(demos):
    names = classify_classes(demos["folders"])
    train, val = classify_split(demos["folders"], names, fold=0, n_folds=4)
    assert "patient_id" not in train[0] and not {i["image_id"] for i in train} & {i["image_id"] for i in val}
    counts = np.bincount([label_index(item) for item in val], minlength=3)
    totals = np.bincount([label_index(item) for item in train + val], minlength=3)
    assert (np.abs(counts - totals / 4) <= 1).all()  # stratified: a quarter of each class, give or take one


def test_fixed_split_folders_give_fold_zero_and_a_held_out_test(demos):
    names = classify_classes(demos["split"])
    assert names == ["clear", "nodule", "ring", "streaks"]
    train, val = classify_split(demos["split"], names)
    assert all(item["image_id"].startswith("train/") for item in train)
    assert all(item["image_id"].startswith("val/") for item in val) and isinstance(val[0]["label"], int)
    test = classify_held_out(demos["split"], names, "test")
    assert test and all(item["image_id"].startswith("test/") for item in test)
    with pytest.raises(ValueError, match="fixed train/ and val/ folders, so fold 0 is its only split, not fold 1"):
        classify_split(demos["split"], names, fold=1)


def test_train_folder_without_val_is_folded(demos, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(demos["split"] / "train", data / "train")
    names = classify_classes(data)
    train, val = classify_split(data, names, fold=1, n_folds=2)
    assert len(train) + len(val) == len(classify_folder_datalist(data, names, "train"))


def test_plain_class_folders_skip_folders_without_images(demos, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(demos["folders"], data)
    (data / "data_check").mkdir()
    (data / "data_check" / "data_check.md").write_text("a report, not a class")
    names = classify_classes(data)
    assert names == ["clear", "nodule", "streaks"]
    items = classify_folder_datalist(data, names)
    assert items[0]["image_id"].startswith("clear/") and {label_index(item) for item in items} == {0, 1, 2}
    with pytest.raises(ValueError, match="class folder .*streaks is not one of the model's classes"):
        classify_folder_datalist(data, ["clear", "nodule"])


def test_colour_is_detected_and_grey_saved_as_rgb_is_not(demos, tmp_path):
    assert detect_color(classify_folder_datalist(demos["folders"], classify_classes(demos["folders"])))
    grey = np.random.default_rng(0).integers(0, 256, (32, 32), dtype=np.uint8)
    path = tmp_path / "grey_rgb.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR))
    assert not detect_color([{"image": str(path)}])
    assert not resolve_color("auto", classify_csv_datalist(demos["csv"]))  # grey, and has DICOMs
    assert resolve_color(True, []) is True
    with pytest.raises(ValueError, match="color must be auto, True or False"):
        resolve_color("yes", [])


# ---- bad input: the message names the file, column or class and says what to do -----------------------------


def test_a_csv_without_label_column_names_the_file_and_column(tmp_path):
    write_png(tmp_path / "a.png")
    pd.DataFrame({"image": ["a.png"], "class": ["x"]}).to_csv(tmp_path / "labels.csv", index=False)
    with pytest.raises(ValueError, match=r"labels.csv lacks required column\(s\) \['label'\]; it has \['image', "
                                         r"'class'\]. Point to the right CSV or rename its columns"):  # fmt: skip
        classify_classes(tmp_path)


def test_a_csv_with_other_columns_beside_class_folders_says_to_use_the_folders(tmp_path):
    write_png(tmp_path / "train" / "a" / "1.png")
    pd.DataFrame({"file": ["train/a/1.png"], "class": ["a"]}).to_csv(tmp_path / "labels.csv", index=False)
    with pytest.raises(ValueError, match="also has class folders: pass --layout folders"):
        classify_classes(tmp_path)


def test_an_image_that_does_not_exist_is_named_with_its_line(tmp_path):
    csv_set(tmp_path, ["a", "b", "a"])
    (tmp_path / "images" / "1.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"labels.csv line 3 names image images/1.png, but .* does not exist; "
                                                r"image paths are relative to the CSV's folder"):  # fmt: skip
        classify_csv_datalist(tmp_path)
    assert [item["image_id"] for item in classify_csv_datalist(tmp_path, missing="skip")] == ["images/0", "images/2"]


def test_a_class_with_one_image_says_how_many_folds_need(tmp_path):
    csv_set(tmp_path, ["a"] * 6 + ["b"] * 5 + ["rare"])
    names = classify_classes(tmp_path)
    with pytest.raises(ValueError, match=r"labels.csv: class\(es\) with fewer images than n_folds=5 \('rare': 1\); "
                                         r"every fold must validate on every class. Add images of those classes, "
                                         r"remove them from the data set, or lower n_folds"):  # fmt: skip
        classify_split(tmp_path, names, n_folds=5)


def test_a_class_with_one_patient_counts_patients(tmp_path):
    csv_set(tmp_path, ["a"] * 4 + ["b"] * 4, patients=["p1", "p2", "p3", "p4", "q1", "q1", "q2", "q2"])
    with pytest.raises(ValueError, match=r"fewer patients than n_folds=3 \('b': 2\)"):
        classify_split(tmp_path, ["a", "b"], n_folds=3)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ({"image": ["images/0.png", "images/0.png"], "label": ["a", "b"]}, r"same image on more than one row \(lines \[2, 3\]\)"),
        ({"image": ["images/0.png", None], "label": ["a", "b"]}, r"empty cells in columns \['image', 'label'\] on line\(s\) \[3\]"),
        ({"image": ["images/0.png", "notes.txt"], "label": ["a", "b"]}, "line 3 names notes.txt, which is not an image file"),
        ({"image": [], "label": []}, "has a header but no rows"),
    ],
)
def test_malformed_csv_rows_are_named(tmp_path, rows, message):
    write_png(tmp_path / "images" / "0.png")
    (tmp_path / "notes.txt").write_text("not an image")
    pd.DataFrame(rows).to_csv(tmp_path / "labels.csv", index=False)
    with pytest.raises(ValueError, match=message):
        classify_csv_datalist(tmp_path)


def test_a_label_outside_the_models_classes_is_named(demos):
    with pytest.raises(ValueError, match=r"column 'label' holds \['malignant'\] .* not among the model's classes"):
        classify_csv_datalist(demos["csv"], "test.csv", ["benign", "other"])


def test_a_class_only_in_val_has_no_training_image(demos, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(demos["split"], data)
    shutil.rmtree(data / "train" / "ring")
    with pytest.raises(ValueError, match=r"class\(es\) \['ring'\] have no image in .*train; add training images"):
        classify_split(data, classify_classes(data))


@pytest.mark.skipif(not REAL_CXR.is_dir(), reason=f"{REAL_CXR} not present")
def test_real_chest_xrays_in_class_folders_beside_a_csv_of_other_columns():
    with pytest.raises(ValueError, match="pass --layout folders"):
        classify_classes(REAL_CXR)
    names = classify_classes(REAL_CXR, layout="folders")
    assert names == ["Bacterial Pneumonia", "Corona Virus Disease", "Normal", "Viral Pneumonia"]
    train, val = classify_split(REAL_CXR, names, layout="folders")
    assert (len(train), len(val)) == (240, 80)
