"""Patient-grouped, label-stratified cross-validation folds for a datalist.

All images of a patient (both breasts, all views) must fall in the same fold, otherwise validation
scores leak; and with ~2 % positives each fold must still hold positives, or AUROC and pF1 are
undefined there.  sklearn's ``StratifiedGroupKFold`` gives both; :func:`split_fold` checks them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from sklearn.model_selection import StratifiedGroupKFold

__all__ = ["check_no_leakage", "grouped_folds", "label_array", "split_fold"]


def label_array(labels: Sequence[object] | npt.ArrayLike) -> np.ndarray:
    """Flatten per-row labels given as scalars or one-element lists (``[x]``) to a 1-D float array.

    Args:
        labels: one label per row, e.g. the ``"label"`` values of a datalist.

    Returns:
        Array of shape ``(N,)``.

    Raises:
        ValueError: a label is a list with more than one element (one-hot / multi-label).
    """
    array = np.asarray(labels, dtype=float)
    if array.ndim == 2 and array.shape[1] == 1:
        return array[:, 0]
    if array.ndim != 1:
        raise ValueError(
            f"labels must be scalars or one-element lists, got shape {array.shape}; "
            "pass class indices instead of one-hot vectors."
        )
    return array


def grouped_folds(
    groups: Sequence[object], labels: Sequence[object] | npt.ArrayLike, n_splits: int = 5, seed: int = 42
) -> np.ndarray:
    """Assign each row a fold with ``StratifiedGroupKFold(shuffle=True)``: groups kept whole, labels stratified.

    Args:
        groups: group per row (e.g. patient id); a group never spans two folds.
        labels: class label per row, scalars or ``[x]``.
        n_splits: number of folds.
        seed: shuffling seed; the same (data, n_splits, seed) gives the same folds.

    Returns:
        Integer fold index in ``[0, n_splits)`` per row.
    """
    y = label_array(labels)
    if len(groups) != y.size:
        raise ValueError(f"groups ({len(groups)}) and labels ({y.size}) must have one entry per row.")
    n_groups = len(set(groups))
    if n_groups < n_splits:
        raise ValueError(f"only {n_groups} distinct groups for n_splits={n_splits}; use at most {n_groups} folds.")
    folds = np.full(y.size, -1, dtype=int)
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    for fold, (_, val_index) in enumerate(splitter.split(np.zeros(y.size), y, groups)):
        folds[val_index] = fold
    return folds


def check_no_leakage(train: Sequence[dict], val: Sequence[dict], group_key: str = "patient_id") -> None:
    """Check that no group (e.g. patient) has items in both the training and the validation split.

    Args:
        train: training datalist.
        val: validation datalist.
        group_key: item key holding the group.

    Raises:
        ValueError: groups occur in both splits; the message lists (up to 10 of) them.
    """
    leaked = sorted({item[group_key] for item in train} & {item[group_key] for item in val}, key=str)
    if leaked:
        raise ValueError(
            f"{len(leaked)} {group_key} value(s) occur in both train and val, e.g. {leaked[:10]}; "
            f"split by {group_key!r} (see split_fold)."
        )


def split_fold(
    datalist: Sequence[dict],
    fold: int,
    n_splits: int = 5,
    seed: int = 42,
    group_key: str = "patient_id",
    label_key: str = "label",
) -> tuple[list[dict], list[dict]]:
    """Split a datalist into (train, val) for one fold of :func:`grouped_folds`.

    Checks that no group leaks and that both splits hold every class of the datalist (for binary
    labels: at least one positive and one negative), since AUROC / pF1 are undefined otherwise.

    Args:
        datalist: items with ``group_key`` and ``label_key`` (label a scalar or ``[x]``).
        fold: validation fold, in ``[0, n_splits)``.
        n_splits: number of folds.
        seed: fold assignment seed; keep it fixed across the runs of one cross-validation.
        group_key: item key of the group (patient).
        label_key: item key of the label used for stratification.

    Returns:
        ``(train, val)`` lists of the original items, in datalist order.

    Raises:
        ValueError: ``fold`` out of range, a key is missing, a group leaks, or a split lacks a class.
    """
    if not 0 <= fold < n_splits:
        raise ValueError(f"fold must be in [0, {n_splits}) for n_splits={n_splits}, got {fold}.")
    for key in (group_key, label_key):
        lacking = [index for index, item in enumerate(datalist) if key not in item]
        if lacking:
            raise ValueError(f"datalist items {lacking[:10]} lack the key {key!r} needed to split folds.")
    labels = label_array([item[label_key] for item in datalist])
    groups = np.asarray([item[group_key] for item in datalist], dtype=object)
    folds = grouped_folds(groups.tolist(), labels, n_splits=n_splits, seed=seed)
    train = [item for item, f in zip(datalist, folds) if f != fold]
    val = [item for item, f in zip(datalist, folds) if f == fold]
    check_no_leakage(train, val, group_key=group_key)
    for name, in_split in (("training", folds != fold), ("validation", folds == fold)):
        absent = np.setdiff1d(np.unique(labels), labels[in_split])
        if absent.size:
            raise ValueError(
                _missing_class_message(
                    fold, n_splits, name, in_split, labels, groups, absent[0], group_key=group_key, label_key=label_key
                )
            )
    return train, val


def _missing_class_message(
    fold: int,
    n_splits: int,
    name: str,
    in_split: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    value: float,
    group_key: str,
    label_key: str,
) -> str:
    """Explain that a split of a fold lacks the class ``value``: the counts, and how many folds the data allows.

    Args:
        fold: the validation fold.
        n_splits: number of folds.
        name: "training" or "validation".
        in_split: boolean mask of the split's rows.
        labels: label per row.
        groups: group (patient) per row.
        value: the class the split lacks.
        group_key: item key of the group, for the message.
        label_key: item key of the label, for the message.
    """
    what = f"{label_key} {value:g}"
    has_value = labels == value
    binary_positive = value == 1 and set(np.unique(labels).tolist()) <= {0.0, 1.0}
    kind = "positives" if binary_positive else f"items with {what}"
    n_groups = len(set(groups[has_value].tolist()))
    consequence = "AUROC / pF1 are undefined there" if name == "validation" else "the model never sees one"
    if n_groups < 2:
        advice = f"Only {n_groups} {group_key} has {what} and cross-validation needs at least 2: add data with {what}."
    else:
        advice = (
            f"Only {n_groups} {group_key} values have {what}, so at most {n_groups} folds can each get one: "
            f"use fewer folds (n_splits, n_folds in the bundle config) or add data with {what}."
        )
    return (
        f"fold {fold} of {n_splits}: the {name} split has 0 items with {what} (of {int(in_split.sum())} items; "
        f"{int(has_value.sum())} {kind} in the whole data set), so {consequence}. {advice}"
    )
