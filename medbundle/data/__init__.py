"""Datalists, folds, samplers, caches and dataset statistics shared by the medbundle bundles.

Every datalist item follows one schema, so folds, samplers, the cache and the writers never read a
task's own columns:

- ``image``: path of the image file;
- ``label``: the target, a class index for multi-class tasks or ``[0.0 | 1.0]`` for one-logit binary tasks
  (absent for unlabelled inference data);
- ``image_id``: a readable id written beside every prediction;
- ``patient_id`` (optional): the group that folds keep whole;
- task extras, e.g. RSNA's ``laterality`` and ``breast_id`` (the group its metric scores).

``image`` may also name a member of an HDF5 file, ``"<file>::<key>"`` (ISIC), read by ``medbundle.io.RGBReader``.
"""

from __future__ import annotations

from medbundle.data.cache import cached_dataset, transform_fingerprint
from medbundle.data.chest_xray import (
    CHEST_XRAY_ALIASES,
    CHEST_XRAY_CLASSES,
    chest_xray_classes,
    chest_xray_datalist,
    chest_xray_split,
)
from medbundle.data.class_folders import (
    class_folder_datalist,
    class_folder_split,
    image_files_datalist,
    normalise_class_name,
)
from medbundle.data.classify import (
    classify_classes,
    classify_csv_datalist,
    classify_folder_datalist,
    classify_held_out,
    classify_layout,
    classify_split,
    detect_color,
    resolve_color,
)
from medbundle.data.columns import read_csv_checked
from medbundle.data.download import DownloadError, download_dataset, kaggle_sources
from medbundle.data.folds import (
    check_no_leakage,
    grouped_folds,
    label_array,
    split_fold,
)
from medbundle.data.isic import isic_datalist
from medbundle.data.norm_stats import (
    compute_norm_stats,
    norm_stats_path,
    read_norm_stats,
    write_norm_stats,
)
from medbundle.data.rsna import rsna_datalist
from medbundle.data.sampler import BalancedBatchSampler
from medbundle.data.subsample import (
    NegativeSubsampler,
    subsample_negatives,
    validation_subset,
)
from medbundle.data.summary import describe_split, log_splits
from medbundle.data.workers import default_num_workers

__all__ = [
    "CHEST_XRAY_ALIASES",
    "CHEST_XRAY_CLASSES",
    "BalancedBatchSampler",
    "DownloadError",
    "NegativeSubsampler",
    "cached_dataset",
    "check_no_leakage",
    "chest_xray_classes",
    "chest_xray_datalist",
    "chest_xray_split",
    "class_folder_datalist",
    "class_folder_split",
    "classify_classes",
    "classify_csv_datalist",
    "classify_folder_datalist",
    "classify_held_out",
    "classify_layout",
    "classify_split",
    "compute_norm_stats",
    "default_num_workers",
    "describe_split",
    "detect_color",
    "download_dataset",
    "grouped_folds",
    "image_files_datalist",
    "isic_datalist",
    "kaggle_sources",
    "label_array",
    "log_splits",
    "norm_stats_path",
    "normalise_class_name",
    "read_csv_checked",
    "read_norm_stats",
    "resolve_color",
    "rsna_datalist",
    "split_fold",
    "subsample_negatives",
    "transform_fingerprint",
    "validation_subset",
    "write_norm_stats",
]
