"""ROC-curve and confusion-matrix pictures as CHW uint8 arrays for ``SummaryWriter.add_image``.

Drawn with OpenCV, which the toolkit already needs, so TensorBoard images work without matplotlib.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import cv2
import numpy as np
import numpy.typing as npt
from sklearn.metrics import auc, roc_curve

__all__ = ["roc_curve_image", "roc_curves_image", "confusion_matrix_image"]

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_INK = (40, 40, 40)
_CURVE = (200, 90, 20)
# BGR of matplotlib's "tab10" palette, so curves look as in the usual plotting tools.
_PALETTE = (
    (180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214), (189, 103, 148),
    (75, 86, 140), (194, 119, 227), (127, 127, 127), (34, 189, 188), (207, 190, 23),
)  # fmt: skip
_PAD, _TOP = 40, 30
_LEGEND_ROW = 18


def _to_chw(canvas: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(canvas[..., ::-1].transpose(2, 0, 1))  # BGR HWC -> RGB CHW


def _text_width(text: str, scale: float) -> int:
    return cv2.getTextSize(text, _FONT, scale, 1)[0][0]


def _roc_axes(
    title: str, size: int, extra_height: int = 0, width: int = 0
) -> tuple[np.ndarray, Callable[[float, float], tuple[int, int]]]:
    """White canvas with the ROC frame, chance diagonal and labels; returns it and the (FPR, TPR) -> pixel map."""
    canvas = np.full((size + _PAD + _TOP + extra_height, max(size + 2 * _PAD, width), 3), 255, np.uint8)

    def xy(f: float, t: float) -> tuple[int, int]:
        return int(_PAD + f * size), int(_TOP + (1 - t) * size)

    cv2.rectangle(canvas, xy(0, 1), xy(1, 0), _INK, 1)
    cv2.line(canvas, xy(0, 0), xy(1, 1), (180, 180, 180), 1, cv2.LINE_AA)
    cv2.putText(canvas, title, (_PAD, _TOP - 10), _FONT, 0.5, _INK, 1, cv2.LINE_AA)
    cv2.putText(canvas, "FPR", (_PAD + size // 2 - 15, _TOP + size + 28), _FONT, 0.45, _INK, 1, cv2.LINE_AA)
    cv2.putText(canvas, "TPR", (2, _TOP + size // 2), _FONT, 0.45, _INK, 1, cv2.LINE_AA)
    return canvas, xy


def _draw_curve(
    canvas: np.ndarray,
    xy: Callable[[float, float], tuple[int, int]],
    fpr: np.ndarray,
    tpr: np.ndarray,
    colour: tuple[int, int, int],
) -> None:
    points = np.array([xy(f, t) for f, t in zip(fpr, tpr)], np.int32)
    cv2.polylines(canvas, [points], False, colour, 2, cv2.LINE_AA)


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
    canvas, xy = _roc_axes(title, size)
    _draw_curve(canvas, xy, fpr, tpr, _CURVE)
    if marker is not None:
        predicted = scores >= marker
        positives, negatives = max((labels == 1).sum(), 1), max((labels == 0).sum(), 1)
        point = xy((predicted & (labels == 0)).sum() / negatives, (predicted & (labels == 1)).sum() / positives)
        cv2.circle(canvas, point, 6, (30, 30, 220), -1, cv2.LINE_AA)
    return _to_chw(canvas)


def roc_curves_image(
    curves: Mapping[str, tuple[npt.ArrayLike, npt.ArrayLike]], title: str = "ROC", size: int = 360
) -> np.ndarray:
    """Draw several ROC curves on one set of axes, e.g. one-vs-rest per class, with a legend below.

    For a multi-class model pass ``{name: (labels == k, probabilities[:, k]) for k, name in
    enumerate(class_names)}``. Each legend row reads ``"name  AUROC 0.xx"``; a curve whose labels
    hold a single class has no ROC, so it is not drawn and its row reads ``"AUROC n/a"``.

    Args:
        curves: legend name -> ``(binary labels, scores)``; drawn in mapping order, colours repeat
            after ten curves.
        title: text written above the axes.
        size: side of the square plot area in pixels.

    Returns:
        uint8 array of shape (3, H, W), RGB; the width grows to fit the longest legend row.

    Raises:
        ValueError: ``curves`` is empty.
    """
    if not curves:
        raise ValueError("curves is empty; pass at least one {name: (labels, scores)} entry.")
    drawn, legend = [], []
    for name, (labels, scores) in curves.items():
        labels, scores = np.asarray(labels, dtype=float), np.asarray(scores, dtype=float)
        if np.unique(labels).size < 2:
            legend.append(f"{name}  AUROC n/a")
            drawn.append(None)
            continue
        fpr, tpr, _ = roc_curve(labels, scores)
        legend.append(f"{name}  AUROC {auc(fpr, tpr):.2f}")
        drawn.append((fpr, tpr))
    legend_x, legend_y = _PAD + 30, _TOP + size + 40
    width = legend_x + max(_text_width(text, 0.45) for text in legend) + _PAD
    canvas, xy = _roc_axes(title, size, extra_height=len(legend) * _LEGEND_ROW, width=width)
    for row, (text, curve) in enumerate(zip(legend, drawn)):
        colour = _PALETTE[row % len(_PALETTE)]
        y = legend_y + row * _LEGEND_ROW
        if curve is not None:
            _draw_curve(canvas, xy, *curve, colour)
            cv2.line(canvas, (_PAD, y - 5), (legend_x - 6, y - 5), colour, 2, cv2.LINE_AA)
        cv2.putText(canvas, text, (legend_x, y), _FONT, 0.45, _INK, 1, cv2.LINE_AA)
    return _to_chw(canvas)


def _wrap(text: str, width: int, scale: float) -> list[str]:
    """Split `text` at spaces into lines at most `width` pixels wide; shorten a too-long word to "abc."."""
    lines: list[str] = []
    for word in text.split():
        while _text_width(word, scale) > width and len(word) > 2:
            word = word[:-2] + "."
        if lines and _text_width(f"{lines[-1]} {word}", scale) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines or [""]


def _vertical_text(canvas: np.ndarray, text: str, left: int, centre_y: int, scale: float) -> None:
    """Write `text` reading bottom-to-top with its left edge at column `left`, centred on row `centre_y`."""
    (w, h), base = cv2.getTextSize(text, _FONT, scale, 1)
    patch = np.full((h + base + 2, w + 2, 3), 255, np.uint8)
    cv2.putText(patch, text, (1, h + 1), _FONT, scale, _INK, 1, cv2.LINE_AA)
    patch = np.rot90(patch)
    y0 = max(centre_y - patch.shape[0] // 2, 0)
    canvas[y0 : y0 + patch.shape[0], left : left + patch.shape[1]] = patch[: canvas.shape[0] - y0]


def confusion_matrix_image(
    matrix: np.ndarray, class_names: Sequence[str], title: str = "", cell: int = 90
) -> np.ndarray:
    """Draw a confusion matrix (rows: truth, columns: prediction) with counts and row-normalised shading.

    The left margin fits the longest class name; column names are wrapped at spaces to the cell
    width (a word still too long is shortened to ``"abc."``). The grid sits in the bottom-right
    corner, 10 pixels from the edges.

    Args:
        matrix: square array of counts.
        class_names: one name per class, in matrix order.
        title: text written above the grid.
        cell: side of one cell in pixels.

    Returns:
        uint8 array of shape (3, H, W), RGB.

    Raises:
        ValueError: ``matrix`` is not square or ``class_names`` does not hold one name per row.
    """
    matrix = np.asarray(matrix)
    n = matrix.shape[0]
    if matrix.shape != (n, n) or len(class_names) != n:
        raise ValueError(
            f"matrix must be square with one class name per row, got shape {matrix.shape} and "
            f"{len(class_names)} names; pass e.g. medbundle.metrics.confusion(...) and its class names."
        )
    names = [str(name) for name in class_names]
    columns = [_wrap(name, cell - 8, 0.4) for name in names]
    caption = 24  # room for the vertical "truth"
    left = caption + max(_text_width(name, 0.45) for name in names) + 12
    top = 46 + 14 * max(len(lines) for lines in columns)
    width = max(left + n * cell + 10, _text_width(title, 0.5) + 10)
    canvas = np.full((top + n * cell + 10, width, 3), 255, np.uint8)
    left = canvas.shape[1] - 10 - n * cell
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape, float), where=rows > 0)
    for i in range(n):
        cv2.putText(canvas, names[i], (caption, top + i * cell + cell // 2 + 5), _FONT, 0.45, _INK, 1, cv2.LINE_AA)
        for line, text in enumerate(columns[i]):
            y = top - 8 - 14 * (len(columns[i]) - 1 - line)
            cv2.putText(canvas, text, (left + i * cell + 4, y), _FONT, 0.4, _INK, 1, cv2.LINE_AA)
        for j in range(n):
            shade = int(255 - 180 * share[i, j])
            x0, y0 = left + j * cell, top + i * cell
            cv2.rectangle(canvas, (x0, y0), (x0 + cell, y0 + cell), (255, shade, shade), -1)
            cv2.rectangle(canvas, (x0, y0), (x0 + cell, y0 + cell), _INK, 1)
            text_ink = (255, 255, 255) if share[i, j] > 0.6 else _INK
            cv2.putText(canvas, str(int(matrix[i, j])), (x0 + 10, y0 + cell // 2 + 6), _FONT, 0.6, text_ink, 1, cv2.LINE_AA)
    cv2.putText(canvas, title, (5, 18), _FONT, 0.5, _INK, 1, cv2.LINE_AA)
    caption_x = left + (n * cell - _text_width("prediction", 0.45)) // 2
    cv2.putText(canvas, "prediction", (caption_x, 38), _FONT, 0.45, _INK, 1, cv2.LINE_AA)
    _vertical_text(canvas, "truth", 4, top + n * cell // 2, 0.45)
    return _to_chw(canvas)
