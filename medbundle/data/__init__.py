"""Datalists, folds and samplers shared by the medbundle bundles."""

from __future__ import annotations

from medbundle.data.cache import cached_dataset, transform_fingerprint
from medbundle.data.columns import read_csv_checked
from medbundle.data.folds import check_no_leakage, grouped_folds, label_array, split_fold
from medbundle.data.rsna import rsna_datalist
from medbundle.data.sampler import BalancedBatchSampler

__all__ = [
    "BalancedBatchSampler",
    "cached_dataset",
    "check_no_leakage",
    "grouped_folds",
    "label_array",
    "read_csv_checked",
    "rsna_datalist",
    "split_fold",
    "transform_fingerprint",
]
