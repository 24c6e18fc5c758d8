"""Preview a bundle's preprocessed images exactly as its network receives them, before training."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from medbundle.imaging.crop_summary import summarize_crops
from medbundle.visualize.montage import montage

__all__ = ["preview_bundle"]

logger = logging.getLogger(__name__)


def _caption(item: dict, class_names: Sequence[str] | None) -> str:
    label = item.get("label")
    if isinstance(label, (list, tuple)) and len(label) == 1:
        label = label[0]
    if label is not None and class_names is not None:
        label = class_names[int(label)]
    elif label is not None:
        label = f"label {float(label):g}"
    return f"{item.get('image_id', Path(str(item['image'])).stem)}  {label if label is not None else ''}".strip()


def _crop_alerts(records: Sequence[dict | None], names: Sequence[str]) -> list[str]:
    """Per image, why its crop needs a look: kept whole (and why), or a box of unusual size in the sample."""
    if not records or any(record is None for record in records):
        return [""] * len(records)
    summary = summarize_crops(records, names)
    return [
        f"kept whole: {note}" if not record["found"] else note if outlier else ""
        for record, outlier, note in zip(records, summary.outliers, summary.notes)
    ]


def _with_box(image: np.ndarray, record: dict | None) -> np.ndarray:
    """The decoded image in RGB with the crop's box drawn in green (none when the whole image was kept)."""
    grey = np.clip(np.asarray(image, dtype=np.float32)[0], 0.0, 1.0)
    rgb = np.repeat(grey[None], 3, axis=0).transpose(1, 2, 0).copy()
    if record is not None and record["found"]:
        y0, y1, x0, x1 = record["box"]
        thickness = max(2, round(max(grey.shape) / 150))
        cv2.rectangle(rgb, (int(x0), int(y0)), (int(x1) - 1, int(y1) - 1), (0.1, 0.9, 0.2), thickness)
    return rgb.transpose(2, 0, 1)


def preview_bundle(
    bundle: str | Path, dataset_dir: str | Path, n: int = 16, out: str | Path = "preview.png", seed: int = 0,
    columns: int = 4, before: bool = False, **overrides: Any,
) -> Path:
    """Write a montage of `n` training images after the bundle's deterministic preprocessing.

    The images go through the bundle's own ``validate#preprocessing`` (decode, crop, flip, resize, CLAHE:
    whatever that bundle does, without augmentation), so the picture shows what the network sees, e.g.
    whether a crop kept a film label. Each tile is captioned with the image id and its label. Where the chain
    crops the breast (rsna), a tile whose crop found no breast, or whose box is far larger or smaller than the
    others' (:func:`~medbundle.imaging.crop_summary.crop_outliers`), is framed in red with the reason.

    Args:
        bundle: the bundle folder, e.g. ``bundles/rsna``.
        dataset_dir: the data set, as the bundle's ``dataset_dir``.
        n: number of images, drawn at random (reproducibly for `seed`) from the training split.
        out: the PNG to write.
        seed: the sample's seed.
        columns: tiles per row.
        before: put each image as decoded (the crop's box drawn in green) beside what the network sees.
        overrides: further bundle settings, e.g. ``image_size=[512, 256]``.

    Returns:
        The written file.
    """
    from monai.bundle import ConfigParser
    from monai.transforms import Compose, EnsureChannelFirstd

    parser = ConfigParser()
    parser.read_config(str(Path(bundle) / "configs" / "train.yaml"))
    parser.update({"dataset_dir": str(dataset_dir), "config_dir": str(Path(bundle) / "configs"), **overrides})
    datalist = parser.get_parsed_content("train#datalist")
    transform = parser.get_parsed_content("validate#preprocessing")
    class_names = parser.get_parsed_content("class_names") if "class_names" in parser else None
    items = random.Random(seed).sample(list(datalist), min(n, len(datalist)))
    outputs = [transform(dict(item)) for item in items]
    images = [np.asarray(output["image"], dtype=np.float32) for output in outputs]
    captions = [_caption(item, class_names) for item in items]
    records = [output.get("crop") for output in outputs]
    alerts = _crop_alerts(records, [str(item.get("image_id", item["image"])) for item in items])
    if before:
        decode = Compose(transform.transforms[: 1 + next(
            i for i, t in enumerate(transform.transforms) if isinstance(t, EnsureChannelFirstd)
        )])  # fmt: skip
        decoded = [_with_box(decode(dict(item))["image"], record) for item, record in zip(items, records)]
        images = [image for pair in zip(decoded, images) for image in pair]
        captions = [caption for text in captions for caption in (f"{text} decoded", f"{text} input")]
        alerts = [alert for text in alerts for alert in (text, text)]
    picture = montage(images, captions, columns=columns, alerts=alerts)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), picture[..., ::-1]):
        raise OSError(f"could not write {out}; check the folder and that the name ends in .png")
    flagged = sum(bool(alert) for alert in alerts) // (2 if before else 1)
    logger.info(
        "preview of %d preprocessed images written to %s%s", len(items), out,
        f"; {flagged} framed in red (crop kept the whole image, or a box of unusual size)" if flagged else "",
    )  # fmt: skip
    return out
