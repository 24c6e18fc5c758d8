"""Classification losses selected by name, with class-balancing weights computed from training labels.

Binary tasks (mammography, skin lesions) use one logit per image: ``"bce"`` or ``"focal"`` take logits
``(B, 1)`` and float targets ``(B, 1)``. Multi-class tasks (chest X-ray) use ``"ce"`` with logits
``(B, num_classes)`` and integer class targets ``(B,)``. With ``pos_weight="auto"`` and the training labels,
the rare class is up-weighted: ``n_neg / n_pos`` for ``"bce"``, inverse class frequencies for ``"ce"``.
"""

from __future__ import annotations

import logging
from typing import Callable

import numpy as np
import numpy.typing as npt
import torch
from monai.losses import FocalLoss
from torch import nn

__all__ = ["LOSSES", "class_weights", "classification_loss", "positive_weight"]

logger = logging.getLogger(__name__)


def positive_weight(labels: npt.ArrayLike) -> float:
    """Weight of the positive class that balances it against the negatives: ``n_neg / n_pos``.

    Args:
        labels: 0/1 label per training image.

    Raises:
        ValueError: when ``labels`` is empty, holds values other than 0 and 1, or has no positive or no
            negative label (a weight of infinity or zero would make training meaningless).
    """
    y = np.asarray(labels, dtype=float).ravel()
    if y.size == 0:
        raise ValueError("the training split has no labels; check the fold/labels.")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(f"binary labels must be 0 or 1, got values {np.unique(y)[:10].tolist()}.")
    n_pos = int(y.sum())
    if n_pos == 0:
        raise ValueError(f"the training split has no positive label (0 of {y.size}); check the fold/labels.")
    if n_pos == y.size:
        raise ValueError(
            f"the training split has no negative label ({n_pos} of {y.size} positive); check the fold/labels."
        )
    return (y.size - n_pos) / n_pos


def class_weights(labels: npt.ArrayLike, num_classes: int) -> torch.Tensor:
    """Inverse-frequency class weights ``n / (num_classes * n_c)``, 1 for every class when balanced.

    Args:
        labels: class index in ``[0, num_classes)`` per training image.
        num_classes: number of classes.

    Raises:
        ValueError: when ``labels`` holds values that are not class indices, or a class has no label.
    """
    y = np.asarray(labels).ravel()
    if y.size == 0 or not np.isin(y, np.arange(num_classes)).all():
        raise ValueError(
            f"labels must be class indices in [0, {num_classes}), got values {np.unique(y)[:10].tolist()}."
        )
    counts = np.bincount(y.astype(np.int64), minlength=num_classes)
    missing = np.flatnonzero(counts == 0).tolist()
    if missing:
        raise ValueError(f"the training split has no label of class(es) {missing}; check the fold/labels.")
    return torch.as_tensor(y.size / (num_classes * counts), dtype=torch.float32)


def _require_binary(name: str, num_classes: int, label_smoothing: float) -> None:
    """Reject settings that a one-logit sigmoid loss cannot honour."""
    if num_classes != 1:
        raise ValueError(f"{name!r} is a binary loss on one logit, got num_classes={num_classes}; use 'ce'.")
    if label_smoothing:
        raise ValueError(f"label_smoothing is only supported by 'ce', not {name!r}.")


def _bce(
    num_classes: int,
    labels: npt.ArrayLike | None,
    pos_weight: float | str | None,
    gamma: float,
    alpha: float | None,
    label_smoothing: float,
) -> nn.Module:
    """``BCEWithLogitsLoss`` with a positive-class weight; ``"auto"`` derives it from ``labels`` when given."""
    _require_binary("bce", num_classes, label_smoothing)
    if pos_weight == "auto":
        pos_weight = positive_weight(labels) if labels is not None else None
    if pos_weight is not None:
        logger.info("BCEWithLogitsLoss pos_weight = %.4g (negatives per positive in the training data)", pos_weight)
    return nn.BCEWithLogitsLoss(pos_weight=None if pos_weight is None else torch.tensor([float(pos_weight)]))


def _focal(
    num_classes: int,
    labels: npt.ArrayLike | None,
    pos_weight: float | str | None,
    gamma: float,
    alpha: float | None,
    label_smoothing: float,
) -> nn.Module:
    """MONAI's sigmoid focal loss; classes are balanced through ``alpha``, not ``pos_weight``."""
    _require_binary("focal", num_classes, label_smoothing)
    if pos_weight not in ("auto", None):
        raise ValueError("'focal' balances classes with alpha; pos_weight only applies to 'bce'.")
    return FocalLoss(gamma=gamma, alpha=alpha, use_softmax=False)


def _cross_entropy(
    num_classes: int,
    labels: npt.ArrayLike | None,
    pos_weight: float | str | None,
    gamma: float,
    alpha: float | None,
    label_smoothing: float,
) -> nn.Module:
    """``CrossEntropyLoss``; ``pos_weight="auto"`` with ``labels`` gives inverse-frequency class weights."""
    if num_classes < 2:
        raise ValueError(f"'ce' needs num_classes >= 2, got {num_classes}; use 'bce' or 'focal' for one logit.")
    if pos_weight not in ("auto", None):
        raise ValueError("'ce' takes pos_weight='auto' (inverse-frequency class weights) or None, not a number.")
    weight = class_weights(labels, num_classes) if pos_weight == "auto" and labels is not None else None
    return nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing)


LOSSES: dict[str, Callable[..., nn.Module]] = {
    "bce": _bce,
    "focal": _focal,
    "ce": _cross_entropy,
}


def classification_loss(
    name: str = "bce",
    num_classes: int = 1,
    labels: npt.ArrayLike | None = None,
    pos_weight: float | str | None = "auto",
    gamma: float = 2.0,
    alpha: float | None = None,
    label_smoothing: float = 0.0,
) -> nn.Module:
    """Build a classification loss by name, with class balancing from the training labels.

    Example::

        loss = classification_loss("bce", labels=train_df["cancer"])  # pos_weight = n_neg / n_pos

    Args:
        name: ``"bce"`` (``BCEWithLogitsLoss``), ``"focal"`` (MONAI ``FocalLoss`` with sigmoid) — both on
            logits ``(B, 1)`` with float targets ``(B, 1)`` — or ``"ce"`` (``CrossEntropyLoss`` on logits
            ``(B, num_classes)`` with class-index targets ``(B,)``).
        num_classes: number of logits; 1 for ``"bce"``/``"focal"``, at least 2 for ``"ce"``.
        labels: training labels (0/1 for the binary losses, class indices for ``"ce"``) used by
            ``pos_weight="auto"``.
        pos_weight: class balancing. ``"auto"``: from ``labels`` (``n_neg / n_pos`` for ``"bce"``, inverse
            class frequencies for ``"ce"``), unweighted when ``labels`` is None or for ``"focal"``. A number:
            the positive weight of ``"bce"``. None: unweighted.
        gamma: focusing exponent of ``"focal"``.
        alpha: weight of the positive class in ``"focal"`` (negatives get ``1 - alpha``); None for no weighting.
        label_smoothing: label smoothing of ``"ce"``.

    Raises:
        ValueError: for an unknown name, a ``num_classes`` the loss cannot take, an option the loss does not
            support, or labels without a positive (or some class) with ``pos_weight="auto"``.
    """
    try:
        build = LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; available losses: {sorted(LOSSES)}") from None
    return build(
        num_classes=num_classes,
        labels=labels,
        pos_weight=pos_weight,
        gamma=gamma,
        alpha=alpha,
        label_smoothing=label_smoothing,
    )
