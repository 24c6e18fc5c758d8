"""chest_xray: five classes of chest radiographs in class folders, two-stage fine-tuning."""

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
    name="chest_xray",
    title="viral / bacterial pneumonia, COVID-19, tuberculosis or normal from chest radiographs (class folders)",
    bundle="chest_xray",
    demo=DemoFacts(
        writer="medbundle.demo.chest_xray:write_chest_xray_demo",
        marker="train",
        sized_set="medbundle.demo.chest_xray:write_chest_xray_sized_set",
    ),
    dataset_facts="medbundle.datacheck.adapters:chest_xray_dataset_facts",
    sweep=SweepFacts(metrics="medbundle.sweep.task_metrics:multiclass_metrics"),
    ensemble={
        "binary": False,
        "threshold_key": None,
        "preprocessing_keys": ("image_size", "in_chans", "clahe"),
        "id_keys": ("image_id",),
        "table_metrics": ("accuracy", "macro_f1", "macro_auroc"),
        "default_split": "test",
        "split_folders": True,
        "inference_keys": {"images": "input"},
    },
    download=DownloadFacts(handle="khaleddev/lungs-disease-dataset-broken"),
    benchmark=BenchmarkFacts(source_size=(1000, 2000), inference="medbundle.benchmarks.inference:CHEST_XRAY",
                             train_every_layer={"stage1": False}),
)
