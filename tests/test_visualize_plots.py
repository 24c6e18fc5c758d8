from __future__ import annotations

import numpy as np
import pytest

from medbundle.visualize import confusion_matrix_image, roc_curve_image, roc_curves_image

LONG_NAMES = ["Normal", "Bacterial Pneumonia", "Viral Pneumonia", "Corona Virus Disease", "Tuberculosis"]


def cell_pixel(image: np.ndarray, n: int, cell: int, row: int, column: int) -> np.ndarray:
    """RGB of a point inside cell (row, column); the grid sits in the bottom-right corner, 10 px from the edges."""
    _, height, width = image.shape
    return image[:, height - 10 - (n - row) * cell + cell // 2, width - 10 - (n - column) * cell + 5]


def test_roc_image_is_rgb_chw_and_draws_the_curve():
    labels = np.array([0, 0, 1, 1, 0, 1])
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])
    image = roc_curve_image(labels, scores, title="AUROC", marker=0.5)
    assert image.dtype == np.uint8 and image.shape[0] == 3 and image.shape[1] > 100
    assert (image < 250).any(axis=0).mean() > 0.01, "nothing drawn"
    assert not np.array_equal(image, roc_curve_image(labels, 1 - scores))


def one_vs_rest_curves(names: list[str], seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.arange(len(names)), rng.integers(0, len(names), 60)])
    probs = rng.dirichlet(np.ones(len(names)), labels.size)
    return {name: (labels == k, probs[:, k]) for k, name in enumerate(names)}


def legend_rows(image: np.ndarray, size: int) -> int:
    """Number of text rows below the plot area (the legend), counted as runs of inked pixel rows."""
    below = (image[:, size + 70 - 2 :, :] < 200).any(axis=(0, 2))  # from just above the legend's first row
    return int(np.count_nonzero(below[1:] & ~below[:-1]) + below[0])


def test_roc_curves_image_has_a_legend_row_per_curve():
    curves = one_vs_rest_curves(LONG_NAMES)
    image = roc_curves_image(curves, title="one-vs-rest", size=200)
    assert image.dtype == np.uint8 and image.shape[0] == 3
    three = roc_curves_image(dict(list(curves.items())[:3]), size=200)
    assert image.shape[1] - three.shape[1] == 2 * 18  # one legend row per extra curve
    assert legend_rows(image, 200) == 5 and legend_rows(three, 200) == 3


def saturated_colours(image: np.ndarray) -> set[tuple[int, ...]]:
    """The strongly coloured RGB values in an image (curves and legend swatches; ink and axes are grey)."""
    pixels = image.reshape(3, -1).T
    return {tuple(c) for c in np.unique(pixels[np.ptp(pixels, axis=1) > 100], axis=0)}


def test_roc_curves_image_colours_each_curve_and_skips_single_class():
    curves = one_vs_rest_curves(["a", "b"])
    two = roc_curves_image(curves, size=200)
    skipped = roc_curves_image({**curves, "absent": (np.zeros(10), np.linspace(0, 1, 10))}, size=200)
    assert len(saturated_colours(two)) > 1
    assert saturated_colours(skipped) == saturated_colours(two), "a single-class curve must not be drawn"
    assert skipped.shape[1] == two.shape[1] + 18 and legend_rows(skipped, 200) == 3, "but it is listed"


def test_roc_curves_image_legend_widens_for_long_names():
    short = roc_curves_image(one_vs_rest_curves(["a", "b"]))
    long = roc_curves_image(one_vs_rest_curves(["a", "a very long class name that does not fit under the plot"]))
    assert long.shape[2] > short.shape[2] == 360 + 2 * 40


def test_roc_curves_image_rejects_no_curves():
    with pytest.raises(ValueError, match="curves is empty"):
        roc_curves_image({})


def test_confusion_matrix_image_shades_by_row_share():
    image = confusion_matrix_image(np.array([[9, 1], [0, 5]]), ["neg", "pos"], cell=60)
    assert image.shape[0] == 3 and image.dtype == np.uint8
    assert cell_pixel(image, 2, 60, 1, 0).min() > 200  # row "pos", column "neg" (0 %): stays light
    assert cell_pixel(image, 2, 60, 0, 0).min() < 150  # row "neg", column "neg" (90 %): shaded


def test_confusion_matrix_image_fits_long_class_names():
    matrix = 10 * np.eye(5, dtype=int) + 1
    short = confusion_matrix_image(matrix, list("abcde"), cell=60)
    long = confusion_matrix_image(matrix, LONG_NAMES, title="epoch 3", cell=60)
    assert long.shape[2] > short.shape[2] and long.shape[1] > short.shape[1]  # wider left margin, wrapped columns
    assert cell_pixel(long, 5, 60, 4, 4).min() < 200 and cell_pixel(long, 5, 60, 4, 0).min() > 200
    left_margin = long[:, :, : long.shape[2] - 10 - 5 * 60]
    assert (left_margin < 200).any(axis=0).any(axis=0).sum() > 100, "row names drawn across the margin"


def test_confusion_matrix_image_rejects_mismatched_names():
    with pytest.raises(ValueError, match="one class name per row"):
        confusion_matrix_image(np.eye(3), ["a", "b"])
