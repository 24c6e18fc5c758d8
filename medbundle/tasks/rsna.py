"""rsna: breast cancer from screening mammograms (RSNA Screening Mammography, Kaggle), scored per breast with pF1."""

from __future__ import annotations

from medbundle.tasks.spec import BenchmarkFacts, DemoFacts, SweepFacts, TaskSpec

__all__ = ["TASK"]


TASK = TaskSpec(
    name="rsna",
    title="breast cancer from screening mammograms (DICOM), probabilistic F1 per breast",
    bundle="rsna",
    demo=DemoFacts(
        writer="medbundle.demo.rsna:write_rsna_demo",
        options={"n_patients": 120, "positive_rate": 0.1},
        marker="train.csv",
        sized_set="medbundle.demo.rsna:write_rsna_sized_set",
    ),
    dataset_facts="medbundle.datacheck.adapters:rsna_dataset_facts",
    sweep=SweepFacts(metrics="medbundle.sweep.task_metrics:rsna_metrics",
                     decide="medbundle.sweep.task_metrics:rsna_decision"),
    ensemble={
        "binary": True,
        "threshold_key": "pf1_threshold",
        "preprocessing_keys": ("image_size", "in_chans"),
        "id_keys": ("image_id", "patient_id", "laterality", "breast_id"),
        "group_key": "breast_id",
        "table_metrics": ("pf1_at_threshold", "pf1_prob", "auroc"),
        "csv_datalist": "medbundle.data.rsna:rsna_datalist",  # (dataset_dir, csv=..., image_dir=...) of a labelled held-out CSV
        "inference_keys": {"csv": "csv", "images": "image_dir"},
        "submission": {"group_key": "breast_id", "id_column": "prediction_id", "target_column": "cancer"},
        "binarize_submission": True,
        "image_suffixes": (".dcm", ".dicom"),
    },
    benchmark=BenchmarkFacts(source_size=(3000, 2400), fixed_shape=True, train_share=0.75,
                             inference="medbundle.benchmarks.inference:RSNA"),
)
