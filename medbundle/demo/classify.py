"""Synthetic image classification data set in each layout the classify bundle reads (label CSV or class folders).

Why: the classify bundle, its layout detection, folds and tests need data sets with the quirks of real
ones users bring: a label CSV with relative paths and patient ids, or class folders with or without fixed
train/val/test splits; images of varied sizes stored as 8- and 16-bit PNG, JPEG (grey saved as RGB too),
TIFF and DICOM (grey) or as colour photographs; two classes or several. Each class has its own sign, drawn
at a random place and size on a randomly textured round field of view (as a fundus or dermoscopy photograph,
or a microscope field), so a small network learns it in minutes on a CPU:

- ``benign`` / ``clear``: the background only (faint texture, a few tiny specks);
- ``malignant`` / ``nodule``: one bright, round blob;
- ``streaks``: several thin bright lines;
- ``ring``: a bright ring with a dark centre;
- ``dots``: many small bright dots;
- ``patch``: a dark, irregular patch.

Layouts written under ``out``:

- ``"csv"``: ``images/<patient_id>/<name>.<ext>``, ``labels.csv`` (image relative to ``out``, label,
  patient_id) and, for ``n_test`` more patients, ``test.csv`` (the same columns, a held-out set);
- ``"folders"``: ``<class>/<name>.<ext>`` (the bundle draws K folds over them);
- ``"split_folders"``: ``{train,val,test}/<class>/<name>.<ext>`` (70 / 20 / 10 % of each class's
  patients, at least one in train and val; the fixed split).

Each patient has 1-3 images, all of one class. Nothing identifies a person: patient ids are random numbers
and DICOMs carry a dummy patient name.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pydicom
from pydicom.uid import SecondaryCaptureImageStorage

from medbundle.demo.dicom_header import presentation_header
from medbundle.demo.texture import smooth_noise

__all__ = ["BINARY_CLASSES", "CLASSES", "LAYOUTS", "write_classify_demo"]

#: the two classes of a binary demo, in label order (alphabetical: the positive class is the second)
BINARY_CLASSES = ("benign", "malignant")
#: the classes of a multi-class demo; the first ``n_classes`` are written
CLASSES = ("clear", "nodule", "streaks", "ring", "dots", "patch")
LAYOUTS = ("csv", "folders", "split_folders")
GREY_FORMATS = ("png8", "png16", "jpeg", "jpeg_rgb", "tiff", "dicom")
COLOUR_FORMATS = ("png8", "jpeg", "tiff")
_SPLIT_SHARES = (("train", 0.7), ("val", 0.2), ("test", 0.1))
_NAMESPACE = "medbundle-classify-demo"  # hashed into every UID


def write_classify_demo(
    out: str | Path,
    n_patients: int = 60,
    n_classes: int = 2,
    layout: str = "csv",
    n_test: int = 10,
    color: bool = False,
    seed: int = 0,
    size_range: tuple[int, int] = (64, 128),
) -> dict:
    """Write a synthetic classification data set of `n_classes` classes in `layout`.

    Output is fully determined by the arguments (same files, same bytes for the same seed). Patients are
    spread evenly over the classes, every storage format once per class where it has enough images.

    Args:
        out: directory to write into (created if needed).
        n_patients: patients of the labelled set (split folders: of all splits); at least 2 per class.
        n_classes: 2 (``benign``/``malignant``, one sigmoid output) or 3 to 6 (the first of :data:`CLASSES`).
        layout: ``"csv"``, ``"folders"`` or ``"split_folders"`` (see the module docstring).
        n_test: patients of the held-out ``test.csv`` (csv layout only; 0 writes none).
        color: colour photographs (PNG, JPEG, TIFF) instead of grey images (PNG, JPEG, TIFF, DICOM).
        seed: random seed.
        size_range: smallest and largest image side in pixels.

    Returns:
        Summary dict: ``root``, ``layout``, ``class_names`` (in the bundle's label order), ``n_images``,
        ``n_patients``, ``formats`` (images per storage format), ``lesions`` (``{image: (row, col, radius)}`` in
        pixels of the written image, of each ``malignant`` / ``nodule`` blob, e.g. to check that an explanation
        map points at it) and, for the csv layout, ``labels_csv`` (and ``test_csv``).
    """
    names = _check_args(n_patients, n_classes, layout, n_test, size_range)
    out = Path(out)
    rng = np.random.default_rng(seed)
    records = _plan(rng, names, n_patients, layout, n_test, color)
    lesions = {}
    for index, record in enumerate(records):
        image_rng = np.random.default_rng([seed, index])
        image, lesion = _render(image_rng, _shape(image_rng, size_range), record["label"], color)
        if lesion is not None:
            lesions[record["image"]] = lesion
        path = out / record["image"]
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_image(image_rng, image, record, path, seed)
    summary: dict = {"root": out, "layout": layout, "class_names": sorted(names)}
    if layout == "csv":
        for split, key in (("train", "labels_csv"), ("test", "test_csv")):
            rows = [record for record in records if record["split"] == split]
            if rows:
                summary[key] = out / f"{'labels' if split == 'train' else 'test'}.csv"
                pd.DataFrame(rows, columns=["image", "label", "patient_id"]).to_csv(summary[key], index=False)
    summary |= {
        "n_images": len(records),
        "n_patients": len({record["patient_id"] for record in records}),
        "formats": {name: sum(record["format"] == name for record in records) for name in sorted({r["format"] for r in records})},
        "lesions": lesions,
    }
    return summary


def _check_args(n_patients: int, n_classes: int, layout: str, n_test: int, size_range: tuple[int, int]) -> tuple[str, ...]:
    """The class names, after rejecting arguments that cannot produce a usable data set."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {list(LAYOUTS)}, got {layout!r}")
    if not 2 <= n_classes <= len(CLASSES):
        raise ValueError(f"n_classes must be in [2, {len(CLASSES)}], got {n_classes}")
    if n_patients < 2 * n_classes:
        raise ValueError(f"n_patients must be >= 2 per class ({2 * n_classes}), got {n_patients}")
    if n_test < 0:
        raise ValueError(f"n_test must be >= 0, got {n_test}")
    low, high = size_range
    if not 32 <= low < high:
        raise ValueError(f"size_range must be (low, high) with 32 <= low < high, got {size_range}")
    return BINARY_CLASSES if n_classes == 2 else CLASSES[:n_classes]


def _plan(
    rng: np.random.Generator, names: tuple[str, ...], n_patients: int, layout: str, n_test: int, color: bool
) -> list[dict]:
    """One record per image: split, class, patient, storage format and path relative to ``out``."""
    formats_of = COLOUR_FORMATS if color else GREY_FORMATS
    numbers = iter(rng.choice(np.arange(100000, 1000000), 4 * (n_patients + n_test), replace=False).tolist())
    patient_numbers = iter(rng.choice(np.arange(10000, 100000), n_patients + n_test, replace=False).tolist())
    records = []
    for k, label in enumerate(names):
        count = n_patients // len(names) + (k < n_patients % len(names))
        test = n_test // len(names) + (k < n_test % len(names)) if layout == "csv" else 0
        splits = _splits(count, layout) + ["test"] * test
        sizes = rng.integers(1, 4, len(splits))
        formats = list(formats_of) + [str(f) for f in rng.choice(formats_of, max(0, int(sizes.sum()) - len(formats_of)))]
        formats = [str(f) for f in rng.permutation(formats)]
        for split, size in zip(splits, sizes):
            patient_id = f"P{next(patient_numbers)}"
            for _ in range(size):
                image_format = formats.pop()
                suffix = {"jpeg": ".jpg", "jpeg_rgb": ".jpeg", "tiff": ".tif", "dicom": ".dcm"}.get(image_format, ".png")
                name = f"img_{next(numbers)}{suffix}"
                folder = {"csv": f"images/{patient_id}", "folders": label, "split_folders": f"{split}/{label}"}[layout]
                records.append({"image": f"{folder}/{name}", "label": label, "patient_id": patient_id,
                                "split": split, "format": image_format})  # fmt: skip
    return records


def _splits(count: int, layout: str) -> list[str]:
    """The split of each of a class's `count` patients: all "train", or 70/20/10 % with one each in train and val."""
    if layout != "split_folders":
        return ["train"] * count
    val = max(1, round(count * _SPLIT_SHARES[1][1]))
    test = min(count - val - 1, round(count * _SPLIT_SHARES[2][1]))
    return ["train"] * (count - val - test) + ["val"] * val + ["test"] * test


def _shape(rng: np.random.Generator, size_range: tuple[int, int]) -> tuple[int, int]:
    """Random (rows, columns) within `size_range`, within 25 % of square."""
    low, high = size_range
    rows = int(rng.integers(low, high + 1))
    return rows, int(np.clip(round(rows * rng.uniform(0.8, 1.25)), low, high))


# --------------------------------------------------------------------------- rendering


def _render(
    rng: np.random.Generator, shape: tuple[int, int], label: str, color: bool
) -> tuple[np.ndarray, tuple[float, float, float] | None]:
    """The image in display space, float32 in [0, 1]: (H, W) grey or (H, W, 3) RGB, and the (row, col, radius)
    of its blob for the classes that have one.

    A round field of view with a smooth texture, the class's sign on it, a random exposure; colour images tint
    the background (reddish, as a fundus or skin) and draw the sign in its own hue.
    """
    rows, cols = shape
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    cy, cx = rows * rng.uniform(0.45, 0.55), cols * rng.uniform(0.45, 0.55)
    radius = min(rows, cols) * rng.uniform(0.42, 0.5)
    field = 1.0 / (1.0 + np.exp(np.clip((np.hypot(yy - cy, xx - cx) - radius) / 2.0, -30, 30)))
    background = field * (0.35 + 0.08 * smooth_noise(rng, shape, 6) + 0.03 * smooth_noise(rng, shape, 20))
    sign = np.zeros(shape, np.float32)
    lesion = _SIGNS[label](rng, sign, (cy, cx, radius), yy, xx)
    sign *= field
    if color:
        tint = np.array([rng.uniform(0.85, 1.0), rng.uniform(0.45, 0.6), rng.uniform(0.3, 0.45)], np.float32)
        hue = np.array([1.0, 0.95, 0.35] if label != "patch" else [0.6, 0.3, 0.2], np.float32)
        image = background[..., None] * 2.0 * tint + sign[..., None] * hue
    else:
        image = background + sign
    image = image * rng.uniform(0.85, 1.1) + rng.uniform(0.0, 0.05)
    image += rng.uniform(0.005, 0.015) * rng.standard_normal(image.shape, dtype=np.float32)
    return np.clip(image, 0.0, 1.0).astype(np.float32), lesion


def _point(rng: np.random.Generator, disc: tuple[float, float, float], spread: float = 0.6) -> tuple[float, float]:
    """A random point inside the field of view, at most `spread` of its radius from the centre."""
    cy, cx, radius = disc
    angle, distance = rng.uniform(0, 2 * np.pi), radius * spread * np.sqrt(rng.uniform())
    return cy + distance * np.sin(angle), cx + distance * np.cos(angle)


def _specks(rng: np.random.Generator, sign: np.ndarray, disc: tuple, yy: np.ndarray, xx: np.ndarray, count: int,
            strength: float, size: float) -> None:  # fmt: skip
    for _ in range(count):
        y, x = _point(rng, disc, 0.85)
        r = disc[2] * size * rng.uniform(0.7, 1.3)
        sign += strength * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * r * r))


def _sign_clear(rng: np.random.Generator, sign: np.ndarray, disc: tuple, yy: np.ndarray, xx: np.ndarray) -> None:
    """The background only, with a few faint specks every class has."""
    _specks(rng, sign, disc, yy, xx, int(rng.integers(1, 4)), 0.08, 0.03)


def _sign_nodule(
    rng: np.random.Generator, sign: np.ndarray, disc: tuple, yy: np.ndarray, xx: np.ndarray
) -> tuple[float, float, float]:
    """One bright round blob, a quarter to a third of the field's radius; returns its (row, col, radius)."""
    _sign_clear(rng, sign, disc, yy, xx)
    y, x = _point(rng, disc, 0.5)
    r = disc[2] * rng.uniform(0.22, 0.33)
    sign += rng.uniform(0.35, 0.5) * np.exp(-((((yy - y) ** 2 + (xx - x) ** 2) / (r * r)) ** 2))
    return float(y), float(x), float(r)


def _sign_streaks(rng: np.random.Generator, sign: np.ndarray, disc: tuple, yy: np.ndarray, xx: np.ndarray) -> None:
    """Several thin bright lines across the field."""
    layer = np.zeros(sign.shape, np.float32)
    thickness = max(1, round(disc[2] * 0.05))
    for _ in range(int(rng.integers(4, 7))):
        (y0, x0), (y1, x1) = _point(rng, disc, 0.8), _point(rng, disc, 0.8)
        cv2.line(layer, (round(x0), round(y0)), (round(x1), round(y1)), 1.0, thickness, cv2.LINE_AA)
    sign += rng.uniform(0.3, 0.4) * cv2.GaussianBlur(layer, (0, 0), 0.8)


def _sign_ring(rng: np.random.Generator, sign: np.ndarray, disc: tuple, yy: np.ndarray, xx: np.ndarray) -> None:
    """A bright ring with a darker centre."""
    y, x = _point(rng, disc, 0.4)
    r = np.hypot(yy - y, xx - x) / (disc[2] * rng.uniform(0.25, 0.35))
    sign += 0.45 * np.exp(-(((r - 1.0) / 0.22) ** 2)) - 0.12 * (r < 0.7)


def _sign_dots(rng: np.random.Generator, sign: np.ndarray, disc: tuple, yy: np.ndarray, xx: np.ndarray) -> None:
    """Many small bright dots scattered over the field."""
    _specks(rng, sign, disc, yy, xx, int(rng.integers(10, 16)), 0.4, 0.05)


def _sign_patch(rng: np.random.Generator, sign: np.ndarray, disc: tuple, yy: np.ndarray, xx: np.ndarray) -> None:
    """A dark irregular patch."""
    y, x = _point(rng, disc, 0.4)
    r = disc[2] * rng.uniform(0.3, 0.4)
    outline = np.hypot(yy - y, xx - x) / r + 0.25 * smooth_noise(rng, sign.shape, 4)
    sign -= 0.25 / (1.0 + np.exp(np.clip((outline - 1.0) * 8.0, -30, 30)))


_SIGNS = {
    "benign": _sign_clear,
    "malignant": _sign_nodule,
    "clear": _sign_clear,
    "nodule": _sign_nodule,
    "streaks": _sign_streaks,
    "ring": _sign_ring,
    "dots": _sign_dots,
    "patch": _sign_patch,
}


# --------------------------------------------------------------------------- storage


def _write_image(rng: np.random.Generator, image: np.ndarray, record: dict, path: Path, seed: int) -> None:
    """Store the image in the record's format: 8/16-bit PNG, JPEG (grey, or grey saved as RGB), TIFF or DICOM."""
    image_format = record["format"]
    if image_format == "dicom":
        _write_dicom(np.rint(image * 4095).astype(np.uint16), record, path, seed)
        return
    wide = image_format == "png16"
    pixels = np.rint(image * (65535 if wide else 255)).astype(np.uint16 if wide else np.uint8)
    if pixels.ndim == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    elif image_format == "jpeg_rgb":  # many public JPEGs are RGB with three equal channels
        pixels = cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(85, 96))] if image_format.startswith("jpeg") else []
    ok, encoded = cv2.imencode(path.suffix, pixels, params)
    if not ok:
        raise RuntimeError(f"OpenCV could not encode {path}")
    encoded.tofile(path)


def _write_dicom(pixels: np.ndarray, record: dict, path: Path, seed: int) -> None:
    """An uncompressed 12-bit MONOCHROME2 Secondary Capture file whose window spans the full range.

    PatientName holds a dummy value so code that must never log it can be tested against it.
    """
    ds = presentation_header(_NAMESPACE, seed, SecondaryCaptureImageStorage, "OT", record["image"],
                             record["patient_id"], "UNKNOWN")  # fmt: skip
    ds.set_pixel_data(pixels, "MONOCHROME2", 12, generate_instance_uid=False)
    ds.WindowCenter = 2048
    ds.WindowWidth = 4096
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
