"""A grid of images with a caption on each tile, to look at what a network receives before training on it."""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

__all__ = ["montage"]


#: the frame and text colour of a tile that needs a look (RGB)
ALERT = (220, 20, 20)


def montage(
    images: Sequence[np.ndarray],
    captions: Sequence[str],
    columns: int = 4,
    tile_height: int = 256,
    alerts: Sequence[str] | None = None,
) -> np.ndarray:
    """Tile grey or RGB images in [0, 1] into one RGB uint8 picture with a caption bar under each tile.

    Tiles keep each image's aspect ratio (scaled to `tile_height`) and are padded to the widest one, so a
    crop that kept a film label or a border shows as such. A tile with an alert (e.g. a crop that found no
    breast) is framed in red, with the alert in red under its caption.

    Args:
        images: ``(C, H, W)`` or ``(H, W)`` arrays with values in [0, 1]; C is 1 or 3.
        captions: one line per image (e.g. its id and label).
        columns: tiles per row.
        tile_height: height of each tile's image in pixels.
        alerts: per image, why it needs a look, or "" for none.

    Returns:
        ``(H, W, 3)`` uint8 RGB array.

    Raises:
        ValueError: no images, or a different number of captions or alerts.
    """
    alerts = [""] * len(captions) if alerts is None else list(alerts)
    if not images or len(images) != len(captions) or len(alerts) != len(captions):
        raise ValueError(
            f"montage needs one caption (and alert) per image, got {len(images)} images, {len(captions)} captions "
            f"and {len(alerts)} alerts."
        )
    tiles = []
    for image in images:
        array = np.asarray(image, dtype=np.float32)
        array = array[None] if array.ndim == 2 else array
        rgb = np.repeat(array[:1], 3, axis=0) if array.shape[0] == 1 else array[:3]
        rgb = (np.clip(rgb.transpose(1, 2, 0), 0.0, 1.0) * 255).astype(np.uint8)
        width = max(1, round(rgb.shape[1] * tile_height / rgb.shape[0]))
        tiles.append(cv2.resize(rgb, (width, tile_height), interpolation=cv2.INTER_AREA))
    tile_width, gap = max(t.shape[1] for t in tiles), 4
    caption_height = 22 + 16 * any(alerts)
    rows = math.ceil(len(tiles) / columns)
    canvas = np.full((rows * (tile_height + caption_height + gap), columns * (tile_width + gap), 3), 255, np.uint8)
    characters = max(24, tile_width // 8)
    for index, (tile, caption, alert) in enumerate(zip(tiles, captions, alerts)):
        top = (index // columns) * (tile_height + caption_height + gap)
        left = (index % columns) * (tile_width + gap)
        canvas[top : top + tile_height, left : left + tile.shape[1]] = tile
        cv2.putText(canvas, str(caption)[:characters], (left + 2, top + tile_height + 16), cv2.FONT_HERSHEY_SIMPLEX,
                    0.42, (30, 30, 30), 1, cv2.LINE_AA)  # fmt: skip
        if alert:
            cv2.rectangle(canvas, (left, top), (left + tile.shape[1] - 1, top + tile_height - 1), ALERT, 4)
            cv2.putText(canvas, str(alert)[:characters], (left + 2, top + tile_height + 32), cv2.FONT_HERSHEY_SIMPLEX,
                        0.38, ALERT, 1, cv2.LINE_AA)  # fmt: skip
    return canvas
