"""isic: skin-lesion malignancy from small crops (ISIC 2024, Kaggle), partial AUC above 80 % TPR."""

from __future__ import annotations

from medbundle.tasks.spec import (
    BenchmarkFacts,
    DemoFacts,
    DownloadFacts,
    SweepFacts,
    TaskSpec,
)

__all__ = ["TASK"]


TASK = TaskSpec(
    name="isic",
    title="skin-lesion malignancy from small crops (HDF5 JPEGs), partial AUC above 80 % TPR",
    bundle="isic",
    demo=DemoFacts(
        writer="medbundle.demo.isic:write_isic_demo",
        options={"n_patients": 300, "positive_rate": 0.05},  # ~100 malignant crops: ~20 per validation fold
        marker="train-image.hdf5",
        sized_set="medbundle.demo.isic:write_isic_sized_set",
    ),
    dataset_facts="medbundle.datacheck.adapters:isic_dataset_facts",
    sweep=SweepFacts(metrics="medbundle.sweep.task_metrics:isic_metrics",
                     decide="medbundle.sweep.task_metrics:isic_decision"),
    ensemble={
        "binary": True,
        "threshold_key": "roc_threshold",
        "preprocessing_keys": ("image_size", "in_chans"),
        "id_keys": ("image_id", "patient_id"),
        "table_metrics": ("pauc", "auroc"),
        "csv_datalist": "medbundle.data.isic:isic_datalist",  # (dataset_dir, csv=..., images=...) of a labelled held-out CSV
        "inference_keys": {"csv": "csv", "images": "images"},
        "submission": {"group_key": "image_id", "id_column": "isic_id", "target_column": "target"},
        "image_suffixes": (".jpg", ".jpeg", ".png"),
    },
    download=DownloadFacts(
        handle="isic-2024-challenge",
        competition=True,
        files=("train-metadata.csv", "train-image.hdf5", "test-metadata.csv", "test-image.hdf5"),
    ),
    benchmark=BenchmarkFacts(source_size=(100, 200), train_share=0.8,
                             inference="medbundle.benchmarks.inference:ISIC",
                             loader_overrides={"data_fraction": 1.0}),
)
