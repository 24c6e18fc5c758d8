"""Random textures the synthetic demo images are built from."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["smooth_noise"]


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Low-pass noise of roughly unit variance: a coarse random grid upsampled with bicubic.

    Args:
        rng: the writer's generator.
        shape: ``(rows, columns)`` of the output.
        cells: grid cells along the rows; fewer cells give smoother noise.
    """
    rows, cols = shape
    coarse = rng.standard_normal((cells, max(2, round(cells * cols / rows))), dtype=np.float32)
    return cv2.resize(coarse, (cols, rows), interpolation=cv2.INTER_CUBIC)
