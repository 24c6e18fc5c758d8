"""Tests for medbundle.datacheck: hashes, the task adapters and check_dataset on small demo data."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import cv2
import h5py
import numpy as np
import pandas as pd
import pydicom
import pytest
from conftest import blank_dicom

from medbundle.data import (
    CHEST_XRAY_CLASSES,
    chest_xray_datalist,
    isic_datalist,
    rsna_datalist,
    split_fold,
)
from medbundle.datacheck import (
    NEAR_DUPLICATE_DISTANCE,
    check_dataset,
    hamming_distance,
    near_duplicate_pairs,
    perceptual_hash,
    pixel_digest,
)
from medbundle.demo import write_chest_xray_demo, write_isic_demo, write_rsna_demo
from medbundle.io import GrayscaleReader, read_hdf5_bytes
from medbundle.tasks import task_names

N_FOLDS = 2  # 6 demo patients, 2 of them with cancer: every fold gets one
ISIC_COLUMNS = ("anatom_site_general", "sex", "tbp_tile_type")


@pytest.fixture(scope="module")
def rsna_demo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rsna")
    write_rsna_demo(root, n_patients=6, image_shape=(128, 104), n_test_patients=0)
    return root


@pytest.fixture(scope="module")
def chest_demo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("chest")
    write_chest_xray_demo(root, n_train=3, n_val=2, n_test=1, size_range=(64, 96))
    return root


@pytest.fixture(scope="module")
def isic_demo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("isic")
    write_isic_demo(root, n_patients=6, positive_rate=0.2, n_test=0, size_range=(40, 60))
    return root


@pytest.fixture
def rsna_copy(rsna_demo, tmp_path) -> Path:
    return Path(shutil.copytree(rsna_demo, tmp_path / "rsna"))


@pytest.fixture
def chest_copy(chest_demo, tmp_path) -> Path:
    return Path(shutil.copytree(chest_demo, tmp_path / "chest"))


@pytest.fixture
def isic_copy(isic_demo, tmp_path) -> Path:
    return Path(shutil.copytree(isic_demo, tmp_path / "isic"))


def _smooth_image(seed: int, shape: tuple[int, int] = (240, 200)) -> np.ndarray:
    """A smooth random grey image in [0, 1], like a radiograph at low resolution."""
    coarse = np.random.default_rng(seed).random((12, 10), dtype=np.float32)
    return cv2.resize(coarse, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC).clip(0, 1)


def _validate(task: str, root: Path, **options) -> dict:
    options = {"n_folds": N_FOLDS, "num_workers": 0, "progress": False, **options}
    return check_dataset(task, root, **options)


# --------------------------------------------------------------------------- hashes


def test_perceptual_hash_is_robust_to_small_changes():
    image = _smooth_image(0)
    rng = np.random.default_rng(1)
    changed = {
        "noise": np.clip(image + rng.normal(0, 0.02, image.shape).astype(np.float32), 0, 1),
        "brightness": image * 0.9 + 0.05,
        "resize": cv2.resize(image, (150, 180), interpolation=cv2.INTER_AREA),
        "8-bit": np.rint(image * 255).astype(np.uint8),
    }
    reference = perceptual_hash(image)
    assert len(reference) == 32
    for name, copy in changed.items():
        assert hamming_distance(reference, perceptual_hash(copy)) <= NEAR_DUPLICATE_DISTANCE // 2, name


def test_perceptual_hash_distinguishes_images():
    hashes = [perceptual_hash(_smooth_image(seed)) for seed in range(20)]
    distances = [hamming_distance(a, b) for a, b in itertools.combinations(hashes, 2)]
    assert min(distances) > 4 * NEAR_DUPLICATE_DISTANCE


def test_perceptual_hash_separates_similar_mammograms(rsna_demo):
    reader = GrayscaleReader()
    hashes = [perceptual_hash(reader.decode(item["image"])[0]) for item in rsna_datalist(rsna_demo)]
    assert min(hamming_distance(a, b) for a, b in itertools.combinations(hashes, 2)) > 2 * NEAR_DUPLICATE_DISTANCE


def test_perceptual_hash_of_rgb_is_the_hash_of_its_luma():
    grey = _smooth_image(0)
    rgb = np.stack([grey, grey * 0.9, grey * 0.8], axis=-1)
    assert perceptual_hash(rgb) == perceptual_hash(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    assert hamming_distance(perceptual_hash(rgb), perceptual_hash(grey)) <= NEAR_DUPLICATE_DISTANCE // 2
    assert pixel_digest(rgb) != pixel_digest(rgb[..., ::-1])


def test_perceptual_hash_rejects_bad_input():
    with pytest.raises(ValueError, match="2D grayscale or an"):
        perceptual_hash(np.zeros((8, 8, 4)))
    with pytest.raises(ValueError, match="multiple of 8"):
        perceptual_hash(np.zeros((8, 8)), hash_size=3)
    with pytest.raises(ValueError, match="lengths"):
        hamming_distance(b"\x00", b"\x00\x00")


def test_pixel_digest_depends_on_values_and_shape():
    image = _smooth_image(0)
    assert pixel_digest(image) == pixel_digest(image.copy())
    assert pixel_digest(image) != pixel_digest(image.reshape(200, 240))
    changed = image.copy()
    changed[0, 0] += 1e-3
    assert pixel_digest(image) != pixel_digest(changed)


def test_near_duplicate_pairs_match_brute_force():
    rng = np.random.default_rng(0)
    hashes = [rng.bytes(2) for _ in range(300)]  # 16 bits: many close pairs, and a length that needs padding
    expected = [
        (i, j, hamming_distance(hashes[i], hashes[j]))
        for i, j in itertools.combinations(range(len(hashes)), 2)
        if hamming_distance(hashes[i], hashes[j]) <= 3
    ]
    assert near_duplicate_pairs(hashes, max_distance=3) == expected
    assert near_duplicate_pairs([]) == []


# --------------------------------------------------------------------------- rsna


def test_rsna_clean_demo_is_ok_with_the_right_counts(rsna_demo, tmp_path):
    out = tmp_path / "report"
    report = _validate("rsna", rsna_demo, out=out, num_workers=2)
    frame = pd.read_csv(rsna_demo / "train.csv", dtype=str)

    assert report["ok"] is True, report["problems"]
    assert report["problems"] == []
    assert report["n_images"] == report["n_readable"] == len(frame)
    assert report["n_patients"] == 6
    assert report["classes"]["by_split"] == {"train": frame["cancer"].value_counts().reindex(["0", "1"]).to_dict()}
    for column in ("site_id", "view", "laterality"):
        assert report["columns"][column] == frame[column].value_counts().sort_index().to_dict()
    per_patient = frame.groupby("patient_id").size()
    assert report["images_per_group"]["patient_id"] == {
        "groups": 6,
        "min": per_patient.min(),
        "median": per_patient.median(),
        "max": per_patient.max(),
    }
    assert report["image_size"]["rows"] == {"min": 128, "median": 128, "max": 128}
    assert report["image_size"]["n_large"] == 0
    assert report["bit_depths"] and report["photometric_interpretations"] and report["transfer_syntaxes"]
    assert report["duplicates"]["exact"]["pairs"] == report["duplicates"]["near"]["pairs"] == 0
    assert report["patients_in_several_partitions"] == []
    assert "OK:" in report["summary"]

    # the folds are the bundle's: split_fold with the same n_folds and seed
    datalist = rsna_datalist(rsna_demo)
    for fold in range(N_FOLDS):
        _, val = split_fold(datalist, fold, n_splits=N_FOLDS, seed=42)
        counts = report["partitions"]["by_partition"][f"fold {fold}"]
        assert counts["images"] == len(val)
        assert counts["classes"]["1"] == sum(item["label"] == [1.0] for item in val)

    assert json.loads((out / "data_check.json").read_text()) == json.loads(json.dumps(report))
    markdown = (out / "data_check.md").read_text()
    assert markdown.startswith("# Data check: rsna: OK") and "## Images per fold" in markdown
    images = pd.read_csv(out / "data_check_images.csv", dtype={"image_id": str})
    assert sorted(images["image_id"]) == sorted(frame["image_id"])
    assert images["crop_found"].all() and images["crop_box_area"].between(0.2, 1.0).all()
    crop = report["breast_crop"]
    assert (crop["images"], crop["found"], crop["fallbacks"]) == (len(frame), len(frame), [])
    assert set(crop["box_area"]) == {"p5", "p25", "p50", "p75", "p95"}
    assert f"The breast crop finds the breast in {len(frame)} of {len(frame)} images" in report["summary"]
    assert "## Breast crop" in markdown and "| box area |" in markdown


def test_rsna_images_the_crop_keeps_whole_are_counted_listed_and_warned(rsna_copy):
    frame = pd.read_csv(rsna_copy / "train.csv", dtype=str)
    first = frame.iloc[0]
    blank_dicom(rsna_copy / "train_images" / first["patient_id"] / f"{first['image_id']}.dcm")
    report = _validate("rsna", rsna_copy)
    crop = report["breast_crop"]
    assert crop["found"] == len(frame) - 1 and crop["fallback_share"] == pytest.approx(1 / len(frame), abs=1e-4)
    assert [(r["image_id"], r["box_area"]) for r in crop["fallbacks"]] == [(first["image_id"], 1.0)]
    assert "blank or constant" in crop["fallbacks"][0]["reason"]
    assert report["ok"] is True  # worth a look, not wrong
    loud = 1 / len(frame) > 0.05
    assert [w for w in report["warnings"] if w.startswith(f"the breast crop finds no breast in 1 of {len(frame)} images")
            and ("above crop_fallback_warn" in w) == loud]  # fmt: skip
    assert "Kept whole (1):" in (rsna_copy / "data_check" / "data_check.md").read_text()


def test_rsna_real_films_crop_box_distribution(film_dataset, tmp_path):
    """The 12 shared scanned films: every breast found, boxes covering 40-70 % of a film with a dark border."""
    report = _validate("rsna", film_dataset, out=tmp_path, n_folds=2)
    crop = report["breast_crop"]
    assert (crop["images"], crop["found"], crop["outliers"]) == (12, 12, [])
    assert 0.4 <= crop["box_area"]["p5"] and crop["box_area"]["p95"] <= 0.7


def test_rsna_default_output_folder(rsna_copy):
    _validate("rsna", rsna_copy)
    assert {p.name for p in (rsna_copy / "data_check").iterdir()} == {
        "data_check.md",
        "data_check.json",
        "data_check_images.csv",
    }


def _plant_rsna_row(root: Path, source: dict, patient_id: str, image_id: str) -> Path:
    """Add a train.csv row for ``image_id`` of ``patient_id`` copied from ``source``'s row; return its path."""
    frame = pd.read_csv(root / "train.csv", dtype=str)
    row = frame[frame["image_id"] == source["image_id"]].assign(patient_id=patient_id, image_id=image_id)
    pd.concat([frame, row]).to_csv(root / "train.csv", index=False)
    return root / "train_images" / patient_id / f"{image_id}.dcm"


def _noisy_brighter_dicom(source: str, target: Path) -> None:
    """Re-save a DICOM with 1 % brighter, slightly noisy stored values (uncompressed)."""
    ds = pydicom.dcmread(source)
    top = 2**ds.BitsStored - 1
    noise = np.random.default_rng(0).normal(0, 0.005 * top, ds.pixel_array.shape)
    pixels = np.clip(ds.pixel_array + round(0.01 * top) + noise, 0, top).astype(np.uint16)
    ds.set_pixel_data(pixels, ds.PhotometricInterpretation, ds.BitsStored)
    ds.save_as(target)


def test_rsna_planted_duplicates_in_other_folds_are_leakage(rsna_copy, tmp_path):
    datalist = rsna_datalist(rsna_copy)
    first, second = datalist[0], datalist[1]
    other = next(item["patient_id"] for item in datalist if item["patient_id"] != first["patient_id"])
    exact = _plant_rsna_row(rsna_copy, first, other, "900000001")
    shutil.copy(first["image"], exact)
    near = _plant_rsna_row(rsna_copy, second, other, "900000002")
    _noisy_brighter_dicom(second["image"], near)

    report = _validate("rsna", rsna_copy, out=tmp_path / "report")
    folds = report["partitions"]["by_partition"]
    assert sum(counts["images"] for counts in folds.values()) == len(datalist) + 2
    exact_pairs, near_pairs = report["duplicates"]["exact"], report["duplicates"]["near"]
    assert exact_pairs["pairs"] == 1 and near_pairs["pairs"] == 1
    pairs = {"exact": exact_pairs["listed"][0], "near": near_pairs["listed"][0]}
    assert {pairs["exact"]["a"]["image_id"], pairs["exact"]["b"]["image_id"]} == {first["image_id"], "900000001"}
    assert {pairs["near"]["a"]["image_id"], pairs["near"]["b"]["image_id"]} == {second["image_id"], "900000002"}
    assert pairs["near"]["distance"] <= NEAR_DUPLICATE_DISTANCE
    for pair in pairs.values():
        assert {pair["a"]["patient_id"], pair["b"]["patient_id"]} == {first["patient_id"], other}
        assert pair["same_patient"] is False
        assert pair["leakage"] == (pair["a"]["partition"] != pair["b"]["partition"])
    assert pairs["exact"]["leakage"], "the planted patient must land in another fold for this test"
    assert report["ok"] is False
    assert any("exact-duplicate" in problem and "leakage" in problem for problem in report["problems"])
    assert "NOT OK" in report["summary"]
    markdown = (tmp_path / "report" / "data_check.md").read_text()
    assert "**leakage**" in markdown and "900000002" in markdown


@pytest.mark.filterwarnings("ignore:End of file reached")  # pydicom, on the truncated file
def test_rsna_truncated_and_missing_files_are_listed(rsna_copy):
    datalist = rsna_datalist(rsna_copy)
    truncated, missing = Path(datalist[2]["image"]), Path(datalist[3]["image"])
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    missing.unlink()

    report = _validate("rsna", rsna_copy)
    assert report["ok"] is False
    assert report["unreadable"]["count"] == 2
    assert report["n_images"] == len(datalist) and report["n_readable"] == len(datalist) - 2
    reasons = {entry["image_id"]: entry["error"] for entry in report["unreadable"]["files"]}
    assert reasons[truncated.stem].startswith("ImageReadError: Cannot read DICOM file")
    assert str(truncated) in reasons[truncated.stem]
    assert reasons[missing.stem].startswith("FileNotFoundError") and "does not exist" in reasons[missing.stem]
    assert report["problems"] == [f"2 of {len(datalist)} images cannot be read"]


def test_unknown_task_is_rejected(rsna_demo):
    with pytest.raises(ValueError, match="unknown task 'mnist'"):
        check_dataset("mnist", rsna_demo)
    assert {"rsna", "chest_xray", "isic"} <= set(task_names())


# --------------------------------------------------------------------------- chest_xray


def test_chest_xray_clean_demo_is_ok_with_the_right_counts(chest_demo, tmp_path):
    report = _validate("chest_xray", chest_demo, out=tmp_path)
    assert report["ok"] is True, report["problems"]
    expected = {split: dict.fromkeys(CHEST_XRAY_CLASSES, n) for split, n in (("train", 3), ("val", 2), ("test", 1))}
    assert report["classes"]["by_split"] == expected
    assert report["partitions"]["word"] == "split"
    assert list(report["partitions"]["by_partition"]) == ["train", "val", "test"]
    assert report["n_patients"] is None and report["images_per_group"] == {}
    assert sum(report["formats"].values()) == report["n_images"] == 30
    assert set(report["formats"]) <= {"png", "jpeg", "dicom"}
    assert 64 <= report["image_size"]["rows"]["min"] and report["image_size"]["rows"]["max"] <= 96
    assert report["duplicates"]["exact"]["pairs"] == report["duplicates"]["near"]["pairs"] == 0


def test_chest_xray_duplicates_across_splits_are_leakage(chest_copy):
    train = chest_xray_datalist(chest_copy, "train")
    source = next(item for item in train if item["image"].endswith(".png"))
    class_folder = Path(source["image"]).parent.name
    shutil.copy(source["image"], chest_copy / "test" / class_folder / "copy.png")
    image = GrayscaleReader().decode(source["image"])[0]
    rows, columns = image.shape
    smaller = cv2.resize(image, (columns * 9 // 10, rows * 9 // 10), interpolation=cv2.INTER_AREA)
    noisy = np.clip(smaller + np.random.default_rng(0).normal(0, 0.01, smaller.shape), 0, 1)
    cv2.imwrite(str(chest_copy / "val" / class_folder / "resized.png"), np.rint(noisy * 255).astype(np.uint8))

    report = _validate("chest_xray", chest_copy)
    assert report["ok"] is False
    exact, near = report["duplicates"]["exact"], report["duplicates"]["near"]
    assert (exact["pairs"], exact["leakage"]) == (1, 1)
    assert {exact["listed"][0]["a"]["partition"], exact["listed"][0]["b"]["partition"]} == {"train", "test"}
    # the resized copy is close to the original and to its exact copy
    assert (near["pairs"], near["leakage"]) == (2, 2)
    assert sorted(sorted((e["a"]["partition"], e["b"]["partition"])) for e in near["listed"]) == [
        ["test", "val"],
        ["train", "val"],
    ]
    assert all(e["same_patient"] is None for e in near["listed"])  # no patient list: unknown


def test_chest_xray_with_patients_uses_folds_and_finds_a_patient_in_two_partitions(chest_copy):
    clean = _validate("chest_xray", chest_copy, patients_csv="patients.csv")
    assert clean["ok"] is True, clean["problems"]
    assert list(clean["partitions"]["by_partition"]) == ["fold 0", "fold 1", "test"]
    assert clean["images_per_group"]["patient_id"]["groups"] == clean["n_patients"]

    patients = pd.read_csv(chest_copy / "patients.csv", dtype=str)
    in_test = patients["image"].str.startswith("test/")
    patients.loc[in_test.idxmax(), "patient_id"] = patients.loc[(~in_test).idxmax(), "patient_id"]
    patients.to_csv(chest_copy / "patients.csv", index=False)
    report = _validate("chest_xray", chest_copy, patients_csv="patients.csv")
    assert report["ok"] is False
    assert len(report["patients_in_several_partitions"]) == 1
    assert "test" in report["patients_in_several_partitions"][0]["partitions"]


def test_chest_xray_truncated_png_is_listed(chest_copy):
    path = next(
        Path(item["image"]) for item in chest_xray_datalist(chest_copy, "val") if item["image"].endswith(".png")
    )
    path.write_bytes(path.read_bytes()[:-100])
    report = _validate("chest_xray", chest_copy)
    assert report["ok"] is False
    (entry,) = report["unreadable"]["files"]
    assert entry["image"] == path.relative_to(chest_copy).as_posix()
    assert entry["partition"] == "val"
    assert "truncated" in entry["error"]


def test_chest_xray_patients_csv_must_cover_the_folded_splits(chest_copy):
    patients = pd.read_csv(chest_copy / "patients.csv", dtype=str)
    in_test = patients["image"].str.startswith("test/")
    patients[~in_test].to_csv(chest_copy / "patients.csv", index=False)
    report = _validate("chest_xray", chest_copy, patients_csv="patients.csv")
    assert report["ok"] is True, report["problems"]  # test images need no patient, as in the bundle

    patients[~in_test].iloc[1:].to_csv(chest_copy / "patients.csv", index=False)
    with pytest.raises(ValueError, match="have no row in"):
        _validate("chest_xray", chest_copy, patients_csv="patients.csv")


def test_chest_xray_far_larger_image_is_a_warning(chest_copy):
    big = chest_copy / "train" / "Normal" / "big.png"
    cv2.imwrite(str(big), np.rint(_smooth_image(0, shape=(300, 280)) * 255).astype(np.uint8))
    report = _validate("chest_xray", chest_copy)
    assert report["ok"] is True, report["problems"]
    assert report["image_size"]["n_large"] == 1
    assert report["image_size"]["large"][0]["image"] == "train/Normal/big.png"
    assert report["image_size"]["rows"]["max"] == 300
    assert any("median pixel count" in warning for warning in report["warnings"])


# --------------------------------------------------------------------------- isic


def _set_isic_member(root: Path, isic_id: str, data: bytes | None) -> None:
    """Replace the bytes of ``isic_id`` in ``root``'s train-image.hdf5, or delete the member (None)."""
    with h5py.File(root / "train-image.hdf5", "a") as f:
        del f[isic_id]
        if data is not None:
            f.create_dataset(isic_id, data=np.bytes_(data))


def test_isic_clean_demo_is_ok_with_the_right_counts(isic_demo, tmp_path):
    out = tmp_path / "report"
    report = _validate("isic", isic_demo, out=out, num_workers=2)
    frame = pd.read_csv(isic_demo / "train-metadata.csv", dtype=str)

    assert report["ok"] is True, report["problems"]
    assert report["n_images"] == report["n_readable"] == len(frame)
    assert report["n_patients"] == 6
    assert report["classes"]["column"] == "target"
    assert report["classes"]["by_split"] == {"train": frame["target"].value_counts().reindex(["0", "1"]).to_dict()}
    for column in ISIC_COLUMNS:
        assert report["columns"][column] == frame[column].fillna("(none)").value_counts().sort_index().to_dict()
    assert report["images_per_group"]["patient_id"]["groups"] == 6
    assert report["formats"] == {"jpeg": len(frame)} and report["channels"] == {"3": len(frame)}
    assert report["transfer_syntaxes"] == report["photometric_interpretations"] == report["bit_depths"] == {}
    assert 40 <= report["image_size"]["rows"]["min"] and report["image_size"]["columns"]["max"] <= 60
    assert report["duplicates"]["exact"]["pairs"] == report["duplicates"]["near"]["pairs"] == 0
    assert report["patients_in_several_partitions"] == []

    datalist = isic_datalist(isic_demo)
    for fold in range(N_FOLDS):
        _, val = split_fold(datalist, fold, n_splits=N_FOLDS, seed=42)
        counts = report["partitions"]["by_partition"][f"fold {fold}"]
        assert counts["images"] == len(val)
        assert counts["classes"]["1"] == sum(item["label"] == [1.0] for item in val)

    assert (out / "data_check.md").read_text().startswith("# Data check: isic: OK")
    images = pd.read_csv(out / "data_check_images.csv")
    assert sorted(images["image_id"]) == sorted(frame["isic_id"])
    assert images["image"].str.startswith(f"{isic_demo / 'train-image.hdf5'}::").all()


def test_isic_missing_and_undecodable_members_are_listed(isic_copy):
    frame = pd.read_csv(isic_copy / "train-metadata.csv", dtype=str)
    missing, broken = frame["isic_id"].iloc[0], frame["isic_id"].iloc[1]
    _set_isic_member(isic_copy, missing, None)
    _set_isic_member(isic_copy, broken, b"\xff\xd8\xff\xe0 not a JPEG")

    report = _validate("isic", isic_copy)
    assert report["ok"] is False
    assert report["n_images"] == len(frame) and report["n_readable"] == len(frame) - 2
    entries = {entry["image_id"]: entry for entry in report["unreadable"]["files"]}
    assert set(entries) == {missing, broken}
    assert entries[missing]["image"] is None
    assert entries[missing]["error"] == (
        f"FileNotFoundError: train-metadata.csv line 2 names isic_id {missing}, which has no image in train-image.hdf5"
    )
    assert entries[broken]["image"] == f"train-image.hdf5::{broken}"
    assert entries[broken]["error"].startswith(f"ImageReadError: Cannot read isic_id '{broken}'")
    assert report["problems"] == [f"2 of {len(frame)} images cannot be read"]


def test_isic_copied_crop_of_another_patient_in_another_fold_is_leakage(isic_demo, isic_copy, tmp_path):
    train, val = split_fold(isic_datalist(isic_demo), 0, n_splits=N_FOLDS, seed=42)
    source = train[0]
    target = next(item for item in val if item["patient_id"] != source["patient_id"])
    _set_isic_member(isic_copy, target["image_id"], read_hdf5_bytes(isic_demo / "train-image.hdf5", source["image_id"]))

    report = _validate("isic", isic_copy, out=tmp_path / "report")
    exact = report["duplicates"]["exact"]
    assert (exact["pairs"], exact["leakage"]) == (1, 1)
    (pair,) = exact["listed"]
    assert {pair["a"]["image_id"], pair["b"]["image_id"]} == {source["image_id"], target["image_id"]}
    assert pair["same_patient"] is False
    assert report["duplicates"]["near"]["pairs"] == 0
    assert report["ok"] is False
    assert any("exact-duplicate" in problem and "leakage" in problem for problem in report["problems"])
    assert "**leakage**" in (tmp_path / "report" / "data_check.md").read_text()


def test_items_without_patient_ids_are_folded_by_image_as_a_bundle_splits_them():
    from medbundle.data import grouped_folds
    from medbundle.datacheck.adapters import DatasetFacts
    from medbundle.datacheck.report import _partitions

    items = [{"image": f"{i}.png", "image_id": str(i), "label": i % 2, "split": "train", "class": "ab"[i % 2]}
             for i in range(8)]  # fmt: skip
    partitions, order = _partitions(DatasetFacts(items, "class", ("a", "b"), fold_splits=("train",)), 2, 42)
    expected = grouped_folds([str(i) for i in range(8)], [i % 2 for i in range(8)], n_splits=2, seed=42)
    assert partitions == [f"fold {fold}" for fold in expected] and order == ["fold 0", "fold 1"]


# --------------------------------------------------------------------------- classify


def test_classify_check_counts_classes_per_fold_of_a_label_csv_with_patients(tmp_path):
    """`medbundle validate --task classify`: the bundle's own folds over a label CSV, patients kept apart."""
    from medbundle.demo import write_classify_demo

    write_classify_demo(tmp_path / "data", n_patients=20, n_classes=3, layout="csv", n_test=0, size_range=(32, 40))
    report = check_dataset("classify", tmp_path / "data", out=tmp_path / "report", n_folds=3, num_workers=0)
    assert report["ok"] and report["task"] == "classify"
    labels = pd.read_csv(tmp_path / "data" / "labels.csv")
    images = pd.read_csv(tmp_path / "report" / "data_check_images.csv")
    assert len(images) == len(labels) and images["readable"].all()
    assert images.groupby("patient_id")["partition"].nunique().max() == 1  # a patient sits in one fold
