"""Each task bundle at toy size, for tests that train it through the real command: demo data and overrides."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from medbundle.demo import (
    write_chest_xray_demo,
    write_classify_demo,
    write_isic_demo,
    write_rsna_demo,
)


@dataclass(frozen=True)
class Task:
    write_demo: Callable[..., dict]
    demo_args: dict
    overrides: dict
    metrics: tuple[str, ...]  # compared with one process's evaluation; the first is the key metric


TINY = {"pretrained": False, "num_workers": 0, "progress": False, "epochs": 1, "val_batch_size": 1}
TASKS = {
    "rsna": Task(  # 17 validation images of 8 breasts; a breast's views are split between the ranks
        write_rsna_demo,
        {"n_patients": 9, "positive_rate": 0.25, "n_test_patients": 1, "image_shape": (128, 104), "seed": 1},
        {"backbone": "resnet10t", "head": "linear", "image_size": [64, 32], "batch_size": 4, "pos_per_batch": 1,
         "n_folds": 3, "learning_rate": 1e-3, **TINY},
        ("val_pf1_best", "val_pf1_prob", "val_auroc"),
    ),
    "chest_xray": Task(  # 15 validation images; 20 training images, 10 per rank: fewer than a batch
        write_chest_xray_demo,
        {"n_train": 4, "n_val": 3, "n_test": 1, "size_range": (64, 80), "seed": 1},
        {"model": "resnet10t", "image_size": [48, 48], "batch_size": 16, "stage1_epochs": 1, "stage2": False,
         "stage1_lr": 1e-3, **TINY},
        ("val_accuracy", "val_macro_f1", "val_macro_auroc", "val_loss"),
    ),
    "isic": Task(  # 19 validation images
        write_isic_demo,
        {"n_patients": 20, "positive_rate": 0.1, "n_test": 2, "size_range": (40, 56), "seed": 3},
        {"model": "resnet10t", "image_size": [48, 48], "batch_size": 8, "n_folds": 3, "data_fraction": 0.5,
         "val_data_fraction": 0.5, "val_interval": 1, "min_epochs": 0, "learning_rate": 1e-3, **TINY},
        ("val_pauc", "val_auroc"),
    ),
    "classify": Task(  # 7 validation images of a binary label CSV, folded by patient
        write_classify_demo,
        {"n_patients": 12, "n_classes": 2, "n_test": 0, "size_range": (40, 56), "seed": 1},
        {"model": "resnet10t", "image_size": [48, 48], "batch_size": 4, "n_folds": 3, "stage1_epochs": 1,
         "stage2": False, "stage1_lr": 1e-3, **TINY},
        ("val_auroc", "val_loss"),
    ),
}
