"""Synthetic training sets of a chosen size, written from each task's demo generator for the benchmarks."""

from __future__ import annotations

import math
from pathlib import Path

LESIONS_PER_PATIENT = 10  # every demo patient gets this many crops, so n_images crops need n_images / 10 patients


def write_isic_set(out: Path, n_images: int) -> str:
    """A synthetic ISIC 2024 set of at least `n_images` train crops of 100-200 px (real crops: ~130 px JPEGs)."""
    from medbundle.demo import write_isic_demo

    write_isic_demo(
        out, seed=0, n_patients=max(3, math.ceil(n_images / LESIONS_PER_PATIENT)), positive_rate=0.05,
        n_test=0, lesions_per_patient=(LESIONS_PER_PATIENT, LESIONS_PER_PATIENT), size_range=(100, 200),
    )
    return str(out)


def write_training_set(bundle: str, folder: Path, n_images: int) -> str:
    """A synthetic set of `bundle` with about `n_images` training images in fold 0."""
    from medbundle.demo import write_chest_xray_demo, write_rsna_demo

    if bundle == "rsna":  # ~4 images per patient, 3 of 4 patients in training (n_folds 4)
        write_rsna_demo(folder, n_patients=max(8, math.ceil(n_images / 3)), positive_rate=0.1, n_test_patients=0)
    elif bundle == "isic":  # 4 of 5 folds train
        write_isic_set(folder, math.ceil(n_images * 5 / 4))
    else:  # chest_xray: images per class of the fixed train / val folders
        write_chest_xray_demo(folder, n_train=max(1, math.ceil(n_images / 5)), n_val=1, n_test=0)
    return str(folder)
