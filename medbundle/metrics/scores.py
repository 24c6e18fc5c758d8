"""Score functions by name, for metric handlers, early stopping and model comparison tables.

Bundle configs name their validation scores (``score: macro_auroc``); this registry says which function
computes a name, whether it takes one probability per item (binary) or a probability vector (multi-class),
and whether higher is better, so early stopping on ``log_loss`` needs no hand-written sign flip.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from medbundle.metrics.binary import auroc, sensitivity_specificity
from medbundle.metrics.multiclass import accuracy, log_loss, macro_auroc, macro_f1
from medbundle.metrics.partial_auc import partial_auc
from medbundle.metrics.pfbeta import pfbeta
from medbundle.metrics.thresholds import pfbeta_threshold

__all__ = ["SCORES", "Score", "check_key_metric", "get_score", "metric_higher_is_better", "split_metric_name"]


@dataclass(frozen=True)
class Score:
    """A named score: ``fn(labels, predictions, **options) -> float``.

    Attributes:
        fn: the score function.
        kinds: the prediction kinds it accepts, ``"binary"`` (``(N,)`` probabilities) and/or
            ``"multiclass"`` (``(N, K)`` class probabilities).
        higher_is_better: direction, for early stopping and for ranking models.
    """

    fn: Callable[..., float]
    kinds: tuple[str, ...]
    higher_is_better: bool = True


def _best_pfbeta(labels: npt.ArrayLike, scores: npt.ArrayLike, beta: float = 1.0) -> float:
    return pfbeta_threshold(labels, scores, beta=beta)[1]


def _sensitivity(labels: npt.ArrayLike, scores: npt.ArrayLike, threshold: float = 0.5) -> float:
    return sensitivity_specificity(labels, scores, threshold)[0]


def _specificity(labels: npt.ArrayLike, scores: npt.ArrayLike, threshold: float = 0.5) -> float:
    return sensitivity_specificity(labels, scores, threshold)[1]


def _log_loss(labels: npt.ArrayLike, predictions: npt.ArrayLike, eps: float = 1e-7) -> float:
    """Mean negative log-likelihood; a binary probability ``p`` is read as the two classes ``(1 - p, p)``."""
    p = np.asarray(predictions, dtype=float)
    if p.ndim == 1 or (p.ndim == 2 and p.shape[1] == 1):
        p = p.reshape(-1)
        p = np.stack([1.0 - p, p], axis=1)
    return log_loss(labels, p, eps=eps)


_BINARY = ("binary",)
_MULTICLASS = ("multiclass",)

#: Every score a metric handler can be configured with, by name.
SCORES: dict[str, Score] = {
    "auroc": Score(auroc, _BINARY),
    "pauc": Score(partial_auc, _BINARY),  # ISIC 2024: area above 80 % TPR (score_options min_tpr)
    "pfbeta": Score(pfbeta, _BINARY),
    "pfbeta_best": Score(_best_pfbeta, _BINARY),
    "sensitivity": Score(_sensitivity, _BINARY),
    "specificity": Score(_specificity, _BINARY),
    "accuracy": Score(accuracy, _MULTICLASS),
    "macro_f1": Score(macro_f1, _MULTICLASS),
    "macro_auroc": Score(macro_auroc, _MULTICLASS),
    "log_loss": Score(_log_loss, ("binary", "multiclass"), higher_is_better=False),
}


def get_score(name: str) -> Score:
    """The :class:`Score` registered as ``name``.

    Raises:
        ValueError: ``name`` is not registered; the message lists the names per kind.
    """
    try:
        return SCORES[name]
    except KeyError:
        by_kind = {kind: sorted(n for n, s in SCORES.items() if kind in s.kinds) for kind in ("binary", "multiclass")}
        raise ValueError(f"unknown score {name!r}; binary scores: {by_kind['binary']}, multi-class: {by_kind['multiclass']}") from None


def metric_higher_is_better(metric_name: str) -> bool:
    """Direction of a bundle metric named ``<prefix><score name>`` (``val_macro_f1``) or ``...loss``.

    Losses are lower-is-better; names that end in a registered score take its direction; other names are
    taken as higher-is-better.
    """
    if metric_name.endswith("loss"):
        return False
    parts = metric_name.split("_")
    for start in range(len(parts)):
        name = "_".join(parts[start:])
        if name in SCORES:
            return SCORES[name].higher_is_better
    return True


def check_key_metric(metric_name: str) -> None:
    """Refuse a lower-is-better key metric, which MONAI would rank the wrong way round.

    MONAI's evaluator and ``CheckpointSaver`` keep the highest key metric as the best, so a loss as
    ``key_metric_name`` would keep the worst epoch's weights in ``model.pt``.

    Raises:
        ValueError: `metric_name` is lower-is-better; the message says which keys to use instead.
    """
    if not metric_higher_is_better(metric_name):
        raise ValueError(
            f"key_metric_name {metric_name!r} is lower-is-better, but the best checkpoint keeps the highest key metric: "
            "choose a higher-is-better one (e.g. val_accuracy, val_macro_f1, val_auroc) and watch the loss with "
            f"early_stop_metric {metric_name!r} instead."
        )


def split_metric_name(metric_name: str, split: str) -> str:
    """A bundle metric name (``val_accuracy``) for the evaluated `split`: ``test_accuracy`` for ``"test"``.

    Bundles name their metrics for the validation fold; an evaluation of another split (chest_xray's
    ``--eval_split test``) logs and ranks them under that split's name. Names without the ``val_`` prefix and
    the split ``"val"`` are unchanged.
    """
    return f"{split}_{metric_name.removeprefix('val_')}" if metric_name.startswith("val_") else metric_name
