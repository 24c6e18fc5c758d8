"""Preview a bundle's preprocessed images exactly as its network receives them, before training."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

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


def preview_bundle(
    bundle: str | Path, dataset_dir: str | Path, n: int = 16, out: str | Path = "preview.png", seed: int = 0,
    columns: int = 4, **overrides: Any,
) -> Path:
    """Write a montage of `n` training images after the bundle's deterministic preprocessing.

    The images go through the bundle's own ``validate#preprocessing`` (decode, crop, flip, resize, CLAHE:
    whatever that bundle does, without augmentation), so the picture shows what the network sees, e.g.
    whether a crop kept a film label. Each tile is captioned with the image id and its label.

    Args:
        bundle: the bundle folder, e.g. ``bundles/rsna``.
        dataset_dir: the data set, as the bundle's ``dataset_dir``.
        n: number of images, drawn at random (reproducibly for `seed`) from the training split.
        out: the PNG to write.
        seed: the sample's seed.
        columns: tiles per row.
        overrides: further bundle settings, e.g. ``image_size=[512, 256]``.

    Returns:
        The written file.
    """
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(Path(bundle) / "configs" / "train.yaml"))
    parser.update({"dataset_dir": str(dataset_dir), **overrides})
    datalist = parser.get_parsed_content("train#datalist")
    transform = parser.get_parsed_content("validate#preprocessing")
    class_names = parser.get_parsed_content("class_names") if "class_names" in parser else None
    items = random.Random(seed).sample(list(datalist), min(n, len(datalist)))
    images = [np.asarray(transform(dict(item))["image"], dtype=np.float32) for item in items]
    picture = montage(images, [_caption(item, class_names) for item in items], columns=columns)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), picture[..., ::-1]):
        raise OSError(f"could not write {out}; check the folder and that the name ends in .png")
    logger.info("preview of %d preprocessed images written to %s", len(items), out)
    return out
