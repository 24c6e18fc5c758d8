"""Tests of the RSNA datalist and the checked CSV reader."""

from __future__ import annotations

import logging

import pytest

from medbundle.data import read_csv_checked, rsna_datalist

ROWS = [
    # site_id, patient_id, image_id, laterality, view, cancer
    ("2", "10006", "462822612", "L", "CC", 0),
    ("2", "10006", "1459541791", "L", "MLO", 0),
    ("2", "10011", "220375232", "R", "CC", 1),
]


def make_dataset(root, rows=ROWS, header="site_id,patient_id,image_id,laterality,view,cancer", csv="train.csv"):
    """Write a tiny Kaggle-style CSV and empty placeholder images under ``root``."""
    lines = [header] + [",".join(map(str, row)) for row in rows]
    (root / csv).write_text("\n".join(lines) + "\n")
    for row in rows:
        folder = root / "train_images" / row[1]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{row[2]}.dcm").touch()
    return root


def test_datalist_items(tmp_path):
    datalist = rsna_datalist(make_dataset(tmp_path))
    assert len(datalist) == 3
    assert datalist[2] == {
        "image": str(tmp_path / "train_images" / "10011" / "220375232.dcm"),
        "label": [1.0],
        "patient_id": "10011",
        "laterality": "R",
        "image_id": "220375232",
        "breast_id": "10011_R",
    }
    assert [item["label"] for item in datalist] == [[0.0], [0.0], [1.0]]


def test_unlabelled_set_has_no_label(tmp_path):
    rows = [row[:5] for row in ROWS]
    make_dataset(tmp_path, rows, header="site_id,patient_id,image_id,laterality,view", csv="test.csv")
    datalist = rsna_datalist(tmp_path, csv="test.csv", label_column=None)
    assert len(datalist) == 3
    assert all("label" not in item for item in datalist)


def test_missing_column_names_column_and_file(tmp_path):
    rows = [(row[0], row[1], row[2], row[4], row[5]) for row in ROWS]
    make_dataset(tmp_path, rows, header="site_id,patient_id,image_id,view,cancer")
    with pytest.raises(ValueError, match=r"train\.csv lacks required column\(s\) \['laterality'\]"):
        rsna_datalist(tmp_path)


def test_read_csv_checked_lists_available_columns(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"\['c'\]; it has \['a', 'b'\]"):
        read_csv_checked(path, ["a", "c"])
    with pytest.raises(FileNotFoundError, match="nothere.csv"):
        read_csv_checked(tmp_path / "nothere.csv", ["a"])
    assert list(read_csv_checked(path, ["a"]).columns) == ["a", "b"]


def test_missing_image_raises_with_path(tmp_path):
    make_dataset(tmp_path)
    missing = tmp_path / "train_images" / "10006" / "1459541791.dcm"
    missing.unlink()
    with pytest.raises(FileNotFoundError, match="line 3") as error:
        rsna_datalist(tmp_path)
    assert str(missing) in str(error.value)


def test_missing_image_skipped_and_logged(tmp_path, caplog):
    make_dataset(tmp_path)
    (tmp_path / "train_images" / "10006" / "1459541791.dcm").unlink()
    with caplog.at_level(logging.WARNING, logger="medbundle.data.rsna"):
        datalist = rsna_datalist(tmp_path, missing="skip")
    assert [item["image_id"] for item in datalist] == ["462822612", "220375232"]
    assert "Skipped 1 of 3" in caplog.text and "line(s) [3]" in caplog.text


def test_no_image_at_all_raises_even_when_skipping(tmp_path):
    make_dataset(tmp_path)
    for path in (tmp_path / "train_images").rglob("*.dcm"):
        path.unlink()
    with pytest.raises(FileNotFoundError, match=r"none of the 3 image files listed in .*train\.csv exists.*suffix"):
        rsna_datalist(tmp_path, missing="skip")


def test_missing_dataset_dir_is_not_reported_as_a_missing_csv(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"dataset_dir .*nowhere does not exist; set dataset_dir to the folder"):
        rsna_datalist(tmp_path / "nowhere")
    (tmp_path / "a_file").touch()
    with pytest.raises(FileNotFoundError, match=r"a_file is not a directory"):
        rsna_datalist(tmp_path / "a_file")
    with pytest.raises(FileNotFoundError, match=r"CSV file not found: .*train\.csv"):
        rsna_datalist(tmp_path)


def test_missing_image_directory_names_image_dir(tmp_path):
    make_dataset(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"image directory .*test_images .*does not exist; check image_dir"):
        rsna_datalist(tmp_path, image_dir="test_images")


def test_csv_without_rows_raises(tmp_path):
    make_dataset(tmp_path, rows=[])
    with pytest.raises(ValueError, match=r"train\.csv has a header but no rows"):
        rsna_datalist(tmp_path)


def test_duplicated_image_id_names_the_lines(tmp_path):
    make_dataset(tmp_path, [*ROWS, ROWS[1]])
    with pytest.raises(ValueError, match=r"train\.csv lists 1 image_id\(s\) on more than one row: "
                       r"image_id 1459541791 on lines \[3, 5\]\. Drop the duplicate rows"):
        rsna_datalist(tmp_path)


def test_image_listed_for_two_patients_names_both(tmp_path):
    make_dataset(tmp_path, [*ROWS, ("2", "10011", "462822612", "R", "MLO", 1)])
    with pytest.raises(ValueError, match=r"train\.csv lists 1 image\(s\) for more than one patient: image_id 462822612 "
                       r"on lines \[2, 5\] with patient_id 10006, 10011\. .*fix its patient_id"):
        rsna_datalist(tmp_path)


def test_invalid_label_and_empty_cell_name_the_line(tmp_path):
    make_dataset(tmp_path, [*ROWS[:2], ("2", "10011", "220375232", "R", "CC", 3)])
    with pytest.raises(ValueError, match=r"'cancer' must be 0 or 1; line\(s\) \[4\]"):
        rsna_datalist(tmp_path)
    make_dataset(tmp_path, [*ROWS[:2], ("2", "10011", "220375232", "", "CC", 1)])
    with pytest.raises(ValueError, match=r"empty cells .* line\(s\) \[4\]"):
        rsna_datalist(tmp_path)
    make_dataset(tmp_path, [ROWS[0], ("2", "10006", "1459541791", "L", "MLO", ""), ROWS[2]])  # NaN label
    with pytest.raises(ValueError, match=r"empty cells in columns .*'cancer'.* line\(s\) \[3\]"):
        rsna_datalist(tmp_path)
