"""Data set validation before training: readability, balance, formats, sizes, duplicates and leakage.

:func:`validate_dataset` is ``medbundle validate``; the task adapters, the image scan and the hashes
it builds on are importable for reuse.
"""

from __future__ import annotations

from medbundle.validation.image_hash import (
    NEAR_DUPLICATE_DISTANCE,
    hamming_distance,
    near_duplicate_pairs,
    perceptual_hash,
    pixel_digest,
)
from medbundle.validation.image_scan import scan_images
from medbundle.validation.report import render_markdown, validate_dataset, write_report
from medbundle.validation.tasks import (
    VALIDATION_TASKS,
    ValidationData,
    chest_xray_validation_data,
    isic_validation_data,
    rsna_validation_data,
)

__all__ = [
    "NEAR_DUPLICATE_DISTANCE",
    "VALIDATION_TASKS",
    "ValidationData",
    "chest_xray_validation_data",
    "hamming_distance",
    "isic_validation_data",
    "near_duplicate_pairs",
    "perceptual_hash",
    "pixel_digest",
    "render_markdown",
    "rsna_validation_data",
    "scan_images",
    "validate_dataset",
    "write_report",
]
