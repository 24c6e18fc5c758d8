"""rsna's breast crop per image at mammogram size, against the plain OpenCV crop of public notebooks.

The images are the shared scanned films (a dark border around each film, labels, film numbers) resized to a full
mammogram's size, and synthetic digital mammograms from the demo generator at the same size. Beside the time, each
row counts the images on which a breast was found and the median box, so a faster crop that finds less shows as such.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from medbundle.benchmarks.common import best_seconds
from medbundle.benchmarks.report import Report

FILMS = "../shared/data/mammo_films"


def plain_crop(image):
    """The crop of public RSNA notebooks: Otsu's threshold of the 8-bit image, the largest external contour, its
    bounding box, a copy of it. Returns ``(crop, box area as a fraction of the image)``."""
    import cv2
    import numpy as np

    gray = (np.clip(image[0], 0.0, 1.0) * 255).astype(np.uint8)
    mask = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)[1]
    contours = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)[0]
    x, y, w, h = cv2.boundingRect(max(contours, key=cv2.contourArea))
    return np.array(image[:, y : y + h, x : x + w]), w * h / gray.size


def _images(films: str | None, shape: tuple[int, int], demo_patients: int, work: Path) -> list[tuple[str, list]]:
    """(source name, images as (1, H, W) float32 in [0, 1] at `shape`): the films, then demo digital mammograms."""
    import cv2
    import numpy as np

    sources = []
    paths = sorted(Path(films).glob("*.png")) if films else []
    if paths:
        size = (shape[1], shape[0])
        images = [cv2.resize(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE), size, interpolation=cv2.INTER_LINEAR)
                  for p in paths]  # fmt: skip
        sources.append((f"scanned films ({Path(films).name})", [(i.astype(np.float32) / 255)[None] for i in images]))
    if demo_patients:
        from medbundle.demo import write_rsna_demo
        from medbundle.io import read_dicom

        write_rsna_demo(work, n_patients=demo_patients, n_test_patients=0, image_shape=tuple(shape))
        sources.append(("demo digital", [read_dicom(p)[0][None] for p in sorted(work.rglob("*.dcm"))]))
    return sources


def crop(
    films: str | None = FILMS,
    shape: tuple[int, int] = (3000, 2400),
    demo_patients: int = 2,
    repeats: int = 3,
    threads: int = 1,
) -> Report:
    """Time rsna's BreastCrop per image: finding the box (``locate``), and finding, cropping and blanking as
    ``train.yaml`` does (``blank_outside``); the plain reference is Otsu + largest contour + crop (`plain_crop`).

    ms per image is the mean over images of the best of `repeats` calls; ``/ plain`` is plain's time over the row's
    (above 1: faster than plain). ``found`` counts images with a breast box (plain always returns one), ``median box``
    is the median box area as a fraction of the image.

    Args:
        films: folder of the shared scanned films (PNG), resized to `shape`; None or a missing folder skips them.
        shape: (rows, columns) of every image (3000x2400: a full-field digital mammogram).
        demo_patients: synthetic demo patients (4 digital mammograms each) at `shape`; 0 for none, else at least 2.
        repeats: timed calls per image; the best counts.
        threads: OpenCV threads (1: per core, as in a DataLoader worker).
    """
    import cv2
    import numpy as np

    from medbundle.imaging import BreastCropper

    cv2.setNumThreads(threads)
    cropper = BreastCropper(blank_outside=True)
    methods: dict[str, Callable] = {  # each returns the box area as a fraction of the image, None when not found
        "plain: Otsu, largest contour, crop": lambda image: plain_crop(image)[1],
        "BreastCrop: find the box": lambda image: _area(cropper.find(image)[0], image),
        "BreastCrop: box, crop and blank (train.yaml)": lambda image: _area(_crop(cropper, image), image),
    }
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for source, images in _images(films, tuple(shape), demo_patients, Path(work)):
            plain_ms = None
            for method, run in methods.items():
                ms = 1000 * float(np.mean([best_seconds(lambda image=image: run(image), repeats) for image in images]))
                plain_ms = plain_ms or ms
                areas = [area for area in map(run, images) if area is not None]
                rows.append({"source": source, "method": method, "images": len(images), "ms": ms,
                             "over_plain": plain_ms / ms, "found": len(areas),
                             "median_box": float(np.median(areas)) if areas else None})  # fmt: skip
    return Report(
        name="crop",
        title=(f"Breast crop per {shape[0]}x{shape[1]} image, {threads} OpenCV thread(s), best of {repeats} calls per "
               "image; plain = Otsu + largest contour + crop, as public notebooks do"),
        columns=[("source", "source"), ("method", "method"), ("images", "images"), ("ms", "ms per image"),
                 ("over_plain", "/ plain"), ("found", "breast found"), ("median_box", "median box (of image)")],
        rows=rows,
        notes=["plain always returns a box, its largest Otsu region: Otsu's threshold cuts off the faint edge of the breast "
               "(a smaller median box) and takes a label when that is larger; BreastCrop keeps the whole image and "
               "says why when no breast qualifies"],
        settings={"films": films, "shape": list(shape), "demo_patients": demo_patients, "repeats": repeats,
                  "threads": threads},
    )  # fmt: skip


def _crop(cropper, image):
    """The bundle's crop: the box, then the crop and the blanking of what lies outside the breast."""
    found = cropper.find(image)[0]
    if found is not None:
        cropper.apply(image, found)
    return found


def _area(found, image) -> float | None:
    """The found box's area as a fraction of the image; None when no breast was found."""
    if found is None:
        return None
    y0, y1, x0, x1 = found.box
    return (y1 - y0) * (x1 - x0) / (image.shape[-2] * image.shape[-1])
