"""One readable line per data split: how many images, patients and positives (or images per class)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence

__all__ = ["describe_split", "log_splits"]

logger = logging.getLogger(__name__)


def _label(value: object) -> object:
    """A datalist label as a hashable scalar: ``[1.0]`` → 1, ``2`` → 2."""
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    number = float(value)  # type: ignore[arg-type]
    return int(number) if number.is_integer() else number


def describe_split(name: str, items: Sequence[dict], class_names: Sequence[str] | None = None) -> str:
    """``"train: 412 images of 98 patients, 9 positive (2.2 %)"`` or per-class counts for multi-class labels.

    Args:
        name: the split's name.
        items: its datalist (the shared item schema: ``label``, optional ``patient_id``).
        class_names: names of class indices; binary 0/1 labels are reported as positives without them.
    """
    text = f"{name}: {len(items)} image{'s' * (len(items) != 1)}"
    patients = {item["patient_id"] for item in items if "patient_id" in item}
    if patients:
        text += f" of {len(patients)} patient{'s' * (len(patients) != 1)}"
    labels = Counter(_label(item["label"]) for item in items if "label" in item)
    if not labels:
        return text
    if class_names is None and set(labels) <= {0, 1}:
        positives = labels.get(1, 0)
        return text + f", {positives} positive ({100 * positives / max(len(items), 1):.1f} %)"
    names = list(class_names) if class_names is not None else None
    counts = ", ".join(f"{names[k] if names else k}: {labels.get(k, 0)}" for k in (range(len(names)) if names else sorted(labels)))
    return f"{text} ({counts})"


def log_splits(splits: Mapping[str, Sequence[dict]], class_names: Sequence[str] | None = None) -> None:
    """Log :func:`describe_split` for each split, so every run's log starts with what it trains on."""
    for name, items in splits.items():
        logger.info(describe_split(name, items, class_names))
