"""Tests for the synthetic chest X-ray demo data set."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pydicom
import pytest
from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged

from medbundle.data import CHEST_XRAY_CLASSES, chest_xray_datalist, chest_xray_split
from medbundle.demo import write_chest_xray_demo
from medbundle.io import GrayscaleReader, read_dicom

COUNTS = {"train": 4, "val": 2, "test": 1}  # 7 images per class: enough for all 5 formats
SIZE_RANGE = (96, 144)


def write(root: Path, seed: int = 0) -> dict:
    return write_chest_xray_demo(
        root, n_train=COUNTS["train"], n_val=COUNTS["val"], n_test=COUNTS["test"], seed=seed, size_range=SIZE_RANGE
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One small data set shared by the tests of this module."""
    return write(tmp_path_factory.mktemp("chest_xray"))


def files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix != ".csv")


def storage_format(path: Path) -> str:
    """Classify a written file as png8 / png16 / png12 / jpeg / dicom from its content."""
    if path.suffix == ".dcm":
        return "dicom"
    if path.suffix in (".jpg", ".jpeg"):
        return "jpeg"
    pixels = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels.dtype == np.uint8:
        return "png8"
    return "png12" if pixels.max() <= 4095 else "png16"


def test_layout_and_summary(demo: dict):
    root = demo["root"]
    assert sorted(p.name for p in root.iterdir()) == ["patients.csv", "test", "train", "val"]
    for split, n in COUNTS.items():
        assert demo[f"{split}_dir"] == root / split
        assert sorted(p.name for p in (root / split).iterdir()) == sorted(CHEST_XRAY_CLASSES)
        for class_name in CHEST_XRAY_CLASSES:
            assert len(list((root / split / class_name).iterdir())) == n
        assert demo[f"n_{split}"] == n * len(CHEST_XRAY_CLASSES)
    assert sum(demo["formats"].values()) == len(files(root))


def test_every_class_gets_every_format(demo: dict):
    for class_name in CHEST_XRAY_CLASSES:
        formats = Counter(storage_format(p) for split in COUNTS for p in (demo["root"] / split / class_name).iterdir())
        assert set(formats) == {"png8", "png16", "png12", "jpeg", "dicom"}, class_name
    written = Counter(storage_format(p) for p in files(demo["root"]))
    assert written == Counter(demo["formats"])


def test_datalists_read_through_the_reader(demo: dict):
    transform = Compose(
        [
            LoadImaged(keys="image", reader=GrayscaleReader, image_only=True),
            EnsureChannelFirstd(keys="image", channel_dim="no_channel"),
        ]
    )
    for split in COUNTS:
        datalist = chest_xray_datalist(demo["root"], split)
        assert len(datalist) == demo[f"n_{split}"]
        assert Counter(item["label"] for item in datalist) == {k: COUNTS[split] for k in range(5)}
        for item in datalist:
            image = transform(item)["image"]
            rows, cols = image.shape[1:]
            assert image.shape[0] == 1 and rows != cols
            assert all(SIZE_RANGE[0] <= side <= SIZE_RANGE[1] for side in (rows, cols))
            assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
            assert float(image.max()) > 0.8  # 12-bit files use their range too


def test_patients_csv_matches_files(demo: dict):
    patients = pd.read_csv(demo["patients_csv"], dtype=str)
    assert list(patients.columns) == ["image", "patient_id"]
    assert sorted(patients["image"]) == [p.relative_to(demo["root"]).as_posix() for p in files(demo["root"])]
    parts = patients["image"].str.split("/", expand=True)
    for _, group in patients.assign(split=parts[0], class_name=parts[1]).groupby("patient_id"):
        assert 1 <= len(group) <= 3
        assert group["split"].nunique() == 1 and group["class_name"].nunique() == 1
    assert demo["n_patients"] == patients["patient_id"].nunique()


def test_patients_csv_gives_grouped_folds(tmp_path):
    root = tmp_path / "demo"
    write_chest_xray_demo(root, n_train=12, n_val=4, n_test=0, size_range=SIZE_RANGE)
    train, val = chest_xray_split(root, fold=1, n_folds=2, patients_csv="patients.csv")
    assert not {item["patient_id"] for item in train} & {item["patient_id"] for item in val}
    assert len(train) + len(val) == 16 * len(CHEST_XRAY_CLASSES)


def test_dicoms_carry_no_identity(demo: dict):
    dicoms = [p for p in files(demo["root"]) if p.suffix == ".dcm"]
    patients = pd.read_csv(demo["patients_csv"], dtype=str).set_index("image")["patient_id"]
    for path in dicoms:
        ds = pydicom.dcmread(path)
        assert ds.PatientName == "ANON^DEMO" and "PatientBirthDate" not in ds
        assert ds.PatientID == patients[path.relative_to(demo["root"]).as_posix()]
        assert ds.PhotometricInterpretation == "MONOCHROME2" and not ds.file_meta.TransferSyntaxUID.is_compressed
        assert read_dicom(path)[0].max() > 0.8


def test_same_seed_writes_same_bytes(demo: dict, tmp_path):
    again = write(tmp_path / "again")
    other = write(tmp_path / "other", seed=1)
    relative = [p.relative_to(demo["root"]) for p in files(demo["root"])]
    assert relative == [p.relative_to(again["root"]) for p in files(again["root"])]
    for path in [*relative, Path("patients.csv")]:
        assert (demo["root"] / path).read_bytes() == (again["root"] / path).read_bytes(), path
    assert (other["root"] / "patients.csv").read_bytes() != (demo["root"] / "patients.csv").read_bytes()


def test_default_size_is_the_documented_demo(tmp_path):
    summary = write_chest_xray_demo(tmp_path)
    assert (summary["n_train"], summary["n_val"], summary["n_test"]) == (300, 75, 30)


def test_invalid_arguments_raise(tmp_path):
    with pytest.raises(ValueError, match="n_val"):
        write_chest_xray_demo(tmp_path, n_val=0)
    with pytest.raises(ValueError, match="size_range"):
        write_chest_xray_demo(tmp_path, size_range=(200, 100))
