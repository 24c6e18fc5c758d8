from __future__ import annotations

import numpy as np

from medbundle.visualize import confusion_matrix_image, roc_curve_image


def test_roc_image_is_rgb_chw_and_draws_the_curve():
    labels = np.array([0, 0, 1, 1, 0, 1])
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])
    image = roc_curve_image(labels, scores, title="AUROC", marker=0.5)
    assert image.dtype == np.uint8 and image.shape[0] == 3 and image.shape[1] > 100
    assert (image < 250).any(axis=0).mean() > 0.01, "nothing drawn"
    assert not np.array_equal(image, roc_curve_image(labels, 1 - scores))


def test_confusion_matrix_image_shades_by_row_share():
    image = confusion_matrix_image(np.array([[9, 1], [0, 5]]), ["neg", "pos"], cell=60)
    assert image.shape[0] == 3 and image.dtype == np.uint8
    empty_cell = image[:, 50 + 60 + 30, 110 + 10]  # row "pos", column "neg" (0 %): stays light
    assert empty_cell.min() > 200
