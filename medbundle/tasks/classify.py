"""classify: any 2D image classification data set, from a label CSV or class folders; binary or multi-class."""

from __future__ import annotations

from medbundle.tasks.spec import DemoFacts, SweepFacts, TaskSpec

__all__ = ["TASK"]


TASK = TaskSpec(
    name="classify",
    title="any 2D image classification data set (labels.csv or class folders), binary or multi-class",
    bundle="classify",
    demo=DemoFacts(
        writer="medbundle.demo.classify:write_classify_demo",
        options={"n_patients": 160, "n_classes": 2, "layout": "csv"},  # ~320 images: ~64 per validation fold
        marker="labels.csv",
    ),
    dataset_facts="medbundle.datacheck.adapters:classify_dataset_facts",
    sweep=SweepFacts(metrics="medbundle.sweep.task_metrics:per_image_metrics",
                     decide="medbundle.sweep.task_metrics:per_image_decision"),
    ensemble={
        "binary": None,  # the data set decides: the members' stored class count (one output: binary)
        "threshold_key": "roc_threshold",  # binary members
        "preprocessing_keys": ("image_size", "in_chans", "color", "reduced_decode"),
        "id_keys": ("image_id", "patient_id"),
        "table_metrics": ("auroc", "sensitivity", "specificity", "accuracy", "macro_f1", "macro_auroc"),
        "csv_datalist": "medbundle.data.classify:classify_csv_datalist",  # (dataset_dir, csv=...) of a labelled held-out CSV
        "inference_keys": {"images": "input"},
        "split_folders": True,  # class folders with train/val/test: --eval_split test scores the test folder
    },
)
