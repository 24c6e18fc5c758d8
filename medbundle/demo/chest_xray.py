"""Synthetic chest X-ray data set in the layout of the Kaggle "Lungs Disease Dataset" (5 classes).

Why: the chest X-ray bundle, its data loaders and tests need a small data set with the quirks of
the real download (one folder per class and split, images of varied sizes stored as 8-bit and
16-bit PNG, JPEG saved as gray or RGB, the odd DICOM, file names with spaces) and a task a small
network can learn in minutes on a CPU. Every class has its own radiological sign, drawn at a
random place and size on a randomly posed chest:

- Normal: clear lungs (faint vascular markings only).
- Bacterial Pneumonia: one dense lobar consolidation in the lower zone of one lung.
- Viral Pneumonia: diffuse bilateral interstitial streaks.
- Corona Virus Disease: bilateral, peripheral, lower-zone patchy ground-glass opacities.
- Tuberculosis: an upper-zone cavity (bright ring, dark centre) and/or upper-zone nodules.

Layout written under ``out``::

    {train,val,test}/<Class Name>/<name>.{png,jpg,jpeg,dcm}
    patients.csv        image (path relative to out), patient_id

Each patient has 1-3 images, all of one class and one split. Nothing identifies a person: patient
ids are random numbers and DICOMs carry a dummy patient name.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pydicom
from pydicom.uid import DigitalXRayImageStorageForPresentation

from medbundle.data.chest_xray import CHEST_XRAY_CLASSES
from medbundle.demo.dicom_header import presentation_header
from medbundle.demo.texture import smooth_noise

__all__ = ["write_chest_xray_demo", "write_chest_xray_sized_set"]

SPLITS = ("train", "val", "test")
FORMATS = ("png8", "png16", "png12", "jpeg", "dicom")
_FORMAT_P = (0.4, 0.12, 0.12, 0.3, 0.06)
_NAMESPACE = "medbundle-chest-xray-demo"  # hashed into every UID


def write_chest_xray_demo(
    out: str | Path,
    n_train: int = 60,
    n_val: int = 15,
    n_test: int = 6,
    seed: int = 0,
    size_range: tuple[int, int] = (160, 320),
) -> dict:
    """Write a synthetic 5-class chest X-ray data set in the Kaggle class-folder layout.

    Output is fully determined by the arguments (same files, same bytes for the same seed). Every
    class gets every storage format once it has at least ``len(FORMATS)`` images in all splits.

    Args:
        out: directory to write into (created if needed).
        n_train: training images per class; at least 1.
        n_val: validation images per class; at least 1.
        n_test: test images per class; may be 0.
        seed: random seed.
        size_range: smallest and largest image side in pixels; images are never square.

    Returns:
        Summary dict: ``root``, ``patients_csv`` and the ``train_dir``/``val_dir``/``test_dir``
        paths, ``n_train``/``n_val``/``n_test`` (images over all classes), ``n_patients`` and
        ``formats`` (images per storage format).
    """
    counts = {"train": n_train, "val": n_val, "test": n_test}
    _check_args(counts, size_range)
    out = Path(out)
    rng = np.random.default_rng(seed)
    records = _plan(rng, counts)
    for index, record in enumerate(records):
        image_rng = np.random.default_rng([seed, index])
        image = _render(image_rng, _shape(image_rng, size_range), record["class_name"])
        path = out / record["image"]
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_image(image_rng, image, record, path, seed)
    patients_csv = out / "patients.csv"
    pd.DataFrame(records, columns=["image", "patient_id"]).sort_values("image").to_csv(patients_csv, index=False)
    n_classes = len(CHEST_XRAY_CLASSES)
    return {
        "root": out,
        "patients_csv": patients_csv,
        **{f"{split}_dir": out / split for split in SPLITS},
        **{f"n_{split}": counts[split] * n_classes for split in SPLITS},
        "n_patients": len({record["patient_id"] for record in records}),
        "formats": {name: sum(record["format"] == name for record in records) for name in FORMATS},
    }


def _check_args(counts: dict[str, int], size_range: tuple[int, int]) -> None:
    """Reject arguments that cannot produce a usable data set."""
    for split in ("train", "val"):
        if counts[split] < 1:
            raise ValueError(f"n_{split} must be >= 1, got {counts[split]}")
    if counts["test"] < 0:
        raise ValueError(f"n_test must be >= 0, got {counts['test']}")
    low, high = size_range
    if not 64 <= low < high:
        raise ValueError(f"size_range must be (low, high) with 64 <= low < high, got {size_range}")


def _plan(rng: np.random.Generator, counts: dict[str, int]) -> list[dict]:
    """One record per image: split, class, patient, storage format and relative path.

    Patients group 1-3 consecutive images of one class and split. Formats: every format once per
    class (as far as the class has images), the rest drawn at ``_FORMAT_P``, shuffled over splits.
    """
    n_class = sum(counts.values())
    n_images = n_class * len(CHEST_XRAY_CLASSES)
    numbers = iter(rng.choice(np.arange(100000, 1000000), n_images, replace=False).tolist())
    patient_numbers = iter(rng.choice(np.arange(10000, 100000), n_images, replace=False).tolist())
    records = []
    for class_name in CHEST_XRAY_CLASSES:
        formats = list(FORMATS[:n_class]) + list(rng.choice(FORMATS, max(0, n_class - len(FORMATS)), p=_FORMAT_P))
        formats = [str(name) for name in rng.permutation(formats)]
        for split in SPLITS:
            remaining = 0
            for _ in range(counts[split]):
                if remaining == 0:
                    patient_id, remaining = f"P{next(patient_numbers)}", int(rng.integers(1, 4))
                remaining -= 1
                image_format = formats.pop()
                suffix = {"jpeg": str(rng.choice([".jpg", ".jpeg"])), "dicom": ".dcm"}.get(image_format, ".png")
                name = f"img_{next(numbers)}{' (1)' if rng.random() < 0.05 else ''}{suffix}"
                records.append(
                    {
                        "image": f"{split}/{class_name}/{name}",
                        "patient_id": patient_id,
                        "class_name": class_name,
                        "format": image_format,
                    }
                )
    return records


def _shape(rng: np.random.Generator, size_range: tuple[int, int]) -> tuple[int, int]:
    """Random (rows, columns) within ``size_range``, never square, mostly close to 1:1 like radiographs."""
    low, high = size_range
    rows = int(rng.integers(low, high + 1))
    cols = int(np.clip(round(rows * rng.uniform(0.8, 1.25)), low, high))
    if cols == rows:
        cols = rows - 1 if rows > low else rows + 1
    return rows, cols


# --------------------------------------------------------------------------- rendering


def _render(rng: np.random.Generator, shape: tuple[int, int], class_name: str) -> np.ndarray:
    """Render a PA chest radiograph in display space (bright = dense), float32 in [0, 1].

    The patient's left is on the image right, as on a PA film: the heart bulges to the right.
    """
    rows, cols = shape
    yy = np.arange(rows, dtype=np.float32)[:, None]
    xx = np.arange(cols, dtype=np.float32)[None, :]
    cx = cols * rng.uniform(0.47, 0.53)
    body = _soft_ellipse(yy, xx, rows * rng.uniform(0.55, 0.62), cx, rows * 0.56, cols * rng.uniform(0.42, 0.48), 4.0)
    image = 0.04 + 0.44 * body
    lungs = [_lung(rng, yy, xx, rows, cols, cx, side) for side in (-1, 1)]
    lung_mask = np.maximum(lungs[0]["mask"], lungs[1]["mask"])
    image -= 0.3 * lung_mask
    image += 0.04 * lung_mask * smooth_noise(rng, shape, 10)
    _add_mediastinum(rng, image, yy, xx, rows, cols, cx)
    _add_ribs(rng, image, body, lungs, rows, cols, cx)
    _add_markings(rng, image, lungs, rows)
    _CLASS_SIGNS[class_name](rng, image, lungs, yy, xx, rows)
    image = _pose(rng, image)
    return _expose(rng, image)


def _soft_ellipse(
    yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float, rx: float, edge: float
) -> np.ndarray:
    """Ellipse mask with a sigmoid edge ``edge`` pixels wide (1 inside, 0 outside)."""
    r = np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)
    return 1.0 / (1.0 + np.exp(np.clip((r - 1.0) * min(rx, ry) / edge, -30, 30)))


def _blob(
    yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float, rx: float, power: float
) -> np.ndarray:
    """Generalised Gaussian blob: ``power`` 1 is a soft haze, larger powers a flat-topped dense mass."""
    r2 = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
    return np.exp(-(r2**power))


def _lung(
    rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, rows: int, cols: int, cx: float, side: int
) -> dict:
    """Geometry and soft mask of one lung field: an ellipse cut by a diaphragm dome.

    ``side`` -1 is the image left (patient's right lung) and also the direction from the lung
    centre to its lateral (rib) edge. ``hilum`` is the medial (row, column) point the vessels
    and bronchi fan out from.
    """
    a = cols * rng.uniform(0.14, 0.17)
    b = rows * rng.uniform(0.27, 0.31)
    x = cx + side * cols * rng.uniform(0.18, 0.21)
    y = rows * rng.uniform(0.44, 0.48)
    mask = _soft_ellipse(yy, xx, y, x, b, a, 2.5)
    dome = y + b * (0.72 + 0.3 * ((xx - x) / a) ** 2)
    mask = mask / (1.0 + np.exp(np.clip((yy - dome) / 2.0, -30, 30)))
    if side == 1:  # the heart covers the lower medial part of the left lung
        heart = _soft_ellipse(yy, xx, y + 0.55 * b, x - 0.85 * a, 0.45 * b, 0.75 * a, 3.0)
        mask = mask * (1.0 - heart)
    hilum = (y - 0.05 * b, x - side * 0.7 * a)
    return {"x": x, "y": y, "a": a, "b": b, "side": side, "hilum": hilum, "mask": mask.astype(np.float32)}


def _add_mediastinum(
    rng: np.random.Generator, image: np.ndarray, yy: np.ndarray, xx: np.ndarray, rows: int, cols: int, cx: float
) -> None:
    """Mediastinum band, spine with vertebral bodies, heart shadow and clavicles."""
    width = cols * rng.uniform(0.06, 0.08)
    band = 1.0 / (1.0 + np.exp(np.clip((np.abs(xx - cx) - width) / 2.0, -30, 30)))
    image += 0.22 * band * (yy > rows * 0.08)
    spine = 1.0 / (1.0 + np.exp(np.clip((np.abs(xx - cx) - 0.45 * width) / 1.5, -30, 30)))
    vertebrae = 0.5 + 0.5 * np.cos(2 * np.pi * yy / (rows * rng.uniform(0.04, 0.05)))
    image += spine * (0.1 + 0.06 * vertebrae)
    heart_y, heart_x = rows * rng.uniform(0.6, 0.65), cx + cols * rng.uniform(0.04, 0.08)
    image += 0.22 * _soft_ellipse(yy, xx, heart_y, heart_x, rows * 0.13, cols * rng.uniform(0.14, 0.17), 3.0)
    clavicles = np.zeros(image.shape, np.float32)
    thickness = max(2, round(rows * 0.018))
    for side in (-1, 1):
        start = (round(cx + side * cols * 0.04), round(rows * rng.uniform(0.17, 0.2)))
        end = (round(cx + side * cols * rng.uniform(0.3, 0.36)), round(rows * rng.uniform(0.11, 0.15)))
        cv2.line(clavicles, start, end, 1.0, thickness, cv2.LINE_AA)
    image += 0.14 * cv2.GaussianBlur(clavicles, (0, 0), 1.0)


def _add_ribs(
    rng: np.random.Generator, image: np.ndarray, body: np.ndarray, lungs: list[dict], rows: int, cols: int, cx: float
) -> None:
    """Posterior rib arcs over both lung fields, drawn as thin anti-aliased elliptic arcs."""
    ribs = np.zeros(image.shape, np.float32)
    thickness = max(1, round(rows * 0.012))
    spacing = rows * rng.uniform(0.062, 0.07)
    top = rows * rng.uniform(0.16, 0.2)
    for lung in lungs:
        for k in range(9):
            centre = (round(lung["x"]), round(top + k * spacing + 0.05 * rows))
            axes = (round(lung["a"] * 1.15), round(rows * 0.06))
            cv2.ellipse(ribs, centre, axes, 0.0, 180.0, 360.0, 1.0, thickness, cv2.LINE_AA)
    image += 0.07 * cv2.GaussianBlur(ribs, (0, 0), 0.8) * body


def _add_markings(rng: np.random.Generator, image: np.ndarray, lungs: list[dict], rows: int) -> None:
    """Faint vascular markings fanning out from each hilum over the inner half of the lung (all classes)."""
    for lung in lungs:
        layer = np.zeros(image.shape, np.float32)
        hy, hx = lung["hilum"]
        for angle in rng.uniform(-np.pi, np.pi, 8):
            length = lung["a"] * rng.uniform(0.4, 0.8)
            end = (round(hx + np.cos(angle) * length), round(hy + np.sin(angle) * length))
            cv2.line(layer, (round(hx), round(hy)), end, 1.0, 1, cv2.LINE_AA)
        image += 0.05 * cv2.GaussianBlur(layer, (0, 0), 1.0) * lung["mask"]


def _sign_normal(
    rng: np.random.Generator, image: np.ndarray, lungs: list[dict], yy: np.ndarray, xx: np.ndarray, rows: int
) -> None:
    """Normal: nothing beyond the shared anatomy."""


def _sign_bacterial(
    rng: np.random.Generator, image: np.ndarray, lungs: list[dict], yy: np.ndarray, xx: np.ndarray, rows: int
) -> None:
    """Bacterial pneumonia: one dense, flat-topped lobar consolidation low in one lung, clear of the heart."""
    lung = lungs[int(rng.integers(2))]
    cy = lung["y"] + lung["b"] * rng.uniform(0.15, 0.5)
    cx = lung["x"] + lung["side"] * lung["a"] * rng.uniform(-0.1, 0.35)
    blob = _blob(yy, xx, cy, cx, lung["b"] * rng.uniform(0.3, 0.45), lung["a"] * rng.uniform(0.5, 0.8), 2.0)
    texture = 1.0 + 0.15 * smooth_noise(rng, image.shape, 12)
    image += rng.uniform(0.33, 0.45) * blob * texture * lung["mask"]


def _sign_viral(
    rng: np.random.Generator, image: np.ndarray, lungs: list[dict], yy: np.ndarray, xx: np.ndarray, rows: int
) -> None:
    """Viral pneumonia: diffuse interstitial streaks in both lungs, perihilar and scattered."""
    thickness = max(1, round(rows * 0.006))
    for lung in lungs:
        layer = np.zeros(image.shape, np.float32)
        hy, hx = lung["hilum"]
        for _ in range(int(rng.integers(14, 22))):  # radiating from the hilum
            angle = rng.uniform(-np.pi, np.pi)
            length = lung["a"] * rng.uniform(0.8, 1.6)
            end = (round(hx + np.cos(angle) * length), round(hy + np.sin(angle) * length))
            cv2.line(layer, (round(hx), round(hy)), end, 1.0, thickness, cv2.LINE_AA)
        for _ in range(int(rng.integers(20, 30))):  # a reticular net over the whole field
            y = lung["y"] + lung["b"] * rng.uniform(-0.8, 0.7)
            x = lung["x"] + lung["a"] * rng.uniform(-0.8, 0.8)
            angle, length = rng.uniform(0, np.pi), lung["a"] * rng.uniform(0.2, 0.45)
            dx, dy = np.cos(angle) * length / 2, np.sin(angle) * length / 2
            cv2.line(layer, (round(x - dx), round(y - dy)), (round(x + dx), round(y + dy)), 1.0, thickness, cv2.LINE_AA)
        image += rng.uniform(0.16, 0.22) * cv2.GaussianBlur(layer, (0, 0), 0.8) * lung["mask"]


def _sign_covid(
    rng: np.random.Generator, image: np.ndarray, lungs: list[dict], yy: np.ndarray, xx: np.ndarray, rows: int
) -> None:
    """COVID-19: bilateral patchy ground-glass haze at the lateral edges of the lower zones."""
    for lung in lungs:
        haze = np.zeros(image.shape, np.float32)
        for _ in range(int(rng.integers(3, 6))):
            cy = lung["y"] + lung["b"] * rng.uniform(-0.1, 0.65)
            cx = lung["x"] + lung["side"] * lung["a"] * rng.uniform(0.4, 0.8)
            radius = lung["a"] * rng.uniform(0.2, 0.32)
            np.maximum(haze, _blob(yy, xx, cy, cx, radius * rng.uniform(0.8, 1.3), radius, 1.0), out=haze)
        image += rng.uniform(0.22, 0.3) * haze * lung["mask"]


def _sign_tuberculosis(
    rng: np.random.Generator, image: np.ndarray, lungs: list[dict], yy: np.ndarray, xx: np.ndarray, rows: int
) -> None:
    """Tuberculosis: an upper-zone cavity (thick bright wall, dark centre) and/or upper-zone nodules."""
    cavity = rng.random() < 0.75
    sides = [int(rng.integers(2))] if rng.random() < 0.7 else [0, 1]
    for lung in (lungs[side] for side in sides):
        top = lung["y"] - lung["b"] * 0.55
        if cavity:
            cy = top + lung["b"] * rng.uniform(-0.15, 0.15)
            cx = lung["x"] + lung["a"] * rng.uniform(-0.3, 0.3)
            radius = rows * rng.uniform(0.035, 0.05)
            r = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2) / radius
            wall = np.exp(-(((r - 1.0) / 0.3) ** 2))
            lumen = 1.0 / (1.0 + np.exp(np.clip((r - 0.7) * 12.0, -30, 30)))
            image += (0.42 * wall - 0.08 * lumen) * lung["mask"]
        for _ in range(int(rng.integers(3, 7) if cavity else rng.integers(8, 14))):
            cy = top + lung["b"] * rng.uniform(-0.25, 0.35)
            cx = lung["x"] + lung["a"] * rng.uniform(-0.6, 0.6)
            radius = rows * rng.uniform(0.01, 0.018)
            image += 0.35 * _blob(yy, xx, cy, cx, radius, radius, 2.0) * lung["mask"]


_CLASS_SIGNS = {
    "Viral Pneumonia": _sign_viral,
    "Bacterial Pneumonia": _sign_bacterial,
    "Corona Virus Disease": _sign_covid,
    "Tuberculosis": _sign_tuberculosis,
    "Normal": _sign_normal,
}


def _pose(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Small random rotation (up to 5 degrees), scale and shift, as patients never stand identically."""
    rows, cols = image.shape
    centre = (cols / 2 + rng.uniform(-0.03, 0.03) * cols, rows / 2 + rng.uniform(-0.03, 0.03) * rows)
    matrix = cv2.getRotationMatrix2D(centre, rng.uniform(-5.0, 5.0), rng.uniform(0.95, 1.05))
    return cv2.warpAffine(image, matrix, (cols, rows), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _expose(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Random exposure: window to the image's own range, gamma, output range and quantum noise.

    The brightest pixels land near 1, so 12-bit files use more than half of their range.
    """
    low, high = np.percentile(image, (0.5, 99.8))
    image = np.clip((image - low) / max(high - low, 1e-3), 0.0, 1.0) ** rng.uniform(0.8, 1.25)
    image = rng.uniform(0.0, 0.06) + image * rng.uniform(0.88, 0.96)
    image += rng.uniform(0.006, 0.018) * rng.standard_normal(image.shape, dtype=np.float32)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------- storage


def _write_image(rng: np.random.Generator, image: np.ndarray, record: dict, path: Path, seed: int) -> None:
    """Store the display image in the record's format: 8/16/12-bit PNG, gray or RGB JPEG, or DICOM."""
    image_format = record["format"]
    if image_format == "dicom":
        _write_dicom(np.rint(image * 4095).astype(np.uint16), record, path, seed)
        return
    if image_format == "jpeg":
        pixels = np.rint(image * 255).astype(np.uint8)
        if rng.random() < 0.5:  # many public JPEGs are RGB with three equal channels
            pixels = cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR)
        ok, encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(85, 96))])
    else:
        max_value = {"png8": 255, "png16": 65535, "png12": 4095}[image_format]
        pixels = np.rint(image * max_value).astype(np.uint8 if max_value == 255 else np.uint16)
        ok, encoded = cv2.imencode(".png", pixels)
    if not ok:
        raise RuntimeError(f"OpenCV could not encode {path}")
    encoded.tofile(path)


def _write_dicom(pixels: np.ndarray, record: dict, path: Path, seed: int) -> None:
    """Write an uncompressed 12-bit MONOCHROME2 Digital X-Ray (For Presentation) Part 10 file.

    The window spans the full 12-bit range, so ``read_dicom`` scales like the 12-bit PNGs.
    PatientName holds a dummy value so code that must never log it can be tested against it.
    """
    ds = presentation_header(
        _NAMESPACE, seed, DigitalXRayImageStorageForPresentation, "DX", record["image"], record["patient_id"], "CHEST",
        image_type=("ORIGINAL", "PRIMARY"),
    )
    ds.ViewPosition = "PA"
    ds.set_pixel_data(pixels, "MONOCHROME2", 12, generate_instance_uid=False)
    ds.WindowCenter = 2048
    ds.WindowWidth = 4096
    ds.VOILUTFunction = "LINEAR"
    pydicom.dcmwrite(path, ds, enforce_file_format=True)


def write_chest_xray_sized_set(folder: str | Path, n_images: int, source_size: tuple[int, int] | None = None) -> str:
    """At least `n_images` labelled radiographs in the train folder (one per class in val) with sides in
    ``source_size`` (default the demo's), for the benchmarks; returns the ``dataset_dir``."""
    sizes = {} if source_size is None else {"size_range": tuple(source_size)}
    write_chest_xray_demo(folder, n_train=max(1, -(-n_images // len(CHEST_XRAY_CLASSES))), n_val=1, n_test=0, **sizes)
    return str(folder)
