"""Tests for the synthetic RSNA Screening Mammography demo data set."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    DigitalMammographyXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
)

from medbundle.demo import write_rsna_demo
from medbundle.demo.rsna import _rle_encode_frame

SHAPE = (192, 160)
N_PATIENTS = 8  # >= 7 so every synthetic machine (site, bits, photometric, VOI) appears
TRAIN_COLUMNS = [
    "site_id", "patient_id", "image_id", "laterality", "view", "age", "cancer", "biopsy",
    "invasive", "BIRADS", "implant", "density", "machine_id", "difficult_negative_case",
]  # fmt: skip
TEST_COLUMNS = [
    "site_id", "patient_id", "image_id", "laterality", "view", "age", "implant", "machine_id",
    "prediction_id",
]  # fmt: skip
BREAST_LABELS = ["cancer", "biopsy", "invasive", "BIRADS", "difficult_negative_case"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One small data set shared by the tests of this module."""
    root = tmp_path_factory.mktemp("rsna")
    return write_rsna_demo(root, n_patients=N_PATIENTS, n_test_patients=2, image_shape=SHAPE)


@pytest.fixture(scope="module")
def train(demo: dict) -> pd.DataFrame:
    return pd.read_csv(demo["train_csv"])


@pytest.fixture(scope="module")
def decoded(demo: dict, train: pd.DataFrame) -> dict[int, tuple[Dataset, np.ndarray]]:
    """Every train and test image: dataset and pixels in display orientation (bright = dense)."""
    test = pd.read_csv(demo["test_csv"])
    images = {}
    for folder, frame in (("train_images_dir", train), ("test_images_dir", test)):
        for row in frame.itertuples():
            ds = pydicom.dcmread(demo[folder] / str(row.patient_id) / f"{row.image_id}.dcm")
            images[row.image_id] = (ds, _display(ds))
    return images


def _display(ds: Dataset) -> np.ndarray:
    """Pixels as float with MONOCHROME1 inverted, so that bright means dense."""
    pixels = ds.pixel_array.astype(np.float64)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        pixels = (2**ds.BitsStored - 1) - pixels
    return pixels


def test_csv_columns_and_types(demo: dict, train: pd.DataFrame) -> None:
    test = pd.read_csv(demo["test_csv"])
    submission = pd.read_csv(demo["sample_submission_csv"])
    assert list(train.columns) == TRAIN_COLUMNS
    assert list(test.columns) == TEST_COLUMNS
    assert list(submission.columns) == ["prediction_id", "cancer"]
    for column in ["site_id", "patient_id", "image_id", "cancer", "biopsy", "invasive", "implant"]:
        assert pd.api.types.is_integer_dtype(train[column]), column
    assert train["difficult_negative_case"].dtype == bool
    assert set(train["laterality"]) == {"L", "R"}
    assert set(train["site_id"]) == {1, 2}
    assert set(train["BIRADS"].dropna()) <= {0.0, 1.0, 2.0}
    assert set(train["density"].dropna()) <= set("ABCD")
    assert {"CC", "MLO"} <= set(train["view"])
    assert train["patient_id"].between(10000, 99999).all()
    assert train["image_id"].between(10**8, 10**10 - 1).all()


def test_ids_unique_and_disjoint(demo: dict, train: pd.DataFrame) -> None:
    test = pd.read_csv(demo["test_csv"])
    assert train["image_id"].is_unique and test["image_id"].is_unique
    assert not set(train["image_id"]) & set(test["image_id"])
    assert not set(train["patient_id"]) & set(test["patient_id"])
    assert train["patient_id"].nunique() == N_PATIENTS
    assert demo["n_train_images"] == len(train)


def test_every_patient_has_both_breasts_with_cc_and_mlo(train: pd.DataFrame) -> None:
    for (_, _), views in train.groupby(["patient_id", "laterality"])["view"]:
        assert {"CC", "MLO"} <= set(views)
    assert (train.groupby("patient_id")["laterality"].nunique() == 2).all()


def test_labels_are_per_breast(train: pd.DataFrame) -> None:
    per_breast = train.groupby(["patient_id", "laterality"])[BREAST_LABELS]
    assert (per_breast.nunique(dropna=False) == 1).all().all()
    cancers = train[train["cancer"] == 1]
    assert (cancers["biopsy"] == 1).all()
    assert not cancers["difficult_negative_case"].any()
    assert (train.loc[train["cancer"] == 0, "invasive"] == 0).all()


def test_at_least_two_positive_breasts_whatever_the_rate(tmp_path: Path) -> None:
    summary = write_rsna_demo(tmp_path, n_patients=3, positive_rate=0.0, n_test_patients=0,
                              image_shape=(64, 64))  # fmt: skip
    train = pd.read_csv(summary["train_csv"])
    positives = train.loc[train["cancer"] == 1, ["patient_id", "laterality"]].drop_duplicates()
    assert len(positives) == summary["n_positive_breasts"] == 2
    assert pd.read_csv(summary["test_csv"]).empty


def test_test_csv_and_sample_submission(demo: dict) -> None:
    test = pd.read_csv(demo["test_csv"])
    submission = pd.read_csv(demo["sample_submission_csv"])
    expected = test["patient_id"].astype(str) + "_" + test["laterality"]
    assert (test["prediction_id"] == expected).all()
    assert list(submission["prediction_id"]) == list(test["prediction_id"].unique())
    assert len(submission) == 2 * test["patient_id"].nunique()
    assert (submission["cancer"] == 0.021).all()


def test_file_layout(demo: dict, train: pd.DataFrame) -> None:
    root = Path(demo["root"])
    assert {p.name for p in root.iterdir()} == {
        "train.csv", "test.csv", "sample_submission.csv", "train_images", "test_images",
    }  # fmt: skip
    for folder, csv in (("train_images", "train.csv"), ("test_images", "test.csv")):
        frame = pd.read_csv(root / csv)
        expected = {f"{r.patient_id}/{r.image_id}.dcm" for r in frame.itertuples()}
        found = {p.relative_to(root / folder).as_posix() for p in (root / folder).rglob("*.dcm")}
        assert found == expected


def test_dicoms_decode_and_match_csv(demo: dict, train: pd.DataFrame, decoded: dict) -> None:
    test = pd.read_csv(demo["test_csv"])
    for row in pd.concat([train, test]).itertuples():
        ds, _ = decoded[row.image_id]
        meta = ds.file_meta
        assert ds.preamble == b"\x00" * 128
        assert meta.MediaStorageSOPClassUID == DigitalMammographyXRayImageStorageForPresentation
        assert meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.SOPClassUID == DigitalMammographyXRayImageStorageForPresentation
        assert ds.Modality == "MG"
        assert ds.PatientID == str(row.patient_id)
        assert ds.PatientName == "ANON^DEMO" and ds.PatientBirthDate
        assert ds.ImageLaterality == row.laterality and ds.ViewPosition == row.view
        assert ds.BitsAllocated == 16 and ds.BitsStored in (12, 14, 16)
        assert ds.HighBit == ds.BitsStored - 1
        assert ds.PhotometricInterpretation in ("MONOCHROME1", "MONOCHROME2")
        assert ds.VOILUTFunction in ("LINEAR", "SIGMOID")
        assert (ds.RescaleSlope, ds.RescaleIntercept) == (1, 0)
        assert ds.pixel_array.shape == SHAPE
        assert ds.pixel_array.max() <= 2**ds.BitsStored - 1
        syntaxes = {1: {JPEG2000Lossless}, 2: {RLELossless, ExplicitVRLittleEndian}}
        assert meta.TransferSyntaxUID in syntaxes[row.site_id]


def test_acquisition_variety(decoded: dict) -> None:
    datasets = [ds for ds, _ in decoded.values()]
    assert {ds.file_meta.TransferSyntaxUID for ds in datasets} >= {JPEG2000Lossless, RLELossless}
    assert {ds.PhotometricInterpretation for ds in datasets} == {"MONOCHROME1", "MONOCHROME2"}
    assert {ds.BitsStored for ds in datasets} == {12, 14, 16}
    assert {ds.VOILUTFunction for ds in datasets} == {"LINEAR", "SIGMOID"}
    assert any(ds["WindowCenter"].VM == 2 for ds in datasets)
    assert any(ds["WindowCenter"].VM == 1 for ds in datasets)


def test_properties_constant_per_machine(train: pd.DataFrame, decoded: dict) -> None:
    for _, group in train.groupby("machine_id"):
        profiles = {
            (ds.BitsStored, ds.PhotometricInterpretation, ds.VOILUTFunction)
            for ds in (decoded[i][0] for i in group["image_id"])
        }
        assert len(profiles) == 1


def test_breast_on_chest_wall_side(train: pd.DataFrame, decoded: dict) -> None:
    half = SHAPE[1] // 2
    for row in train.itertuples():
        pixels = decoded[row.image_id][1]
        left, right = pixels[:, :half].mean(), pixels[:, half:].mean()
        assert (left > right) if row.laterality == "L" else (right > left), row
        assert pixels[:, :half].min() == 0 or pixels[:, half:].min() == 0  # dark background


def test_tissue_in_upper_part_of_range(train: pd.DataFrame, decoded: dict) -> None:
    for image_id in train["image_id"]:
        ds, pixels = decoded[image_id]
        max_value = 2**ds.BitsStored - 1
        tissue = pixels[pixels > 0.2 * max_value]
        assert np.median(tissue) > 0.4 * max_value
        assert np.percentile(pixels, 5) < 0.01 * max_value  # background near 0


def test_cancer_mass_is_brighter_and_survives_downscaling(
    demo: dict, train: pd.DataFrame, decoded: dict
) -> None:
    cancer_ids = set(train.loc[train["cancer"] == 1, "image_id"])
    lesions = demo["cancer_lesions"]
    assert cancer_ids <= set(lesions)
    for image_id in cancer_ids:
        row, col, radius = lesions[image_id]
        pixels = decoded[image_id][1]
        assert _disc_minus_ring(pixels, row, col, radius) > 0.1 * pixels.max()
        small = cv2.resize(pixels, (64, 128), interpolation=cv2.INTER_AREA)
        sy, sx = 128 / SHAPE[0], 64 / SHAPE[1]
        centre = (row * sy, col * sx)
        assert _disc_minus_ring(small, *centre, radius * sx) > 0.1 * small.max()


def _disc_minus_ring(pixels: np.ndarray, row: float, col: float, radius: float) -> float:
    """Mean inside 0.6 radius minus mean of the breast tissue in a ring at 1.8-2.8 radii."""
    yy, xx = np.indices(pixels.shape)
    dist = np.hypot(yy - row, xx - col)
    tissue = pixels > 0
    disc = pixels[dist <= max(1.0, 0.6 * radius)]
    ring = pixels[(dist >= 1.8 * radius) & (dist <= 2.8 * radius) & tissue]
    return float(disc.mean() - ring.mean())


def test_reproducible_with_seed(demo: dict, tmp_path: Path) -> None:
    again = write_rsna_demo(tmp_path / "a", n_patients=N_PATIENTS, n_test_patients=2,
                            image_shape=SHAPE)  # fmt: skip
    root, other_root = Path(demo["root"]), Path(again["root"])
    files = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(other_root) for p in other_root.rglob("*") if p.is_file())
    for path in files:
        assert (root / path).read_bytes() == (other_root / path).read_bytes(), path
    other = write_rsna_demo(tmp_path / "b", n_patients=N_PATIENTS, n_test_patients=2,
                            image_shape=SHAPE, seed=1)  # fmt: skip
    assert (root / "train.csv").read_bytes() != Path(other["train_csv"]).read_bytes()


@pytest.mark.parametrize("n_patients, rate", [(1, 0.1), (4, 1.5)])
def test_rejects_bad_arguments(tmp_path: Path, n_patients: int, rate: float) -> None:
    with pytest.raises(ValueError):
        write_rsna_demo(tmp_path, n_patients=n_patients, positive_rate=rate)


@pytest.mark.parametrize(
    "pixels",
    [
        np.zeros((3, 300), np.uint16),  # replicate runs longer than 128
        np.arange(2 * 300, dtype=np.uint16).reshape(2, 300) * 97,  # literal runs longer than 128
        np.repeat(np.arange(40, dtype=np.uint16), 129).reshape(12, 430),  # 129-runs: 128 + 1
        np.random.default_rng(0).integers(0, 3, (17, 33)).astype(np.uint16) * 257,
        np.random.default_rng(1).integers(0, 4, (9, 131)).astype(np.uint8),
        np.array([[7]], np.uint16),
    ],
)
def test_rle_encoder_round_trips_through_pydicom(pixels: np.ndarray) -> None:
    ds = Dataset()
    ds.SOPClassUID = DigitalMammographyXRayImageStorageForPresentation
    ds.SOPInstanceUID = "1.2.3.4"
    ds.set_pixel_data(pixels, "MONOCHROME2", 8 * pixels.itemsize, generate_instance_uid=False)
    ds.PixelData = encapsulate([_rle_encode_frame(pixels)])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.file_meta.TransferSyntaxUID = RLELossless
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    buffer.seek(0)
    assert np.array_equal(pydicom.dcmread(buffer).pixel_array.reshape(pixels.shape), pixels)
