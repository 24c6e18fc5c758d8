"""Synthetic skin-lesion data set in the exact Kaggle ISIC 2024 challenge (SLICE-3D) layout.

Why: the isic bundle, its HDF5 reader and tests need a small data set with the shape of the real
download (one HDF5 file of JPEG bytes keyed by ``isic_id``, a metadata CSV with the 55 columns
of the real file, many lesions per patient, ~0.1-1 % positives, test metadata without labels)
and a task a tiny network can learn in a few CPU epochs. Every image is a 15 mm wide crop of
skin centred on one lesion, like the 3D total-body-photography tiles of the challenge:

- skin of the patient's tone with a smooth texture, uneven lighting and sometimes hairs;
- benign lesions: round or oval, light to medium uniform brown, small;
- malignant lesions: larger, darker, with an irregular border and blue-grey, red and black
  patches (colour variegation).

A fraction of the benign lesions are atypical (a little irregular, darker, faintly variegated)
and a fraction of the malignant ones subtle, so the classes overlap. The tabular columns are
measured on the rendered image (L*a*b* inside and outside the lesion, size, eccentricity) or
drawn consistently with it; the diagnosis columns (``iddx_*``, ``lesion_id``, ``mel_*``) leak
the label exactly as they do in the real file.

Layout written under ``out``::

    train-metadata.csv      isic_id, target, patient_id, age_approx, ... (TRAIN_COLUMNS)
    train-image.hdf5        one scalar dataset per isic_id at the root: the JPEG bytes
    test-metadata.csv       TEST_COLUMNS: the train columns without the train-only ones
    test-image.hdf5
    sample_submission.csv   isic_id, target

Images are stored as on Kaggle: a fixed-length byte string (``|S<n>``) scalar, so
``h5py.File(path)[isic_id][()]`` returns ``np.bytes_`` that ``cv2.imdecode`` or
``PIL.Image.open(io.BytesIO(...))`` reads as an RGB JPEG. Rows are sorted by ``isic_id``.
Nothing identifies a person: ids are random numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import h5py
import numpy as np
import pandas as pd

from medbundle.demo.texture import smooth_noise

__all__ = ["TEST_COLUMNS", "TRAIN_COLUMNS", "TRAIN_ONLY_COLUMNS", "write_isic_demo", "write_isic_sized_set"]

TRAIN_COLUMNS = (
    "isic_id", "target", "patient_id", "age_approx", "sex", "anatom_site_general",
    "clin_size_long_diam_mm", "image_type", "tbp_tile_type", "tbp_lv_A", "tbp_lv_Aext", "tbp_lv_B",
    "tbp_lv_Bext", "tbp_lv_C", "tbp_lv_Cext", "tbp_lv_H", "tbp_lv_Hext", "tbp_lv_L", "tbp_lv_Lext",
    "tbp_lv_areaMM2", "tbp_lv_area_perim_ratio", "tbp_lv_color_std_mean", "tbp_lv_deltaA",
    "tbp_lv_deltaB", "tbp_lv_deltaL", "tbp_lv_deltaLB", "tbp_lv_deltaLBnorm", "tbp_lv_eccentricity",
    "tbp_lv_location", "tbp_lv_location_simple", "tbp_lv_minorAxisMM", "tbp_lv_nevi_confidence",
    "tbp_lv_norm_border", "tbp_lv_norm_color", "tbp_lv_perimeterMM", "tbp_lv_radial_color_std_max",
    "tbp_lv_stdL", "tbp_lv_stdLExt", "tbp_lv_symm_2axis", "tbp_lv_symm_2axis_angle", "tbp_lv_x",
    "tbp_lv_y", "tbp_lv_z", "attribution", "copyright_license", "lesion_id", "iddx_full", "iddx_1",
    "iddx_2", "iddx_3", "iddx_4", "iddx_5", "mel_mitotic_index", "mel_thick_mm",
    "tbp_lv_dnn_lesion_confidence",
)  # fmt: skip
TRAIN_ONLY_COLUMNS = (
    "target", "lesion_id", "iddx_full", "iddx_1", "iddx_2", "iddx_3", "iddx_4", "iddx_5",
    "mel_mitotic_index", "mel_thick_mm", "tbp_lv_dnn_lesion_confidence",
)  # fmt: skip
TEST_COLUMNS = tuple(c for c in TRAIN_COLUMNS if c not in TRAIN_ONLY_COLUMNS)

SUBMISSION_DEFAULT = 0.3
FIELD_OF_VIEW_MM = 15.0  # every TBP tile shows 15 x 15 mm of skin
JPEG_QUALITY = 90

# anatom_site_general -> [(tbp_lv_location, tbp_lv_location_simple), ...]; "" is a missing site
_SITES = {
    "posterior torso": [
        ("Torso Back Top Third", "Torso Back"), ("Torso Back Middle Third", "Torso Back"),
        ("Torso Back Bottom Third", "Torso Back"),
    ],
    "lower extremity": [
        ("Left Leg - Upper", "Left Leg"), ("Left Leg - Lower", "Left Leg"),
        ("Right Leg - Upper", "Right Leg"), ("Right Leg - Lower", "Right Leg"),
    ],
    "anterior torso": [
        ("Torso Front Top Half", "Torso Front"), ("Torso Front Bottom Half", "Torso Front"),
    ],
    "upper extremity": [
        ("Left Arm - Upper", "Left Arm"), ("Left Arm - Lower", "Left Arm"),
        ("Right Arm - Upper", "Right Arm"), ("Right Arm - Lower", "Right Arm"),
    ],
    "head/neck": [("Head & Neck", "Head & Neck")],
    "": [("Unknown", "Unknown")],
}  # fmt: skip
_SITE_P = (0.3, 0.25, 0.22, 0.17, 0.045, 0.015)
_SOURCES = (  # (attribution, copyright_license), one per patient
    ("Memorial Sloan Kettering Cancer Center", "CC-BY"),
    ("Department of Dermatology, Hospital Clínic de Barcelona", "CC-BY-NC"),
    ("University Hospital of Basel", "CC-BY-NC"),
    ("Frazer Institute, The University of Queensland, Dermatology Research Centre", "CC-BY"),
    ("ACEMID MIA", "CC0"),
    ("ViDIR Group, Department of Dermatology, Medical University of Vienna", "CC-BY-NC"),
    ("FNQH Cairns", "CC-BY"),
)
_SOURCE_P = (0.32, 0.26, 0.2, 0.1, 0.05, 0.04, 0.03)
# (iddx_full, share); the first level is iddx_1 and decides the target
_MALIGNANT_DX = (
    ("Malignant::Malignant adnexal epithelial proliferations - Follicular::Basal cell carcinoma", 0.45),
    ("Malignant::Malignant epidermal proliferations::Squamous cell carcinoma in situ", 0.15),
    ("Malignant::Malignant melanocytic proliferations (Melanoma)::Melanoma in situ", 0.2),
    (
        (
            "Malignant::Malignant melanocytic proliferations (Melanoma)::Melanoma Invasive"
            "::Melanoma Invasive, Superficial spreading"
        ),
        0.2,
    ),
)
_BIOPSIED_BENIGN_DX = (
    ("Benign::Benign melanocytic proliferations::Nevus", 0.55),
    ("Benign::Benign epidermal proliferations::Seborrheic keratosis", 0.25),
    ("Indeterminate::Indeterminate melanocytic proliferations::Atypical melanocytic neoplasm", 0.2),
)
_MITOTIC_INDEX = ("<1/mm^2", "1/mm^2", "2/mm^2", "3/mm^2")
_ATYPICAL_RATE = 0.15  # benign lesions that look a little malignant
_SUBTLE_RATE = 0.25  # malignant lesions that look a little benign
_HAIR_RATE = 0.3
_SQUARE_RATE = 0.6  # most real tiles are square; the rest are cut off at the edge of the capture
_LIGHT_SKIN = np.array([0.93, 0.77, 0.67], np.float32)  # RGB
_DARK_SKIN = np.array([0.52, 0.36, 0.26], np.float32)
_PIGMENTS = {  # RGB
    "light_brown": np.array([0.62, 0.42, 0.28], np.float32),
    "dark_brown": np.array([0.24, 0.14, 0.09], np.float32),
    "blue_grey": np.array([0.4, 0.44, 0.52], np.float32),
    "red": np.array([0.62, 0.32, 0.28], np.float32),
    "black": np.array([0.08, 0.06, 0.06], np.float32),
    "hair": np.array([0.16, 0.11, 0.08], np.float32),
}


@dataclass(frozen=True)
class _Patient:
    """Per-patient metadata and the skin tone every tile of the patient shares."""

    patient_id: str
    age: float
    sex: str
    tone: float  # 0 = light, 1 = dark skin
    tile_type: str
    attribution: str
    license: str


@dataclass(frozen=True)
class _Lesion:
    """What a tile shows: shape, size and colouring of the lesion (sizes in mm)."""

    kind: str  # "benign", "atypical", "malignant" or "subtle"
    long_diameter: float
    axis_ratio: float  # minor / major axis
    angle: float  # orientation of the major axis, radians
    irregularity: float  # relative amplitude of the border wobble
    darkness: float  # opacity of the pigment over the skin
    variegation: float  # 0 = uniform brown; 1 = strong blue-grey / red / black patches
    hair: bool


def write_isic_demo(
    out: str | Path,
    seed: int = 0,
    n_patients: int = 100,
    positive_rate: float = 0.01,
    n_test: int = 20,
    lesions_per_patient: tuple[int, int] = (1, 12),
    size_range: tuple[int, int] = (90, 200),
) -> dict:
    """Write a synthetic ISIC 2024 skin-lesion data set in the Kaggle layout.

    Output is fully determined by the arguments (same CSVs, same JPEG and HDF5 bytes for the
    same seed). The default writes ~650 train images in about two seconds on two CPU cores.

    Args:
        out: directory to write into (created if needed).
        seed: random seed.
        n_patients: training patients; at least 3.
        positive_rate: fraction of malignant train lesions, in (0, 1). At least 2 train lesions
            of 2 different patients are malignant whatever the rate (so stratified folds get
            positives) and at least one is benign. Test lesions are malignant at this rate.
        n_test: test images, from patients not in train; may be 0.
        lesions_per_patient: fewest and most lesions (images) of one patient, both >= 1.
        size_range: smallest and largest image side in pixels; about 40% of the images are not square.

    Returns:
        Summary dict: ``root``, ``train_csv``, ``train_hdf5``, ``test_csv``, ``test_hdf5`` and
        ``sample_submission_csv`` paths; ``n_train`` (images), ``n_positive`` (malignant train
        images), ``n_patients`` (train), ``n_test`` (images), ``n_test_patients`` and
        ``n_test_positive`` (the hidden test labels).
    """
    _check_args(n_patients, positive_rate, n_test, lesions_per_patient, size_range)
    out = Path(out)
    rng = np.random.default_rng(seed)
    low, high = lesions_per_patient
    train_counts = rng.integers(low, high + 1, n_patients).tolist()
    test_counts = []
    while sum(test_counts) < n_test:
        test_counts.append(int(rng.integers(low, high + 1)))
    if test_counts:
        test_counts[-1] -= sum(test_counts) - n_test
    n_train = sum(train_counts)
    patient_numbers = rng.choice(10**7, n_patients + len(test_counts), replace=False)
    patients = [_make_patient(rng, f"IP_{number:07d}") for number in patient_numbers.tolist()]
    image_numbers = rng.choice(10**7, n_train + n_test, replace=False).tolist()
    train_targets = _train_targets(rng, train_counts, positive_rate)
    test_targets = (rng.random(n_test) < positive_rate).astype(int).tolist()

    train_rows = _plan_rows(patients[:n_patients], train_counts, image_numbers[:n_train], train_targets)
    test_rows = _plan_rows(patients[n_patients:], test_counts, image_numbers[n_train:], test_targets)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "root": out,
        "train_csv": out / "train-metadata.csv",
        "train_hdf5": out / "train-image.hdf5",
        "test_csv": out / "test-metadata.csv",
        "test_hdf5": out / "test-image.hdf5",
        "sample_submission_csv": out / "sample_submission.csv",
    }
    _write_split(train_rows, paths["train_csv"], paths["train_hdf5"], TRAIN_COLUMNS, seed, size_range)
    _write_split(test_rows, paths["test_csv"], paths["test_hdf5"], TEST_COLUMNS, seed, size_range)
    submission = pd.DataFrame({"isic_id": sorted(row["isic_id"] for row in test_rows)})
    submission["target"] = SUBMISSION_DEFAULT
    submission.to_csv(paths["sample_submission_csv"], index=False)
    return {
        **paths,
        "n_train": n_train,
        "n_positive": sum(train_targets),
        "n_patients": n_patients,
        "n_test": n_test,
        "n_test_patients": len(test_counts),
        "n_test_positive": sum(test_targets),
    }


def _check_args(
    n_patients: int,
    positive_rate: float,
    n_test: int,
    lesions_per_patient: tuple[int, int],
    size_range: tuple[int, int],
) -> None:
    """Reject arguments that cannot produce a usable data set."""
    if n_patients < 3:
        raise ValueError(
            f"n_patients must be >= 3 (2 patients with a malignant lesion and a benign lesion), got {n_patients}"
        )
    if not 0.0 < positive_rate < 1.0:
        raise ValueError(f"positive_rate must be in (0, 1), got {positive_rate}")
    if n_test < 0:
        raise ValueError(f"n_test must be >= 0, got {n_test}")
    low, high = lesions_per_patient
    if not 1 <= low <= high:
        raise ValueError(f"lesions_per_patient must be (low, high) with 1 <= low <= high, got {lesions_per_patient}")
    low, high = size_range
    if not 32 <= low <= high:
        raise ValueError(f"size_range must be (low, high) with 32 <= low <= high, got {size_range}")


def _make_patient(rng: np.random.Generator, patient_id: str) -> _Patient:
    """Draw a patient's age, sex, skin tone, capture lighting and contributing institution."""
    source = _SOURCES[int(rng.choice(len(_SOURCES), p=_SOURCE_P))]
    return _Patient(
        patient_id=patient_id,
        age=float(5 * rng.integers(6, 18)) if rng.random() > 0.01 else float("nan"),
        sex=str(rng.choice(["male", "female"], p=(0.6, 0.4))) if rng.random() > 0.02 else "",
        tone=float(rng.beta(1.3, 2.5)),
        tile_type="3D: XP" if rng.random() < 0.7 else "3D: white",
        attribution=source[0],
        license=source[1],
    )


def _train_targets(rng: np.random.Generator, counts: list[int], positive_rate: float) -> list[int]:
    """Target per train lesion (patients in order): ``round(rate * n)`` positives, clipped to
    [2, n - 1], the first two in two different patients, the rest anywhere."""
    n_images = sum(counts)
    n_positive = min(n_images - 1, max(2, round(positive_rate * n_images)))
    starts = np.cumsum([0, *counts[:-1]])
    first_two = [int(starts[p] + rng.integers(counts[p])) for p in rng.choice(len(counts), 2, replace=False)]
    others = np.setdiff1d(np.arange(n_images), first_two)
    chosen = first_two + rng.choice(others, n_positive - 2, replace=False).tolist()
    targets = np.zeros(n_images, int)
    targets[chosen] = 1
    return targets.tolist()


def _plan_rows(patients: list[_Patient], counts: list[int], numbers: list[int], targets: list[int]) -> list[dict]:
    """One partial CSV row per image (ids, patient, label); the rest is filled in when rendering."""
    rows = []
    images = iter(zip(numbers, targets))
    for patient, count in zip(patients, counts):
        for _ in range(count):
            number, target = next(images)
            rows.append({"isic_id": f"ISIC_{number:07d}", "target": target, "_number": number, "_patient": patient})
    return rows


def _write_split(
    rows: list[dict],
    csv_path: Path,
    hdf5_path: Path,
    columns: tuple[str, ...],
    seed: int,
    size_range: tuple[int, int],
) -> None:
    """Render every row's tile, store its JPEG bytes under its isic_id and write the metadata CSV."""
    rows = sorted(rows, key=lambda row: row["isic_id"])
    with h5py.File(hdf5_path, "w") as f:
        for row in rows:
            rng = np.random.default_rng([seed, row["_number"]])
            patient = row["_patient"]
            lesion = _draw_lesion(rng, bool(row["target"]))
            image, mask = _render(rng, _shape(rng, size_range), patient, lesion)
            row.update(_metadata(rng, patient, lesion, row, image, mask))
            bgr = cv2.cvtColor(np.rint(image * 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
            ok, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            if not ok:
                raise RuntimeError(f"OpenCV could not encode {row['isic_id']} as JPEG")
            # a fixed-length byte string scalar, as in the Kaggle files; JPEG ends with FFD9, so
            # numpy's stripping of trailing NULs never shortens it
            f.create_dataset(row["isic_id"], data=np.bytes_(jpeg.tobytes()), track_times=False)
    pd.DataFrame(rows, columns=list(columns)).to_csv(csv_path, index=False)


def _shape(rng: np.random.Generator, size_range: tuple[int, int]) -> tuple[int, int]:
    """Random (rows, columns) within ``size_range``: mostly square, otherwise up to 1.3:1."""
    low, high = size_range
    rows = int(rng.integers(low, high + 1))
    if rng.random() < _SQUARE_RATE:
        return rows, rows
    return rows, int(np.clip(round(rows * rng.uniform(0.77, 1.3)), low, high))


def _draw_lesion(rng: np.random.Generator, malignant: bool) -> _Lesion:
    """Draw the look of one lesion; atypical benign and subtle malignant ones overlap."""
    if malignant:
        subtle = rng.random() < _SUBTLE_RATE
        kind = "subtle" if subtle else "malignant"
        diameter = rng.lognormal(np.log(4.5 if subtle else 6.0), 0.3)
        irregularity = rng.uniform(0.04, 0.1) if subtle else rng.uniform(0.08, 0.18)
        darkness = rng.uniform(0.5, 0.8) if subtle else rng.uniform(0.7, 0.95)
        variegation = rng.uniform(0.15, 0.45) if subtle else rng.uniform(0.45, 1.0)
    else:
        atypical = rng.random() < _ATYPICAL_RATE
        kind = "atypical" if atypical else "benign"
        diameter = rng.lognormal(np.log(4.2 if atypical else 3.2), 0.3)
        irregularity = rng.uniform(0.04, 0.1) if atypical else rng.uniform(0.0, 0.04)
        darkness = rng.uniform(0.55, 0.85) if atypical else rng.uniform(0.3, 0.7)
        variegation = rng.uniform(0.0, 0.35) if atypical else 0.0
    return _Lesion(
        kind=kind,
        long_diameter=float(np.clip(diameter, 1.2, 0.75 * FIELD_OF_VIEW_MM)),
        axis_ratio=float(rng.uniform(0.6, 1.0)),
        angle=float(rng.uniform(0, np.pi)),
        irregularity=float(irregularity),
        darkness=float(darkness),
        variegation=float(variegation),
        hair=bool(rng.random() < _HAIR_RATE),
    )


# --------------------------------------------------------------------------- rendering


def _render(
    rng: np.random.Generator, shape: tuple[int, int], patient: _Patient, lesion: _Lesion
) -> tuple[np.ndarray, np.ndarray]:
    """Render one tile: skin, lesion near the centre, hairs, camera blur and noise.

    Returns:
        (RGB float32 image in [0, 1], lesion mask in [0, 1]).
    """
    rows, cols = shape
    image = _skin(rng, shape, patient)
    px_per_mm = min(rows, cols) / FIELD_OF_VIEW_MM
    yy = np.arange(rows, dtype=np.float32)[:, None]
    xx = np.arange(cols, dtype=np.float32)[None, :]
    cy = float(rows * rng.uniform(0.44, 0.56))
    cx = float(cols * rng.uniform(0.44, 0.56))
    major = 0.5 * lesion.long_diameter * px_per_mm
    minor = major * lesion.axis_ratio
    cos, sin = float(np.cos(lesion.angle)), float(np.sin(lesion.angle))
    u = ((xx - cx) * cos + (yy - cy) * sin) / major
    v = (-(xx - cx) * sin + (yy - cy) * cos) / minor
    radius = np.hypot(u, v) / _border(rng, lesion.irregularity, np.arctan2(v, u))
    mask = 1.0 / (1.0 + np.exp(np.clip((radius - 1.0) * minor / 1.2, -30, 30)))
    pigment = _pigment(rng, shape, lesion, radius)
    opacity = (lesion.darkness * mask)[..., None]
    image = image * (1.0 - opacity) + pigment * opacity
    if lesion.hair:
        _add_hairs(rng, image)
    image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 1.1))
    image += 0.012 * rng.standard_normal(image.shape[:2], dtype=np.float32)[..., None]  # sensor noise
    return np.clip(image, 0.0, 1.0), mask.astype(np.float32)


def _border(rng: np.random.Generator, irregularity: float, theta: np.ndarray) -> np.ndarray:
    """Relative border radius at angles ``theta``: 1 plus harmonics 2-8 with amplitudes falling
    as 1/k, the largest equal to ``irregularity``. Tabulated at 720 angles to keep it fast."""
    harmonics = np.arange(2, 9, dtype=np.float32)
    amplitude = rng.uniform(0.2, 1.0, harmonics.size).astype(np.float32) / harmonics
    amplitude *= irregularity / amplitude.max()
    phase = rng.uniform(0, 2 * np.pi, harmonics.size).astype(np.float32)
    angles = np.linspace(-np.pi, np.pi, 721, dtype=np.float32)[:, None]
    table = 1.0 + (amplitude * np.sin(harmonics * angles + phase)).sum(-1)
    return table[np.rint((theta + np.pi) * (360 / np.pi)).astype(np.intp)]


def _skin(rng: np.random.Generator, shape: tuple[int, int], patient: _Patient) -> np.ndarray:
    """Skin of the patient's tone (a little varied per tile) with texture and a lighting gradient."""
    tone = np.clip(patient.tone + rng.normal(0.0, 0.04), 0.0, 1.0)
    colour = (1.0 - tone) * _LIGHT_SKIN + tone * _DARK_SKIN
    if patient.tile_type == "3D: white":  # unpolarised light: brighter, paler
        colour = 0.85 * colour + 0.12
    rows, cols = shape
    yy = np.linspace(-1.0, 1.0, rows, dtype=np.float32)[:, None]
    xx = np.linspace(-1.0, 1.0, cols, dtype=np.float32)[None, :]
    direction = rng.uniform(0, 2 * np.pi)
    light = 1.0 + rng.uniform(0.0, 0.08) * (np.cos(direction) * xx + np.sin(direction) * yy)
    light = light + 0.025 * smooth_noise(rng, shape, 4) + 0.015 * smooth_noise(rng, shape, 16)
    redness = 0.02 * smooth_noise(rng, shape, 6)
    image = colour[None, None, :] * light[..., None]
    image[..., 0] += redness
    return image.astype(np.float32)


def _pigment(rng: np.random.Generator, shape: tuple[int, int], lesion: _Lesion, radius: np.ndarray) -> np.ndarray:
    """Per-pixel RGB colour of the lesion: brown, darker to the centre, with variegation patches."""
    depth = lesion.darkness**1.5
    base = (1.0 - depth) * _PIGMENTS["light_brown"] + depth * _PIGMENTS["dark_brown"]
    centre = np.clip(1.0 - radius, 0.0, 1.0)[..., None]
    pigment = base * (0.95 - 0.15 * centre + 0.05 * smooth_noise(rng, shape, 8)[..., None])
    if lesion.variegation > 0:
        cells = max(4, round(min(shape) / 25))
        for name in ("blue_grey", "red", "black"):
            patch = np.clip(smooth_noise(rng, shape, cells) - 0.4, 0.0, 1.0)[..., None]
            weight = np.clip(lesion.variegation * patch, 0.0, 0.6)
            pigment = pigment * (1.0 - weight) + _PIGMENTS[name] * weight
    return pigment.astype(np.float32)


def _add_hairs(rng: np.random.Generator, image: np.ndarray) -> None:
    """Draw 1-6 thin dark curved hairs across the tile, in place."""
    rows, cols = image.shape[:2]
    layer = np.zeros((rows, cols), np.float32)
    t = np.linspace(0.0, 1.0, 16)[:, None]
    for _ in range(int(rng.integers(1, 7))):
        ends = rng.uniform(-0.1, 1.1, (3, 2)) * (cols, rows)
        curve = (1 - t) ** 2 * ends[0] + 2 * (1 - t) * t * ends[1] + t**2 * ends[2]
        thickness = 1 if rows < 150 or rng.random() < 0.5 else 2
        cv2.polylines(layer, [np.rint(curve).astype(np.int32)], False, 1.0, thickness, cv2.LINE_AA)
    alpha = (0.75 * layer)[..., None]
    image *= 1.0 - alpha
    image += alpha * _PIGMENTS["hair"]


# --------------------------------------------------------------------------- metadata


def _metadata(
    rng: np.random.Generator, patient: _Patient, lesion: _Lesion, row: dict, image: np.ndarray, mask: np.ndarray
) -> dict:
    """The CSV columns of one tile: patient fields, colour measured on the image, shape from the
    lesion, plausible scores, and the diagnosis columns of the train file."""
    site = str(rng.choice(list(_SITES), p=_SITE_P))
    location, simple = _SITES[site][int(rng.integers(len(_SITES[site])))]
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2Lab)
    inside, outside = lab[mask > 0.5], lab[mask < 0.05]
    if len(inside) == 0:  # a lesion thinner than a pixel: measure its centre
        inside = lab[mask >= mask.max() - 1e-6]
    (l_in, a_in, b_in), (l_out, a_out, b_out) = inside.mean(0), outside.mean(0)
    d_l, d_a, d_b = l_in - l_out, a_in - a_out, b_in - b_out
    major = lesion.long_diameter / 2
    minor = major * lesion.axis_ratio
    area = np.pi * major * minor * (1.0 + 2.0 * lesion.irregularity**2)
    perimeter = np.pi * (3 * (major + minor) - np.sqrt((3 * major + minor) * (major + 3 * minor)))
    perimeter *= 1.0 + 2.5 * lesion.irregularity
    odd = lesion.kind in ("malignant", "subtle", "atypical")
    height = {"head/neck": 1600.0, "upper extremity": 1150.0, "lower extremity": 500.0}.get(site, 1250.0)
    return {
        "patient_id": patient.patient_id,
        "age_approx": patient.age,
        "sex": patient.sex,
        "anatom_site_general": site,
        "clin_size_long_diam_mm": round(lesion.long_diameter * rng.uniform(0.95, 1.05), 2),
        "image_type": "TBP tile: close-up",
        "tbp_tile_type": patient.tile_type,
        "tbp_lv_A": round(float(a_in), 4),
        "tbp_lv_Aext": round(float(a_out), 4),
        "tbp_lv_B": round(float(b_in), 4),
        "tbp_lv_Bext": round(float(b_out), 4),
        "tbp_lv_C": round(float(np.hypot(a_in, b_in)), 4),
        "tbp_lv_Cext": round(float(np.hypot(a_out, b_out)), 4),
        "tbp_lv_H": round(float(np.degrees(np.arctan2(b_in, a_in))), 4),
        "tbp_lv_Hext": round(float(np.degrees(np.arctan2(b_out, a_out))), 4),
        "tbp_lv_L": round(float(l_in), 4),
        "tbp_lv_Lext": round(float(l_out), 4),
        "tbp_lv_areaMM2": round(float(area), 4),
        "tbp_lv_area_perim_ratio": round(float(perimeter**2 / area), 4),
        "tbp_lv_color_std_mean": round(float(inside[:, 1:].std(0).mean()), 4),
        "tbp_lv_deltaA": round(float(d_a), 4),
        "tbp_lv_deltaB": round(float(d_b), 4),
        "tbp_lv_deltaL": round(float(d_l), 4),
        "tbp_lv_deltaLB": round(float(np.hypot(d_l, d_b)), 4),
        "tbp_lv_deltaLBnorm": round(float(np.sqrt(d_l**2 + d_a**2 + d_b**2)), 4),
        "tbp_lv_eccentricity": round(float(np.sqrt(1.0 - lesion.axis_ratio**2)), 4),
        "tbp_lv_location": location,
        "tbp_lv_location_simple": simple,
        "tbp_lv_minorAxisMM": round(float(2 * minor), 4),
        "tbp_lv_nevi_confidence": round(float(100 * rng.beta(1.0, 3.0) if odd else 100 * rng.beta(4.0, 1.0)), 4),
        "tbp_lv_norm_border": round(float(np.clip(40 * lesion.irregularity + rng.normal(0, 0.8), 0, 10)), 4),
        "tbp_lv_norm_color": round(float(np.clip(7 * lesion.variegation + rng.normal(1.0, 0.8), 0, 10)), 4),
        "tbp_lv_perimeterMM": round(float(perimeter), 4),
        "tbp_lv_radial_color_std_max": round(float(inside[:, 0].std() * rng.uniform(0.4, 0.8)), 4),
        "tbp_lv_stdL": round(float(inside[:, 0].std()), 4),
        "tbp_lv_stdLExt": round(float(outside[:, 0].std()), 4),
        "tbp_lv_symm_2axis": round(float(np.clip(0.2 + 2 * lesion.irregularity + rng.normal(0, 0.08), 0, 1)), 4),
        "tbp_lv_symm_2axis_angle": int(5 * rng.integers(0, 36)),
        "tbp_lv_x": round(float(rng.normal(0, 150)), 4),
        "tbp_lv_y": round(float(height + rng.normal(0, 150)), 4),
        "tbp_lv_z": round(float(rng.normal(0, 80)), 4),
        "attribution": patient.attribution,
        "copyright_license": patient.license,
        **_diagnosis(rng, lesion, bool(row["target"]), row["_number"]),
    }


def _diagnosis(rng: np.random.Generator, lesion: _Lesion, malignant: bool, number: int) -> dict:
    """Train-only columns: malignant and atypical (biopsied) lesions get a lesion id and a full
    diagnosis; others are weakly labelled "Benign". ``iddx_1`` is "Malignant" iff target is 1."""
    if malignant:
        names, shares = zip(*_MALIGNANT_DX)
    elif lesion.kind == "atypical" or rng.random() < 0.02:
        names, shares = zip(*_BIOPSIED_BENIGN_DX)
    else:
        return {"iddx_full": "Benign", "iddx_1": "Benign", "tbp_lv_dnn_lesion_confidence": _confidence(rng, lesion)}
    full = names[int(rng.choice(len(names), p=shares))]
    levels = full.split("::")
    invasive = "Melanoma Invasive" in full
    return {
        "lesion_id": f"IL_{(7919 * number + 104729) % 10**7:07d}",  # a bijection of the image number
        "iddx_full": full,
        **{f"iddx_{k + 1}": level for k, level in enumerate(levels)},
        "mel_mitotic_index": str(rng.choice(_MITOTIC_INDEX)) if invasive else None,
        "mel_thick_mm": round(float(rng.uniform(0.2, 1.5)), 2) if invasive else None,
        "tbp_lv_dnn_lesion_confidence": _confidence(rng, lesion),
    }


def _confidence(rng: np.random.Generator, lesion: _Lesion) -> float:
    """The TBP system's lesion confidence (0-100): near 100 for clear lesions."""
    return round(float(max(0.0, 100 - rng.exponential(2.0 if lesion.darkness > 0.5 else 8.0))), 4)


def write_isic_sized_set(folder: str | Path, n_images: int, source_size: tuple[int, int] | None = (100, 200)) -> str:
    """At least `n_images` labelled lesion crops, 10 per patient, with sides in ``source_size`` (real ISIC 2024 crops:
    ~130 px JPEGs), for the benchmarks; returns the ``dataset_dir``."""
    lesions = 10
    write_isic_demo(
        folder, seed=0, n_patients=max(3, -(-n_images // lesions)), positive_rate=0.05, n_test=0,
        lesions_per_patient=(lesions, lesions), size_range=tuple(source_size or (100, 200)),
    )
    return str(folder)
