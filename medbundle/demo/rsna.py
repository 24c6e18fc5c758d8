"""Synthetic RSNA Screening Mammography data set in the exact Kaggle 2022-23 layout.

Why: bundles, data loaders and tests need a small data set that has the quirks of the real
competition data (JPEG 2000 / RLE Lossless DICOMs, MONOCHROME1 storage, multi-valued VOI
windows, SIGMOID VOI LUT functions, burned-in labels, rare views, per-breast labels, missing
metadata) without the 300 GB download. Cancer breasts carry a bright spiculated mass in every
image so a small model can actually learn the task, while benign masses and calcification
specks on some negatives keep it from being trivial. A fraction of the images carry what makes
cropping to the breast hard on scanned film (labels near the breast, film frames, rulers, the
other breast's edge), each recorded in the returned summary.

Layout written under ``out_dir``::

    train.csv                 site_id, patient_id, image_id, laterality, view, age, cancer,
                              biopsy, invasive, BIRADS, implant, density, machine_id,
                              difficult_negative_case
    train_images/<patient_id>/<image_id>.dcm
    test.csv                  site_id, patient_id, image_id, laterality, view, age, implant,
                              machine_id, prediction_id
    test_images/<patient_id>/<image_id>.dcm
    sample_submission.csv     prediction_id, cancer
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pydicom
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    UID,
    DigitalMammographyXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
)

from medbundle.demo.dicom_header import presentation_header
from medbundle.demo.texture import smooth_noise

TRAIN_COLUMNS = (
    "site_id",
    "patient_id",
    "image_id",
    "laterality",
    "view",
    "age",
    "cancer",
    "biopsy",
    "invasive",
    "BIRADS",
    "implant",
    "density",
    "machine_id",
    "difficult_negative_case",
)
TEST_COLUMNS = (
    "site_id",
    "patient_id",
    "image_id",
    "laterality",
    "view",
    "age",
    "implant",
    "machine_id",
    "prediction_id",
)

SUBMISSION_DEFAULT = 0.021
_DENSITIES = ("A", "B", "C", "D")
_DENSITY_BIAS = {"A": -1.4, "B": -0.6, "C": 0.2, "D": 1.0}
_EXTRA_VIEWS = ("CC", "MLO", "ML", "LM", "AT", "LMO")
_EXTRA_VIEW_P = (0.38, 0.38, 0.08, 0.08, 0.04, 0.04)
_UNCOMPRESSED_RATE_SITE2 = 0.1
_LABEL_RATE = 0.3
_DETECTOR_HEIGHT_MM = 240.0
_NAMESPACE = "medbundle-rsna-demo"  # hashed into every UID
HARD_CASE_KINDS = ("label", "frame", "ruler", "other_breast")
_HARD_CASE_STREAM = 1  # extra seed entry: a hard case's draws never shift the image's other draws
_FILM_LABELS = ("MED-LAT CRAN", "CRAN-CAUD", "R ML", "L CC")

Box = tuple[int, int, int, int]  # (y0, y1, x0, x1), end-exclusive


@dataclass(frozen=True)
class _Machine:
    """Acquisition profile of one (fictional) mammography unit."""

    machine_id: int
    site_id: int
    bits_stored: int
    photometric: str
    voi_function: str
    n_windows: int


# Every site mixes MONOCHROME1/2, bit depths, LINEAR/SIGMOID and single/double windows.
_MACHINES = (
    _Machine(21, 1, 12, "MONOCHROME2", "LINEAR", 1),
    _Machine(29, 1, 14, "MONOCHROME1", "SIGMOID", 1),
    _Machine(49, 1, 16, "MONOCHROME2", "LINEAR", 2),
    _Machine(216, 1, 12, "MONOCHROME1", "LINEAR", 2),
    _Machine(170, 2, 16, "MONOCHROME1", "LINEAR", 2),
    _Machine(190, 2, 12, "MONOCHROME2", "SIGMOID", 1),
    _Machine(197, 2, 14, "MONOCHROME2", "LINEAR", 1),
)
_MACHINE_BY_ID = {m.machine_id: m for m in _MACHINES}


@dataclass(frozen=True)
class _Lesion:
    """A finding placed in breast-relative polar coordinates so all views of a breast share it.

    ``rho`` is the normalised elliptical radius (0 = chest wall centre, 1 = skin), ``psi`` the
    angle from the nipple axis and ``size`` the radius as a fraction of the breast height.
    """

    kind: str  # "cancer", "benign" or "calcs"
    rho: float
    psi: float
    size: float


@dataclass(frozen=True)
class _Breast:
    """Labels and geometry of one breast (shared by all of its images)."""

    patient_id: int
    laterality: str
    cancer: int
    biopsy: int
    invasive: int
    birads: float
    difficult_negative: bool
    depth: float  # semi-axis towards the nipple, fraction of image width
    half_height: float  # vertical semi-axis, fraction of image height
    centre: float  # vertical centre, fraction of image height
    density: str  # the patient's true density, used for rendering
    lesions: tuple[_Lesion, ...]
    views: tuple[str, ...]


@dataclass(frozen=True)
class HardCase:
    """What was planted in one image to make cropping to the breast hard, and where.

    Boxes are ``(y0, y1, x0, x1)`` in pixels, end-exclusive, in the orientation of the stored
    image. A crop that keeps all of ``breast_box`` and little else leaves the planted things
    out wherever they lie outside ``breast_box``.

    Attributes:
        kind: one of ``HARD_CASE_KINDS``: ``"label"`` (bright text label block near the
            breast), ``"frame"`` (scanned-film frame: bright bands along the top, bottom and
            far edge, dark film edge cutting the breast at the chest wall), ``"ruler"`` (bright
            ruler with tick marks along the top, bottom or far edge) or ``"other_breast"``
            (edge of the other breast against the far edge, a second bright region).
        breast_box: bounding box of the breast tissue.
        artifact_boxes: bounding boxes of the planted bright structures.
    """

    kind: str
    breast_box: Box
    artifact_boxes: tuple[Box, ...]


@dataclass(frozen=True)
class _Patient:
    """Per-patient metadata as it appears in the CSVs."""

    patient_id: int
    machine: _Machine
    age: float
    implant: int
    density: str  # true density, used for rendering
    density_reported: bool  # False -> the CSV shows it as empty


def write_rsna_demo(
    out_dir: str | Path,
    n_patients: int = 80,
    positive_rate: float = 0.06,
    n_test_patients: int = 4,
    image_shape: tuple[int, int] = (512, 416),
    seed: int = 0,
    hard_case_rate: float = 0.1,
) -> dict:
    """Write a synthetic RSNA Screening Mammography data set in the Kaggle layout.

    Every patient gets both breasts with a CC and an MLO view each (sometimes one extra image);
    cancer is labelled per breast. Output is fully determined by the arguments (same CSVs, same
    pixels, same DICOM bytes for the same seed).

    Args:
        out_dir: directory to write into (created if needed).
        n_patients: number of training patients; at least 2.
        positive_rate: target fraction of cancer breasts in train. At least 2 breasts are
            positive whatever the rate (so CV folds get positives) and at most one per patient.
        n_test_patients: number of test patients (labels hidden, as on Kaggle).
        image_shape: (rows, columns) of every image.
        seed: random seed.
        hard_case_rate: fraction of the images (train and test, at least one if above 0) that
            get one hard case for breast cropping; the kinds (``HARD_CASE_KINDS``) take turns,
            so 4 or more such images show every kind. A label that has no room near the
            breast (small images, large breasts) is left out. 0 writes none.

    Returns:
        Summary dict with the written paths, image/patient/positive counts,
        ``cancer_lesions``: ``{image_id: (row, col, radius_px)}`` of every cancer mass drawn
        (train and hidden test positives), for sanity checks of models and saliency maps, and
        ``hard_cases``: ``{image_id: HardCase}`` of every hard case planted.
    """
    _check_args(n_patients, positive_rate, n_test_patients, image_shape, hard_case_rate)
    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    patient_ids = rng.choice(np.arange(10000, 65536), n_patients + n_test_patients, replace=False)
    train_patients = _make_patients(rng, patient_ids[:n_patients])
    test_patients = _make_patients(rng, patient_ids[n_patients:])
    n_positive = _n_positive_breasts(n_patients, positive_rate)
    train_breasts = _make_breasts(rng, train_patients, n_positive)
    n_hidden = int(rng.binomial(len(test_patients), min(1.0, 2 * positive_rate)))
    test_breasts = _make_breasts(rng, test_patients, n_hidden)
    n_train_images = _count_views(train_breasts)
    n_images = n_train_images + _count_views(test_breasts)
    image_ids = rng.choice(2**31 - 1 - 10**8, n_images, replace=False) + 10**8  # int32, 9-10 digits
    train_rows = _image_rows(train_patients, train_breasts, image_ids[:n_train_images])
    test_rows = _image_rows(test_patients, test_breasts, image_ids[n_train_images:])
    for row, kind in zip(train_rows + test_rows, _hard_case_kinds(rng, n_images, hard_case_rate)):
        row["_hard_case"] = kind

    lesions, hard_cases = {}, {}
    for folder, rows in (("train_images", train_rows), ("test_images", test_rows)):
        image_lesions, image_hard_cases = _write_images(out / folder, rows, image_shape, seed)
        lesions.update(image_lesions)
        hard_cases.update(image_hard_cases)
    paths = _write_csvs(out, train_rows, test_rows)
    return {
        **paths,
        "n_train_patients": n_patients,
        "n_train_images": len(train_rows),
        "n_positive_breasts": sum(b.cancer for b in train_breasts),
        "n_positive_images": sum(r["cancer"] for r in train_rows),
        "n_test_patients": n_test_patients,
        "n_test_images": len(test_rows),
        "cancer_lesions": lesions,
        "hard_cases": hard_cases,
    }


def _check_args(
    n_patients: int,
    positive_rate: float,
    n_test_patients: int,
    image_shape: tuple[int, int],
    hard_case_rate: float,
) -> None:
    """Reject arguments that cannot produce a usable data set."""
    if n_patients < 2:
        raise ValueError(f"n_patients must be >= 2 to hold 2 positive breasts, got {n_patients}")
    if not 0.0 <= positive_rate <= 1.0:
        raise ValueError(f"positive_rate must be in [0, 1], got {positive_rate}")
    if n_test_patients < 0:
        raise ValueError(f"n_test_patients must be >= 0, got {n_test_patients}")
    if min(image_shape) < 64:
        raise ValueError(f"image_shape must be at least 64x64, got {image_shape}")
    if not 0.0 <= hard_case_rate <= 1.0:
        raise ValueError(f"hard_case_rate must be in [0, 1], got {hard_case_rate}")


def _n_positive_breasts(n_patients: int, positive_rate: float) -> int:
    """Number of cancer breasts: ~rate of all breasts, >= 2, <= one per patient."""
    return min(n_patients, max(2, round(positive_rate * 2 * n_patients)))


def _make_patients(rng: np.random.Generator, patient_ids: np.ndarray) -> list[_Patient]:
    """Draw per-patient metadata; machines cycle through a shuffled list so all appear early."""
    order = rng.permutation(len(_MACHINES))
    patients = []
    for i, pid in enumerate(sorted(int(p) for p in patient_ids)):
        age = float(rng.integers(38, 90)) if rng.random() > 0.03 else float("nan")
        patients.append(
            _Patient(
                patient_id=pid,
                machine=_MACHINES[order[i % len(_MACHINES)]],
                age=age,
                implant=int(rng.random() < 0.03),
                density=str(rng.choice(_DENSITIES, p=(0.1, 0.45, 0.35, 0.1))),
                density_reported=bool(rng.random() > 0.25),
            )
        )
    return patients


def _make_breasts(
    rng: np.random.Generator, patients: list[_Patient], n_positive: int
) -> list[_Breast]:
    """Draw both breasts of every patient; ``n_positive`` distinct patients get one cancer."""
    cancer_patients = set(rng.choice(len(patients), n_positive, replace=False).tolist())
    breasts = []
    for i, patient in enumerate(patients):
        cancer_side = str(rng.choice(["L", "R"])) if i in cancer_patients else None
        for side in ("L", "R"):
            breasts.append(_make_breast(rng, patient, side, side == cancer_side))
    return breasts


def _make_breast(rng: np.random.Generator, patient: _Patient, side: str, cancer: bool) -> _Breast:
    """Draw labels, findings, geometry and views of one breast, Kaggle-style."""
    site1 = patient.machine.site_id == 1
    if cancer:
        birads, biopsy, invasive, difficult = 0.0, 1, int(rng.random() < 0.7), False
    else:
        birads = float(rng.choice([0.0, 1.0, 2.0], p=(0.12, 0.6, 0.28)))
        biopsy = int(birads == 0.0 and rng.random() < 0.4)
        invasive, difficult = 0, birads == 0.0
    lesions = _draw_lesions(rng, cancer, suspicious=birads != 1.0)
    views = ("CC", "MLO")
    if rng.random() < 0.12:
        views += (str(rng.choice(_EXTRA_VIEWS, p=_EXTRA_VIEW_P)),)
    return _Breast(
        patient_id=patient.patient_id,
        laterality=side,
        cancer=int(cancer),
        biopsy=biopsy,
        invasive=invasive,
        birads=birads if site1 else float("nan"),  # site 2 reports no BIRADS, as on Kaggle
        difficult_negative=difficult,
        depth=float(rng.uniform(0.55, 0.85)),
        half_height=float(rng.uniform(0.34, 0.42)),
        centre=float(rng.uniform(0.46, 0.54)),
        density=patient.density,
        lesions=lesions,
        views=views,
    )


def _draw_lesions(
    rng: np.random.Generator, cancer: bool, suspicious: bool
) -> tuple[_Lesion, ...]:
    """Cancer breasts get a spiculated mass; others sometimes benign masses or calcifications."""
    lesions = []
    if cancer:
        lesions.append(_Lesion("cancer", *_lesion_site(rng), float(rng.uniform(0.06, 0.10))))
    benign_p = 0.3 if suspicious and not cancer else 0.06
    if rng.random() < benign_p:
        lesions.append(_Lesion("benign", *_lesion_site(rng), float(rng.uniform(0.03, 0.055))))
    if rng.random() < (0.3 if suspicious else 0.06):
        lesions.append(_Lesion("calcs", *_lesion_site(rng), float(rng.uniform(0.025, 0.045))))
    return tuple(lesions)


def _lesion_site(rng: np.random.Generator) -> tuple[float, float]:
    """Breast-relative (rho, psi) well inside the breast, away from the skin line."""
    return float(rng.uniform(0.25, 0.6)), float(rng.uniform(-1.0, 1.0))


def _hard_case_kinds(rng: np.random.Generator, n_images: int, rate: float) -> list[str | None]:
    """Hard-case kind per image: ``ceil(rate * n_images)`` images drawn at random, kinds in turn."""
    kinds: list[str | None] = [None] * n_images
    n_hard = math.ceil(round(rate * n_images, 6))  # so that 0.1 * 30 images gives 3, not 4
    for i, index in enumerate(rng.permutation(n_images)[:n_hard]):
        kinds[index] = HARD_CASE_KINDS[i % len(HARD_CASE_KINDS)]
    return kinds


def _count_views(breasts: list[_Breast]) -> int:
    """Number of images the breasts produce."""
    return sum(len(b.views) for b in breasts)


def _image_rows(
    patients: list[_Patient], breasts: list[_Breast], image_ids: np.ndarray
) -> list[dict]:
    """One CSV/DICOM row per image, ordered by patient then breast (L before R) then view."""
    by_id = {p.patient_id: p for p in patients}
    rows = []
    ids = iter(int(i) for i in image_ids)
    for breast in breasts:
        patient = by_id[breast.patient_id]
        for view in breast.views:
            rows.append(
                {
                    "site_id": patient.machine.site_id,
                    "patient_id": patient.patient_id,
                    "image_id": next(ids),
                    "laterality": breast.laterality,
                    "view": view,
                    "age": patient.age,
                    "cancer": breast.cancer,
                    "biopsy": breast.biopsy,
                    "invasive": breast.invasive,
                    "BIRADS": breast.birads,
                    "implant": patient.implant,
                    "density": patient.density if patient.density_reported else None,
                    "machine_id": patient.machine.machine_id,
                    "difficult_negative_case": breast.difficult_negative,
                    "prediction_id": f"{patient.patient_id}_{breast.laterality}",
                    "_breast": breast,
                }
            )
    return rows


def _write_csvs(out: Path, train_rows: list[dict], test_rows: list[dict]) -> dict:
    """Write train.csv, test.csv and sample_submission.csv; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    train = pd.DataFrame(train_rows, columns=list(TRAIN_COLUMNS))
    test = pd.DataFrame(test_rows, columns=list(TEST_COLUMNS))
    submission = pd.DataFrame({"prediction_id": test["prediction_id"].unique()})
    submission["cancer"] = SUBMISSION_DEFAULT
    paths = {
        "root": out,
        "train_csv": out / "train.csv",
        "test_csv": out / "test.csv",
        "sample_submission_csv": out / "sample_submission.csv",
        "train_images_dir": out / "train_images",
        "test_images_dir": out / "test_images",
    }
    train.to_csv(paths["train_csv"], index=False)
    test.to_csv(paths["test_csv"], index=False)
    submission.to_csv(paths["sample_submission_csv"], index=False)
    return paths


def _write_images(
    image_dir: Path, rows: list[dict], shape: tuple[int, int], seed: int
) -> tuple[dict[int, tuple[int, int, int]], dict[int, HardCase]]:
    """Render, encode and write one DICOM per row; return cancer mass locations and the planted
    hard cases by image id."""
    lesions, hard_cases = {}, {}
    for row in rows:
        rng = np.random.default_rng([seed, row["image_id"]])
        machine = _MACHINE_BY_ID[row["machine_id"]]
        image, cancer_at = _render_image(rng, shape, row["_breast"], row["view"])
        hard_case = None
        if row["_hard_case"] is not None:
            hard_rng = np.random.default_rng([seed, row["image_id"], _HARD_CASE_STREAM])
            hard_case = _plant_hard_case(hard_rng, image, row["_hard_case"], row["laterality"])
            if hard_case is not None:
                hard_cases[row["image_id"]] = hard_case
        burned_in = rng.random() < _LABEL_RATE
        if burned_in:
            text = f"{row['laterality']} {row['view']}"
            _burn_in_label(image, text, row["laterality"], top=rng.random() < 0.5)
        if cancer_at is not None:
            lesions[row["image_id"]] = cancer_at
        stored, windows = _to_stored(image, machine)
        labelled = burned_in or (hard_case is not None and hard_case.kind == "label")
        ds = _build_dataset(row, machine, windows, labelled, shape[0], seed)
        path = image_dir / str(row["patient_id"]) / f"{row['image_id']}.dcm"
        _write_dicom(ds, stored, machine, _transfer_syntax(rng, machine), path)
    return lesions, hard_cases


# --------------------------------------------------------------------------- rendering


def _render_image(
    rng: np.random.Generator, shape: tuple[int, int], breast: _Breast, view: str
) -> tuple[np.ndarray, tuple[int, int, int] | None]:
    """Render one view in display space (0 = background, 1 = densest) with the chest wall at the
    left edge, then mirror right breasts so their chest wall sits on the right edge.

    Returns:
        (float32 image, (row, col, radius) of the cancer mass or None).
    """
    rows, cols = shape
    a, b, cy = breast.depth * cols, breast.half_height * rows, breast.centre * rows
    oblique = view != "CC"
    if oblique:  # oblique views: breast pulled down and taller, pectoral muscle on top
        cy, b = cy + 0.06 * rows, b * 1.08
    yy, xx = _coarse_grid(shape)
    r = _upsample(_elliptic_radius(rng, xx / a, (yy - cy) / b), shape)
    u = np.arange(cols, dtype=np.float32)[None, :] / a
    mask = np.clip((1.0 - r) * 60.0, 0.0, 1.0)
    image = _parenchyma(rng, shape, u, r, breast.density)
    if oblique:
        pectoral = _pectoral(rng, shape, a)
        muscle = 0.8 + 0.04 * smooth_noise(rng, shape, 8)
        image = image * (1.0 - pectoral) + muscle * pectoral
        mask = np.maximum(mask, pectoral)
    image *= mask
    cancer_at = None
    for lesion in breast.lesions:
        x = a * lesion.rho * np.cos(lesion.psi)
        y = cy + b * lesion.rho * np.sin(lesion.psi)
        radius = lesion.size * 2.0 * b
        if lesion.kind == "cancer":
            _add_spiculated_mass(rng, image, mask, y, x, radius)
            cancer_at = (round(y), round(x), round(radius))
        elif lesion.kind == "benign":
            _add_round_mass(image, mask, y, x, radius)
        else:
            _add_calcifications(rng, image, y, x, radius)
    image += mask * (0.006 * rng.standard_normal(shape, dtype=np.float32))
    image = np.clip(image, 0.0, 1.0)
    if breast.laterality == "R":
        image = np.ascontiguousarray(image[:, ::-1])
        if cancer_at is not None:
            cancer_at = (cancer_at[0], cols - 1 - cancer_at[1], cancer_at[2])
    return image, cancer_at


def _coarse_grid(shape: tuple[int, int], factor: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Full-resolution (y, x) coordinates of a grid ``factor`` times coarser, placed so that
    ``_upsample`` of a field sampled on it is exact for linear fields. Smooth geometry is
    computed there to keep rendering fast."""
    rows, cols = shape
    small_rows, small_cols = -(-rows // factor), -(-cols // factor)
    y = (np.arange(small_rows, dtype=np.float32) + 0.5) * rows / small_rows - 0.5
    x = (np.arange(small_cols, dtype=np.float32) + 0.5) * cols / small_cols - 0.5
    return y[:, None], x[None, :]


def _upsample(field: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a coarse field to ``shape``."""
    return cv2.resize(field, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def _elliptic_radius(rng: np.random.Generator, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Normalised radius of a half-ellipse on the chest wall (u, v in semi-axis units), with a
    slightly wavy outline so breasts are not perfect ellipses."""
    theta = np.arctan2(v, u)
    k = np.arange(2, 5, dtype=np.float32)
    amp = rng.uniform(0.01, 0.035, 3).astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, 3).astype(np.float32)
    wobble = (amp * np.sin(k * theta[..., None] + phase)).sum(-1)
    return np.hypot(u, v) * (1.0 + wobble)


def _parenchyma(
    rng: np.random.Generator, shape: tuple[int, int], u: np.ndarray, r: np.ndarray, density: str
) -> np.ndarray:
    """Fat background plus fibroglandular tissue (denser near the chest wall), thinning towards
    the skin, with a faint skin line. The smooth gland field is computed at half resolution."""
    half = (max(2, shape[0] // 2), max(2, shape[1] // 2))
    texture = (
        0.6 * smooth_noise(rng, half, 6)
        + 0.3 * smooth_noise(rng, half, 16)
        + 0.15 * smooth_noise(rng, half, 48)
    )
    gland = _upsample(1.0 / (1.0 + np.exp(-2.5 * (texture + _DENSITY_BIAS[density]))), shape)
    near_wall = np.clip(1.1 - 0.8 * u, 0.0, 1.0) * np.clip((1.0 - r) * 4.0, 0.0, 1.0)
    tissue = 0.5 + 0.32 * gland * near_wall
    thickness = 0.8 + 0.2 * np.sqrt(np.clip(1.0 - r * r, 0.0, 1.0))
    skin = 0.12 * np.exp(-(((r - 0.985) / 0.01) ** 2))
    return tissue * thickness + skin


def _pectoral(rng: np.random.Generator, shape: tuple[int, int], a: float) -> np.ndarray:
    """Soft-edged pectoral muscle triangle in the top chest-wall corner of oblique views."""
    rows, cols = shape
    width = a * rng.uniform(0.3, 0.45)
    height = rows * rng.uniform(0.35, 0.5)
    x = np.arange(cols, dtype=np.float32)[None, :] / width
    y = np.arange(rows, dtype=np.float32)[:, None] / height
    return np.clip((1.0 - x - y) * 25.0, 0.0, 1.0)


def _patch(
    image: np.ndarray, y: float, x: float, half: float
) -> tuple[slice, slice, np.ndarray, np.ndarray]:
    """Slices of a square window around (y, x) clipped to the image, and the offsets in it."""
    rows, cols = image.shape
    y0, y1 = max(0, int(y - half)), min(rows, int(y + half) + 1)
    x0, x1 = max(0, int(x - half)), min(cols, int(x + half) + 1)
    dy = np.arange(y0, y1, dtype=np.float32)[:, None] - y
    dx = np.arange(x0, x1, dtype=np.float32)[None, :] - x
    return slice(y0, y1), slice(x0, x1), dy, dx


def _add_spiculated_mass(
    rng: np.random.Generator,
    image: np.ndarray,
    mask: np.ndarray,
    y: float,
    x: float,
    radius: float,
) -> None:
    """Blend in a bright, irregular core with radiating tapered spicules (the cancer signal)."""
    sy, sx, dy, dx = _patch(image, y, x, 2.6 * radius)
    dist = np.hypot(dy, dx)
    theta = np.arctan2(dy, dx)
    k = np.arange(1, 5, dtype=np.float32)
    amp = rng.uniform(0.03, 0.1, 4).astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, 4).astype(np.float32)
    edge = radius * (1.0 + (amp * np.sin(k * theta[..., None] + phase)).sum(-1))
    shape = 1.0 / (1.0 + np.exp((dist - edge) / (0.1 * radius)))
    centre = np.array([x - sx.start, y - sy.start])
    n = int(rng.integers(8, 15))
    for angle, length in zip(rng.uniform(0, 2 * np.pi, n), radius * rng.uniform(1.6, 2.5, n)):
        direction = np.array([np.cos(angle), np.sin(angle)])
        normal = np.array([-direction[1], direction[0]]) * max(1.0, 0.12 * radius)
        triangle = np.stack([centre + normal, centre - normal, centre + direction * length])
        spicule = np.zeros_like(shape)
        cv2.fillConvexPoly(spicule, np.rint(triangle * 16).astype(np.int32), 0.8, cv2.LINE_AA, 4)
        np.maximum(shape, spicule, out=shape)
    shape *= mask[sy, sx]
    image[sy, sx] += (0.97 - image[sy, sx]) * shape * 0.92


def _add_round_mass(image: np.ndarray, mask: np.ndarray, y: float, x: float, radius: float) -> None:
    """Blend in a smooth, round, moderately dense benign mass."""
    sy, sx, dy, dx = _patch(image, y, x, 2.0 * radius)
    shape = np.exp(-((np.hypot(dy, dx) / radius) ** 4)) * mask[sy, sx]
    image[sy, sx] += (0.78 - image[sy, sx]) * shape * 0.8


def _add_calcifications(
    rng: np.random.Generator, image: np.ndarray, y: float, x: float, radius: float
) -> None:
    """Draw a cluster of tiny bright specks."""
    n = int(rng.integers(5, 16))
    centres = rng.normal(0.0, radius / 2.0, (n, 2)) + (y, x)
    for cy, cx in centres:
        cv2.circle(image, (round(cx), round(cy)), int(rng.integers(0, 2)), 0.95, -1)


def _burn_in_label(image: np.ndarray, text: str, laterality: str, top: bool) -> None:
    """Stamp a bright label box with dark text in a background corner (away from the chest wall)."""
    rows, cols = image.shape
    height, width = max(8, round(0.05 * rows)), max(24, round(0.16 * cols))
    y0 = round(0.02 * rows) if top else rows - height - round(0.02 * rows)
    x0 = cols - width - round(0.02 * cols) if laterality == "L" else round(0.02 * cols)
    _stamp_label(image, text, (y0, y0 + height, x0, x0 + width))


def _stamp_label(image: np.ndarray, text: str, box: Box) -> None:
    """Fill ``box`` with a bright label holding dark text."""
    y0, y1, x0, x1 = box
    height = y1 - y0
    ink = np.zeros((height, x1 - x0), np.uint8)  # OpenCV 5 only draws text on 8-bit images
    scale = cv2.getFontScaleFromHeight(cv2.FONT_HERSHEY_SIMPLEX, max(6, round(0.6 * height)))
    cv2.putText(ink, text, (2, round(0.8 * height)), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, 1)
    image[y0:y1, x0:x1] = np.where(ink > 0, 0.1, 0.9)


# --------------------------------------------------------------------------- hard cases


def _plant_hard_case(
    rng: np.random.Generator, image: np.ndarray, kind: str, laterality: str
) -> HardCase | None:
    """Draw one hard case for breast cropping into ``image`` (in place).

    The planters work with the chest wall on the left, on a mirrored view of right breasts.

    Returns:
        Where the breast and the planted structures are, or None if there was no room for them.
    """
    cols = image.shape[1]
    view = image if laterality == "L" else image[:, ::-1]
    if kind == "frame":
        _cut_film_edge(rng, view)
    breast = _bounding_box(view > 0)
    artifacts = _PLANTERS[kind](rng, view, breast)
    if not artifacts:
        return None
    if laterality == "R":  # back to the stored orientation
        breast, artifacts = _mirror_box(breast, cols), [_mirror_box(box, cols) for box in artifacts]
    return HardCase(kind, breast, tuple(artifacts))


def _bounding_box(mask: np.ndarray) -> Box:
    """(y0, y1, x0, x1), end-exclusive, of the True pixels of a non-empty mask."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _mirror_box(box: Box, cols: int) -> Box:
    """The box of the left-right mirrored image."""
    y0, y1, x0, x1 = box
    return y0, y1, cols - x1, cols - x0


def _plant_label(rng: np.random.Generator, view: np.ndarray, breast: Box) -> list[Box]:
    """A film label (bright block, dark text) a small gap beyond the nipple, above or below the
    breast, wherever it fits; nothing if it fits nowhere."""
    rows, cols = view.shape
    height, width = max(8, round(0.04 * rows)), max(24, round(0.1 * cols))
    gap, pad = max(3, round(0.04 * cols)), max(2, round(0.015 * cols))
    y0, y1, x0, x1 = breast
    spots = []
    if x1 + gap + width + pad <= cols and y1 - y0 >= height:  # beyond the nipple
        top = int(rng.integers(y0, y1 - height + 1))
        spots.append((top, x1 + gap))
    for top in (y0 - gap - height, y1 + gap):  # above, below
        if pad <= top <= rows - pad - height and x1 - x0 >= width:
            spots.append((top, int(rng.integers(x0, x1 - width + 1))))
    if not spots:
        return []
    top, left = spots[int(rng.integers(len(spots)))]
    box = (top, top + height, left, left + width)
    _stamp_label(view, str(rng.choice(_FILM_LABELS)), box)
    return [box]


def _cut_film_edge(rng: np.random.Generator, view: np.ndarray) -> None:
    """Blacken a thin strip at the chest wall: the scanned film ends a little inside the image,
    so the breast no longer touches the image edge."""
    view[:, : max(1, round(rng.uniform(0.005, 0.02) * view.shape[1]))] = 0.0


def _plant_frame(rng: np.random.Generator, view: np.ndarray, breast: Box) -> list[Box]:
    """Bright bands of a scanned film's unexposed border along the top, bottom and far edge,
    a little inside the image edge (the chest-wall side is cut by ``_cut_film_edge``)."""
    rows, cols = view.shape
    offset_y, offset_x = (round(rng.uniform(0.0, 0.01) * n) for n in (rows, cols))
    band_y, band_x = (max(2, round(rng.uniform(0.012, 0.025) * n)) for n in (rows, cols))
    far = cols - offset_x
    boxes = [
        (offset_y, offset_y + band_y, 0, far),
        (rows - offset_y - band_y, rows - offset_y, 0, far),
        (offset_y, rows - offset_y, far - band_x, far),
    ]
    value = rng.uniform(0.85, 0.95)
    for y0, y1, x0, x1 in boxes:
        view[y0:y1, x0:x1] = value
    return boxes


def _plant_ruler(rng: np.random.Generator, view: np.ndarray, breast: Box) -> list[Box]:
    """A bright ruler with dark tick marks along the top, bottom or far edge."""
    rows, cols = view.shape
    edge = str(rng.choice(["top", "bottom", "far"]))
    along, across = (cols, rows) if edge != "far" else (rows, cols)
    length = round(rng.uniform(0.5, 0.9) * along)
    start = int(rng.integers(0, along - length + 1))
    thickness = max(3, round(rng.uniform(0.02, 0.03) * across))
    offset = round(rng.uniform(0.0, 0.008) * across)
    ruler = np.full((thickness, length), 0.9, np.float32)
    step = max(3, round(0.02 * along))
    ruler[: thickness // 2, ::step] = 0.15  # ticks from the outer side
    if edge == "top":
        box = (offset, offset + thickness, start, start + length)
    elif edge == "bottom":
        box, ruler = (rows - offset - thickness, rows - offset, start, start + length), ruler[::-1]
    else:
        box, ruler = (start, start + length, cols - offset - thickness, cols - offset), ruler[::-1].T
    view[box[0] : box[1], box[2] : box[3]] = ruler
    return [box]


def _plant_other_breast(rng: np.random.Generator, view: np.ndarray, breast: Box) -> list[Box]:
    """The edge of the other breast against the far edge: a second, separate bright region."""
    rows, cols = view.shape
    gap = max(3, round(0.04 * cols))
    depth = min(rng.uniform(0.05, 0.1) * cols, cols - breast[3] - gap)
    if depth < 3:
        return []
    half_height, centre = rng.uniform(0.2, 0.35) * rows, rng.uniform(0.35, 0.65) * rows
    yy, xx = np.indices(view.shape, dtype=np.float32)
    inside = ((cols - 0.5 - xx) / depth) ** 2 + ((yy + 0.5 - centre) / half_height) ** 2 <= 1.0
    tissue = 0.55 + 0.04 * smooth_noise(rng, view.shape, 8)
    view[inside] = tissue[inside]
    return [_bounding_box(inside)]


# each takes (rng, view with the chest wall on the left, breast box) and returns the boxes it drew
_PLANTERS = {
    "label": _plant_label,
    "frame": _plant_frame,
    "ruler": _plant_ruler,
    "other_breast": _plant_other_breast,
}


# --------------------------------------------------------------------------- DICOM encoding


def _to_stored(image: np.ndarray, machine: _Machine) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Scale a display image to the machine's stored range and derive its VOI windows.

    Tissue lands in the upper part of the range and background near 0; MONOCHROME1 machines
    store the inverted values, so a correct reader must invert them back.

    Returns:
        (uint16 stored pixels, [(window centre, window width), ...] in stored units).
    """
    max_value = 2**machine.bits_stored - 1
    display = np.rint(image * max_value).astype(np.uint16)
    tissue = display[image > 0.2]
    lo, hi = np.percentile(tissue, (1, 99)) if tissue.size else (0.0, float(max_value))
    windows = [((lo + hi) / 2, (hi - lo) * 1.1), (lo + 0.6 * (hi - lo), (hi - lo) * 0.7)]
    windows = windows[: machine.n_windows]
    if machine.photometric == "MONOCHROME1":
        display = max_value - display
        windows = [(max_value - c, w) for c, w in windows]
    return display, [(int(round(c)), max(2, int(round(w)))) for c, w in windows]


def _transfer_syntax(rng: np.random.Generator, machine: _Machine) -> UID:
    """Site 1 stores JPEG 2000 Lossless; site 2 RLE Lossless and occasionally uncompressed."""
    if machine.site_id == 1:
        return JPEG2000Lossless
    return ExplicitVRLittleEndian if rng.random() < _UNCOMPRESSED_RATE_SITE2 else RLELossless


def _build_dataset(
    row: dict,
    machine: _Machine,
    windows: list[tuple[int, int]],
    burned_in: bool,
    rows: int,
    seed: int,
) -> Dataset:
    """Digital Mammography (For Presentation) header matching the CSV row, without pixels.

    PatientName and PatientBirthDate hold dummy values so code that must never log them can be
    tested against a file that has them.
    """
    ds = presentation_header(
        _NAMESPACE, seed, DigitalMammographyXRayImageStorageForPresentation, "MG", row["image_id"],
        row["patient_id"], "BREAST",
    )
    ds.ManufacturerModelName = f"SYNTH-{machine.machine_id}"
    ds.PatientBirthDate = _birth_date(row["age"], row["patient_id"])
    ds.PatientSex = "F"
    ds.ImageLaterality = row["laterality"]
    ds.ViewPosition = row["view"]
    ds.BurnedInAnnotation = "YES" if burned_in else "NO"
    spacing = round(_DETECTOR_HEIGHT_MM / rows, 4)
    ds.PixelSpacing = [spacing, spacing]
    ds.ImagerPixelSpacing = [spacing, spacing]
    ds.WindowCenter = [c for c, _ in windows] if len(windows) > 1 else windows[0][0]
    ds.WindowWidth = [w for _, w in windows] if len(windows) > 1 else windows[0][1]
    if len(windows) > 1:
        ds.WindowCenterWidthExplanation = ["STANDARD", "DENSE"]
    ds.VOILUTFunction = machine.voi_function
    ds.RescaleIntercept = 0
    ds.RescaleSlope = 1
    ds.RescaleType = "US"
    return ds


def _birth_date(age: float, patient_id: int) -> str:
    """Dummy DICOM birth date consistent with the age (an arbitrary one when age is missing)."""
    years = 60 if np.isnan(age) else int(age)
    return f"{2020 - years:04d}{1 + patient_id % 12:02d}{1 + patient_id % 28:02d}"


def _write_dicom(
    ds: Dataset, pixels: np.ndarray, machine: _Machine, transfer_syntax: UID, path: Path
) -> None:
    """Attach the pixels in the requested transfer syntax and write a DICOM Part 10 file
    (128-byte preamble, DICM prefix, complete file meta).

    JPEG 2000 Lossless goes through ``Dataset.compress`` (pylibjpeg-openjpeg). RLE Lossless is
    encoded here with numpy: pydicom's only RLE encoder available without the optional
    pylibjpeg-rle/gdcm packages is pure Python and takes ~1 s per 512x416 image.
    """
    ds.set_pixel_data(pixels, machine.photometric, machine.bits_stored, generate_instance_uid=False)
    if transfer_syntax == JPEG2000Lossless:
        ds.compress(JPEG2000Lossless, generate_instance_uid=False)
    elif transfer_syntax == RLELossless:
        ds.PixelData = encapsulate([_rle_encode_frame(pixels)])
        ds["PixelData"].VR = "OB"  # PS3.5 A.4: encapsulated pixel data is OB, undefined length
        ds["PixelData"].is_undefined_length = True
        ds.file_meta.TransferSyntaxUID = RLELossless
    path.parent.mkdir(parents=True, exist_ok=True)
    pydicom.dcmwrite(path, ds, enforce_file_format=True)


def _rle_encode_frame(pixels: np.ndarray) -> bytes:
    """Encode one 8- or 16-bit grayscale frame as DICOM RLE Lossless (PS3.5 Annex G).

    Vectorised PackBits: one segment per byte plane (most significant first), every row
    encoded on its own as the standard requires.

    Args:
        pixels: 2D ``uint8`` or ``uint16`` array.

    Returns:
        The RLE frame: 64-byte header followed by the segments.
    """
    planes = [pixels] if pixels.dtype == np.uint8 else [pixels >> 8, pixels & 0xFF]
    segments = [_packbits_rows(plane.astype(np.uint8)) for plane in planes]
    offsets = np.cumsum([64] + [len(seg) for seg in segments[:-1]])
    header = np.zeros(16, "<u4")
    header[0] = len(segments)
    header[1 : 1 + len(segments)] = offsets
    return header.tobytes() + b"".join(segments)


def _packbits_rows(plane: np.ndarray) -> bytes:
    """PackBits-encode each row of a uint8 plane; runs of >= 2 bytes become replicate packets,
    isolated bytes are merged into literal packets (both at most 128 bytes, never across rows).
    The segment is padded to even length."""
    cols = plane.shape[1]
    flat = plane.ravel()
    index = np.arange(flat.size)
    run_start = np.ones(flat.size, bool)
    run_start[1:] = flat[1:] != flat[:-1]
    run_start[::cols] = True
    run_first = np.flatnonzero(run_start)[np.cumsum(run_start) - 1]
    piece_start = np.flatnonzero((index - run_first) % 128 == 0)  # runs chopped at 128
    piece_len = np.diff(np.append(piece_start, flat.size))
    literal = piece_len == 1
    # literal pieces join the previous literal packet unless a row starts or it is full
    joins = literal & np.append(False, literal[:-1]) & (piece_start % cols != 0)
    group_first = np.flatnonzero(~joins)[np.cumsum(~joins) - 1]
    rank = np.arange(piece_start.size) - group_first
    new_packet = ~joins | (rank % 128 == 0)
    packet_of_piece = np.cumsum(new_packet) - 1
    packet_first = np.flatnonzero(new_packet)
    packet_literal = literal[packet_first]
    packet_count = np.diff(np.append(packet_first, piece_start.size))
    packet_size = np.where(packet_literal, 1 + packet_count, 2)
    offset = np.cumsum(packet_size) - packet_size
    out = np.zeros(int(packet_size.sum()) + int(packet_size.sum()) % 2, np.uint8)
    out[offset] = np.where(packet_literal, packet_count - 1, 257 - piece_len[packet_first])
    rank_in_packet = np.arange(piece_start.size) - packet_first[packet_of_piece]
    position = offset[packet_of_piece] + 1 + rank_in_packet
    out[position] = flat[piece_start]
    return out.tobytes()


def write_rsna_sized_set(folder: str | Path, n_images: int, source_size: tuple[int, int] | None = None) -> str:
    """At least `n_images` labelled mammograms (about 4.5 per patient, at least 8 patients for 4 folds) for the
    benchmarks, of ``source_size`` (rows, columns; default the demo's); returns the ``dataset_dir``."""
    shape = {} if source_size is None else {"image_shape": tuple(source_size)}
    write_rsna_demo(folder, n_patients=max(8, math.ceil(n_images / 4)), positive_rate=0.1, n_test_patients=0, **shape)
    return str(folder)
