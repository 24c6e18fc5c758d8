"""ROC-curve and confusion-matrix pictures as CHW uint8 arrays for ``SummaryWriter.add_image``.

Drawn with OpenCV, which the toolkit already needs, so TensorBoard images work without matplotlib.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from sklearn.metrics import roc_curve

__all__ = ["roc_curve_image", "confusion_matrix_image"]

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_INK = (40, 40, 40)


def _to_chw(canvas: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(canvas[..., ::-1].transpose(2, 0, 1))  # BGR HWC -> RGB CHW


def roc_curve_image(
    labels: Sequence[float],
    scores: Sequence[float],
    title: str = "ROC",
    marker: float | None = None,
    size: int = 360,
) -> np.ndarray:
    """Draw the ROC curve of binary `labels` / `scores`, the chance diagonal, and an operating point.

    Args:
        labels: binary ground truth.
        scores: predicted probabilities.
        title: text written above the axes (e.g. "epoch 3  AUROC 0.91").
        marker: threshold whose (FPR, TPR) point is highlighted, if given.
        size: side of the square plot area in pixels.

    Returns:
        uint8 array of shape (3, H, W), RGB.
    """
    labels, scores = np.asarray(labels, dtype=float), np.asarray(scores, dtype=float)
    fpr, tpr, _ = roc_curve(labels, scores)
    pad, top = 40, 30
    canvas = np.full((size + pad + top, size + 2 * pad, 3), 255, np.uint8)

    def xy(f: float, t: float) -> tuple[int, int]:
        return int(pad + f * size), int(top + (1 - t) * size)

    cv2.rectangle(canvas, xy(0, 1), xy(1, 0), _INK, 1)
    cv2.line(canvas, xy(0, 0), xy(1, 1), (180, 180, 180), 1, cv2.LINE_AA)
    points = np.array([xy(f, t) for f, t in zip(fpr, tpr)], np.int32)
    cv2.polylines(canvas, [points], False, (200, 90, 20), 2, cv2.LINE_AA)
    if marker is not None:
        predicted = scores >= marker
        positives, negatives = max((labels == 1).sum(), 1), max((labels == 0).sum(), 1)
        point = xy((predicted & (labels == 0)).sum() / negatives, (predicted & (labels == 1)).sum() / positives)
        cv2.circle(canvas, point, 6, (30, 30, 220), -1, cv2.LINE_AA)
    cv2.putText(canvas, title, (pad, top - 10), _FONT, 0.5, _INK, 1, cv2.LINE_AA)
    cv2.putText(canvas, "FPR", (pad + size // 2 - 15, top + size + 28), _FONT, 0.45, _INK, 1, cv2.LINE_AA)
    cv2.putText(canvas, "TPR", (2, top + size // 2), _FONT, 0.45, _INK, 1, cv2.LINE_AA)
    return _to_chw(canvas)


def confusion_matrix_image(matrix: np.ndarray, class_names: Sequence[str], title: str = "", cell: int = 90) -> np.ndarray:
    """Draw a confusion matrix (rows: truth, columns: prediction) with counts and row-normalised shading.

    Args:
        matrix: square array of counts.
        class_names: one name per class, in matrix order.
        title: text written above the grid.
        cell: side of one cell in pixels.

    Returns:
        uint8 array of shape (3, H, W), RGB.
    """
    matrix = np.asarray(matrix)
    n = matrix.shape[0]
    left, top = 110, 50
    canvas = np.full((top + n * cell + 10, left + n * cell + 10, 3), 255, np.uint8)
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape, float), where=rows > 0)
    for i in range(n):
        cv2.putText(canvas, str(class_names[i])[:12], (5, top + i * cell + cell // 2), _FONT, 0.45, _INK, 1, cv2.LINE_AA)
        cv2.putText(canvas, str(class_names[i])[:10], (left + i * cell + 5, top - 8), _FONT, 0.4, _INK, 1, cv2.LINE_AA)
        for j in range(n):
            shade = int(255 - 180 * share[i, j])
            x0, y0 = left + j * cell, top + i * cell
            cv2.rectangle(canvas, (x0, y0), (x0 + cell, y0 + cell), (255, shade, shade), -1)
            cv2.rectangle(canvas, (x0, y0), (x0 + cell, y0 + cell), _INK, 1)
            text_ink = (255, 255, 255) if share[i, j] > 0.6 else _INK
            cv2.putText(canvas, str(int(matrix[i, j])), (x0 + 10, y0 + cell // 2 + 6), _FONT, 0.6, text_ink, 1, cv2.LINE_AA)
    cv2.putText(canvas, title, (5, 18), _FONT, 0.5, _INK, 1, cv2.LINE_AA)
    return _to_chw(canvas)
