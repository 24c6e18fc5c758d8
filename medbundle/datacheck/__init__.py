"""Data set checks before training: readability, balance, formats, sizes, duplicates and leakage.

Not model validation, which the bundles' ``validate#`` ids run each epoch.

:func:`check_dataset` is ``medbundle validate``; the task adapters, the image scan and the hashes
it builds on are importable for reuse.
"""

from __future__ import annotations

from medbundle.datacheck.adapters import (
    DatasetFacts,
    chest_xray_dataset_facts,
    classify_dataset_facts,
    isic_dataset_facts,
    rsna_dataset_facts,
)
from medbundle.datacheck.image_hash import (
    NEAR_DUPLICATE_DISTANCE,
    hamming_distance,
    near_duplicate_pairs,
    perceptual_hash,
    pixel_digest,
)
from medbundle.datacheck.image_scan import scan_images
from medbundle.datacheck.report import check_dataset, render_markdown, write_report

__all__ = [
    "NEAR_DUPLICATE_DISTANCE",
    "DatasetFacts",
    "check_dataset",
    "chest_xray_dataset_facts",
    "classify_dataset_facts",
    "hamming_distance",
    "isic_dataset_facts",
    "near_duplicate_pairs",
    "perceptual_hash",
    "pixel_digest",
    "render_markdown",
    "rsna_dataset_facts",
    "scan_images",
    "write_report",
]
