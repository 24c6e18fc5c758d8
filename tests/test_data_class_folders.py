"""Tests for the class-folder datalists, patient-grouped splits and inference file lists."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest

from medbundle.data import (
    CHEST_XRAY_CLASSES,
    chest_xray_classes,
    chest_xray_datalist,
    chest_xray_split,
    class_folder_datalist,
    class_folder_split,
    image_files_datalist,
    normalise_class_name,
)

CLASSES = ("Viral Pneumonia", "Corona Virus Disease", "Normal")


def touch(root: Path, *names: str) -> None:
    """Create empty files (the datalists never decode them)."""
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def make_patients_dataset(root: Path, n_patients: int = 12) -> pd.DataFrame:
    """train/val class folders with 1-3 images per patient, one class per patient; return the patient table."""
    rows = []
    for index in range(n_patients * len(CLASSES)):
        class_name = CLASSES[index % len(CLASSES)]
        split = "val" if index % 4 == 0 else "train"
        for image in range(1 + index % 3):
            name = f"{split}/{class_name}/p{index:03d}_{image}.png"
            touch(root, name)
            rows.append({"image": name, "patient_id": f"{index:03d}"})
    return pd.DataFrame(rows)


def test_normalise_class_name():
    assert normalise_class_name("  Corona_Virus-Disease ") == "corona virus disease"
    assert normalise_class_name("VIRAL   PNEUMONIA") == "viral pneumonia"


def test_folder_names_match_case_spaces_underscores_and_aliases(tmp_path):
    for folder in ("VIRAL-PNEUMONIA", "bacterial_pneumonia", "COVID-19", "TB", "normal"):
        touch(tmp_path, f"train/{folder}/x.png")
    datalist = chest_xray_datalist(tmp_path)
    by_folder = {item["image_id"].split("/")[1]: item["label"] for item in datalist}
    assert by_folder == {
        "VIRAL-PNEUMONIA": CHEST_XRAY_CLASSES.index("Viral Pneumonia"),
        "bacterial_pneumonia": CHEST_XRAY_CLASSES.index("Bacterial Pneumonia"),
        "COVID-19": CHEST_XRAY_CLASSES.index("Corona Virus Disease"),
        "TB": CHEST_XRAY_CLASSES.index("Tuberculosis"),
        "normal": CHEST_XRAY_CLASSES.index("Normal"),
    }
    assert [item["label"] for item in datalist] == [0, 1, 2, 3, 4]


def test_ambiguous_names_are_not_aliased(tmp_path):
    touch(tmp_path, "train/Pneumonia/x.png")
    with pytest.raises(ValueError, match="Pneumonia"):
        chest_xray_datalist(tmp_path)


def test_items_schema_order_recursion_and_ignored_files(tmp_path, caplog):
    touch(
        tmp_path,
        "train/Normal/b.png",
        "train/Normal/A.PNG",
        "train/Normal/sub dir/c.jpeg",
        "train/Normal/notes.txt",
        "train/Normal/.DS_Store",
        "train/Normal/._b.png",
        "train/Normal/.hidden/d.png",
        "train/Viral Pneumonia/v.dcm",
        "train/Corona Virus Disease/z.jpg",
        "train/Corona Virus Disease/thumbs.db",
    )
    with caplog.at_level(logging.WARNING):
        datalist = class_folder_datalist(tmp_path, "train", CLASSES)
    assert datalist == [
        {"image": str(tmp_path / "train/Viral Pneumonia/v.dcm"), "label": 0, "image_id": "train/Viral Pneumonia/v"},
        {
            "image": str(tmp_path / "train/Corona Virus Disease/z.jpg"),
            "label": 1,
            "image_id": "train/Corona Virus Disease/z",
        },
        {"image": str(tmp_path / "train/Normal/A.PNG"), "label": 2, "image_id": "train/Normal/A"},
        {"image": str(tmp_path / "train/Normal/b.png"), "label": 2, "image_id": "train/Normal/b"},
        {"image": str(tmp_path / "train/Normal/sub dir/c.jpeg"), "label": 2, "image_id": "train/Normal/sub dir/c"},
    ]
    assert all(type(item["label"]) is int for item in datalist)
    ignored = [r.getMessage() for r in caplog.records if "suffix" in r.getMessage()]
    assert len(ignored) == 1 and "Ignored 2 file(s)" in ignored[0]
    assert not any("DS_Store" in r.getMessage() for r in caplog.records)


def test_unknown_folder_names_it_and_lists_expected_names(tmp_path):
    touch(tmp_path, "train/Normal/a.png", "train/Pneumonia/b.png")
    with pytest.raises(ValueError, match=r"Pneumonia matches no class; expected one of \['Viral Pneumonia'"):
        class_folder_datalist(tmp_path, "train", CLASSES)


def test_class_folder_without_image_raises(tmp_path):
    touch(tmp_path, "train/Normal/a.png", "train/Viral Pneumonia/.DS_Store", "train/Viral Pneumonia/readme.txt")
    with pytest.raises(ValueError, match=r"Viral Pneumonia holds no image"):
        class_folder_datalist(tmp_path, "train", CLASSES)


def test_missing_split_lists_what_the_folder_holds(tmp_path):
    touch(tmp_path, "training/Normal/a.png")
    with pytest.raises(FileNotFoundError, match=r"train not found.*holds \['training'\]"):
        class_folder_datalist(tmp_path, "train", CLASSES)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        class_folder_datalist(tmp_path / "nowhere", "train", CLASSES)


def test_two_folders_for_one_class_raise(tmp_path):
    touch(tmp_path, "train/COVID/a.png", "train/Corona Virus Disease/b.png")
    with pytest.raises(ValueError, match=r"COVID.*both match class 'Corona Virus Disease'"):
        class_folder_datalist(tmp_path, "train", CLASSES, aliases={"covid": "Corona Virus Disease"})


def test_absent_class_warns(tmp_path, caplog):
    touch(tmp_path, "test/Normal/a.png")
    with caplog.at_level(logging.WARNING):
        datalist = class_folder_datalist(tmp_path, "test", CLASSES)
    assert len(datalist) == 1
    assert "'Viral Pneumonia', 'Corona Virus Disease'" in caplog.text


def test_same_stem_in_one_folder_raises(tmp_path):
    touch(tmp_path, "train/Normal/a.png", "train/Normal/a.jpg")
    with pytest.raises(ValueError, match=r"image_id 'train/Normal/a'"):
        class_folder_datalist(tmp_path, "train", CLASSES)


def test_bad_aliases_raise(tmp_path):
    touch(tmp_path, "train/Normal/a.png")
    with pytest.raises(ValueError, match="not one of the classes"):
        class_folder_datalist(tmp_path, "train", CLASSES, aliases={"healthy": "Healthy"})
    with pytest.raises(ValueError, match="clashes"):
        class_folder_datalist(tmp_path, "train", CLASSES, aliases={"NORMAL": "Viral Pneumonia"})


def test_split_without_patients_returns_the_fixed_folders(tmp_path):
    make_patients_dataset(tmp_path)
    train, val = class_folder_split(tmp_path, CLASSES)
    assert {item["image_id"].split("/")[0] for item in train} == {"train"}
    assert {item["image_id"].split("/")[0] for item in val} == {"val"}
    assert "patient_id" not in train[0]
    with pytest.raises(ValueError, match="fold=1 needs patients_csv"):
        class_folder_split(tmp_path, CLASSES, fold=1)


def test_patient_grouped_folds_never_leak_and_are_reproducible(tmp_path):
    patients = make_patients_dataset(tmp_path)
    patients.to_csv(tmp_path / "patients.csv", index=False)
    n_images = len(patients)
    validated = []
    for fold in range(3):
        train, val = class_folder_split(tmp_path, CLASSES, fold=fold, n_folds=3, patients_csv="patients.csv")
        assert not {item["patient_id"] for item in train} & {item["patient_id"] for item in val}
        assert len(train) + len(val) == n_images
        assert {item["label"] for item in val} == {0, 1, 2}
        assert all(isinstance(item["patient_id"], str) for item in train)
        validated.extend(item["image_id"] for item in val)
    assert len(set(validated)) == n_images  # every image validated exactly once
    assert "000" in {item["patient_id"] for item in train + val}  # ids kept as written
    again = class_folder_split(tmp_path, CLASSES, fold=2, n_folds=3, patients_csv=tmp_path / "patients.csv")
    assert again == (train, val)
    other_seed = class_folder_split(tmp_path, CLASSES, fold=2, n_folds=3, seed=7, patients_csv="patients.csv")
    assert other_seed != (train, val)


def test_images_missing_from_patients_csv_raise(tmp_path):
    patients = make_patients_dataset(tmp_path)
    patients.iloc[3:].to_csv(tmp_path / "patients.csv", index=False)
    with pytest.raises(ValueError, match=r"3 of \d+ images .* have no row in .*patients\.csv, e\.g\. \['train/"):
        class_folder_split(tmp_path, CLASSES, n_folds=3, patients_csv="patients.csv")


def test_patients_csv_rows_outside_train_val_are_ignored(tmp_path, caplog):
    patients = make_patients_dataset(tmp_path)
    touch(tmp_path, "test/Normal/t.png")
    extra = pd.DataFrame(
        {"image": ["test/Normal/t.png", "./train/Normal/deleted.png", "train/Normal/gone.png"], "patient_id": "x"}
    )
    pd.concat([patients, extra]).to_csv(tmp_path / "patients.csv", index=False)
    with caplog.at_level(logging.WARNING):
        train, val = class_folder_split(tmp_path, CLASSES, n_folds=3, patients_csv="patients.csv")
    assert len(train) + len(val) == len(patients)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "Ignored 2 row(s)" in warnings[0] and "do not exist" in warnings[0]


def test_patients_csv_with_conflicting_rows_raises(tmp_path):
    patients = make_patients_dataset(tmp_path)
    conflict = pd.DataFrame({"image": [patients["image"][0]], "patient_id": ["other"]})
    pd.concat([patients, conflict]).to_csv(tmp_path / "patients.csv", index=False)
    with pytest.raises(ValueError, match="keep one row per image"):
        class_folder_split(tmp_path, CLASSES, n_folds=3, patients_csv="patients.csv")


def test_chest_xray_split_binds_classes(tmp_path):
    for folder in ("Viral Pneumonia", "Bacterial Pneumonia", "covid", "TB", "Normal"):
        touch(tmp_path, f"train/{folder}/a.png", f"val/{folder}/b.jpg")
    train, val = chest_xray_split(tmp_path)
    assert [item["label"] for item in train] == [0, 1, 2, 3, 4] == [item["label"] for item in val]


def test_a_set_without_some_classes_gets_the_classes_it_has(tmp_path):
    """No tuberculosis folder (as in ../shared/data/real_cxr): four classes, labelled 0..3 in the fixed order."""
    for folder in ("Normal", "covid", "Bacterial Pneumonia", "Viral Pneumonia"):
        touch(tmp_path, f"train/{folder}/a.png")
    touch(tmp_path, "val/Normal/b.png", "val/covid/c.png")
    classes = chest_xray_classes(tmp_path)
    assert classes == ["Viral Pneumonia", "Bacterial Pneumonia", "Corona Virus Disease", "Normal"]
    train, val = chest_xray_split(tmp_path, class_names=classes)
    assert [item["label"] for item in train] == [0, 1, 2, 3] and [item["label"] for item in val] == [2, 3]
    assert chest_xray_datalist(tmp_path, "val", classes)[0]["label"] == 2
    touch(tmp_path, "train/TB/d.png")
    with pytest.raises(ValueError, match="TB matches no class"):
        chest_xray_datalist(tmp_path, "train", classes)
    (tmp_path / "empty" / "train").mkdir(parents=True)
    with pytest.raises(ValueError, match="has no class folder"):
        chest_xray_classes(tmp_path / "empty")
    assert chest_xray_classes(tmp_path / "nothing") == list(CHEST_XRAY_CLASSES)  # nothing to read: every class


def test_image_files_from_a_folder(tmp_path):
    touch(tmp_path, "in/b.png", "in/ward 3/a.dcm", "in/notes.txt", "in/.DS_Store", "in/A.JPG")
    datalist = image_files_datalist(tmp_path / "in")
    assert datalist == [
        {"image": str(tmp_path / "in/A.JPG"), "image_id": "A"},
        {"image": str(tmp_path / "in/b.png"), "image_id": "b"},
        {"image": str(tmp_path / "in/ward 3/a.dcm"), "image_id": "ward 3/a"},
    ]
    touch(tmp_path, "empty/notes.txt")
    with pytest.raises(FileNotFoundError, match="no image .* found under .*empty"):
        image_files_datalist(tmp_path / "empty")


def test_image_files_from_a_file_or_a_list(tmp_path):
    touch(tmp_path, "a.png", "sub/b.jpeg")
    assert image_files_datalist(tmp_path / "a.png") == [{"image": str(tmp_path / "a.png"), "image_id": "a"}]
    listed = image_files_datalist([tmp_path / "sub/b.jpeg", str(tmp_path / "a.png")])
    assert [item["image_id"] for item in listed] == ["b", "a"]
    with pytest.raises(FileNotFoundError, match=r"nope\.png \(item 1 of the given list\)"):
        image_files_datalist([tmp_path / "a.png", tmp_path / "nope.png"])
    touch(tmp_path, "notes.bmp")
    with pytest.raises(ValueError, match=r"notes\.bmp .* is not an image"):
        image_files_datalist([tmp_path / "notes.bmp"])
    with pytest.raises(FileNotFoundError, match="missing_dir does not exist"):
        image_files_datalist(tmp_path / "missing_dir")


def test_image_files_from_txt_and_csv_lists(tmp_path):
    touch(tmp_path, "a.png", "sub/b.jpeg")
    (tmp_path / "list.txt").write_text("sub/b.jpeg\n\n  a.png  \n")
    assert [item["image"] for item in image_files_datalist(tmp_path / "list.txt")] == [
        str(tmp_path / "sub/b.jpeg"),
        str(tmp_path / "a.png"),
    ]
    pd.DataFrame({"image": ["a.png", str(tmp_path / "sub/b.jpeg")], "other": [1, 2]}).to_csv(
        tmp_path / "list.csv", index=False
    )
    assert [item["image_id"] for item in image_files_datalist(tmp_path / "list.csv")] == ["a", "b"]
    (tmp_path / "bad.txt").write_text("a.png\nmissing.png\n")
    with pytest.raises(FileNotFoundError, match=r"missing\.png \(line 2 of .*bad\.txt\)"):
        image_files_datalist(tmp_path / "bad.txt")
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(ValueError, match=r"no image listed in .*empty\.txt"):
        image_files_datalist(tmp_path / "empty.txt")
