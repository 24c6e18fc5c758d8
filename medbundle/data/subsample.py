"""Keep every positive, use a share of the negatives: for data sets with one positive in a thousand.

ISIC 2024 holds ~400k lesion crops and ~400 malignant ones. An epoch over all of them spends 99.9 % of
its time on benign crops the model already gets right, so the seed trains on a fraction of the data.
Dropping negatives once would waste most of the data set; :class:`NegativeSubsampler` instead draws a
fresh share of negatives each epoch (walking through a shuffled order, so over ``1 / data_fraction``
epochs every negative is seen once) and keeps all positives in every epoch. For validation, where the
score must be comparable from epoch to epoch, :func:`subsample_negatives` fixes one subset, and
:func:`validation_subset` scores every image of a validation split small enough to afford it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt
from torch.utils.data import Sampler

from medbundle.data.folds import label_array

__all__ = ["VALIDATION_NEGATIVES", "NegativeSubsampler", "subsample_negatives", "validation_subset"]

#: a validation split with at most this many negatives is scored whole by default (ISIC 2024's ~80k are not)
VALIDATION_NEGATIVES = 20_000

logger = logging.getLogger(__name__)


def _check_fraction(data_fraction: float) -> None:
    if not 0.0 < data_fraction <= 1.0:
        raise ValueError(f"data_fraction must be in (0, 1], got {data_fraction}.")


def _binary_indices(labels: Sequence[object] | npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the positive and the negative items; labels must be 0/1 and hold both."""
    y = label_array(labels)
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(f"labels must be 0 or 1, found {np.unique(y)[:5].tolist()}.")
    positives, negatives = np.flatnonzero(y == 1.0), np.flatnonzero(y == 0.0)
    if positives.size == 0 or negatives.size == 0:
        raise ValueError(
            f"labels hold {positives.size} positives and {negatives.size} negatives; subsampling negatives "
            "needs both. Check the label column and the fold."
        )
    return positives, negatives


def _walk(indices: np.ndarray, start: int, count: int, seed: int) -> np.ndarray:
    """Items ``start .. start + count`` of an endless walk through ``indices``, reshuffled on every pass.

    Pass ``p`` is the permutation drawn from ``(seed, p)``, so any slice is computed without the earlier ones.
    """
    n = indices.size
    first, last = start // n, (start + count - 1) // n
    stream = np.concatenate([np.random.default_rng([seed, p]).permutation(indices) for p in range(first, last + 1)])
    offset = start - first * n
    return stream[offset : offset + count]


class NegativeSubsampler(Sampler[int]):
    """Every positive and a fresh share of the negatives each epoch, shuffled together.

    The share is ``data_fraction`` of the negatives, or with ``neg_per_pos`` a fixed ratio of
    ``neg_per_pos`` negatives per positive (at most all negatives). Epoch ``e`` takes the next
    negatives of a walk through shuffled passes over all negatives, so consecutive epochs see different
    ones. The order depends only on ``(seed, epoch)``: call :meth:`set_epoch` before each epoch
    (``medbundle.handlers.SamplerEpochHandler`` does), and a resumed run sees the same items.

    With ``world_size > 1`` every rank builds the same epoch and takes items ``rank, rank + world_size, ...``
    of it, padded by wrapping around so that all ranks get ``ceil(n / world_size)`` items.

    Use it as ``DataLoader(dataset, sampler=NegativeSubsampler(...), batch_size=..., drop_last=True)``.

    Args:
        labels: 0/1 label per dataset item, scalars or ``[x]``.
        data_fraction: share of the negatives per epoch, in ``(0, 1]``; 1 uses all items every epoch.
        neg_per_pos: negatives per positive in each epoch; overrides ``data_fraction`` when given.
        seed: base seed of the walk and the shuffling.
        rank: this process's rank.
        world_size: number of processes.
    """

    def __init__(
        self,
        labels: Sequence[object] | npt.ArrayLike,
        data_fraction: float = 1.0,
        neg_per_pos: float | None = None,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        _check_fraction(data_fraction)
        if neg_per_pos is not None and neg_per_pos <= 0:
            raise ValueError(f"neg_per_pos must be positive (or null for data_fraction), got {neg_per_pos}.")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}.")
        self.positives, self.negatives = _binary_indices(labels)
        wanted = self.positives.size * neg_per_pos if neg_per_pos is not None else self.negatives.size * data_fraction
        self.negatives_per_epoch = int(min(self.negatives.size, max(1, round(wanted))))
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        logger.info(
            "each epoch: all %d positives and %d of %d negatives (%.1f negatives per positive)",
            self.positives.size, self.negatives_per_epoch, self.negatives.size,
            self.negatives_per_epoch / self.positives.size,
        )

    @property
    def epoch_labels(self) -> np.ndarray:
        """The labels one epoch trains on (their counts, in no particular order), e.g. for a loss's positive weight.

        ``classification_loss(labels=sampler.epoch_labels, pos_weight="auto")`` balances the classes as each
        epoch sees them: ``negatives_per_epoch / n_positives``, the whole split's ratio when every item is used.
        """
        return np.concatenate([np.ones(self.positives.size), np.zeros(self.negatives_per_epoch)])

    def set_epoch(self, epoch: int) -> None:
        """Make the next ``iter()`` yield the items of ``epoch`` (e.g. ``engine.state.epoch``)."""
        self.epoch = epoch

    def __len__(self) -> int:
        """Items this rank yields per epoch."""
        return int(-(-(self.positives.size + self.negatives_per_epoch) // self.world_size))

    def __iter__(self) -> Iterator[int]:
        """Yield this rank's item indices for the current epoch, then advance the epoch."""
        negatives = _walk(self.negatives, self.epoch * self.negatives_per_epoch, self.negatives_per_epoch, self.seed)
        items = np.random.default_rng([self.seed, self.epoch, 1]).permutation(np.concatenate([self.positives, negatives]))
        self.epoch += 1
        padded = np.resize(items, len(self) * self.world_size)
        yield from padded[self.rank :: self.world_size].tolist()


def subsample_negatives(
    datalist: Sequence[dict], data_fraction: float, seed: int = 0, label_key: str = "label"
) -> list[dict]:
    """Every positive item and a fixed, seeded ``data_fraction`` of the negatives, in datalist order.

    Validation uses one subset for the whole run, so its scores compare across epochs and runs.

    Args:
        datalist: items with a 0/1 ``label_key``.
        data_fraction: share of the negatives to keep, in ``(0, 1]``.
        seed: subset seed.
        label_key: item key of the label.

    Raises:
        ValueError: ``data_fraction`` is outside ``(0, 1]``, or the labels are not 0/1 with both classes.
    """
    _check_fraction(data_fraction)
    if data_fraction == 1.0:
        return list(datalist)
    positives, negatives = _binary_indices([item[label_key] for item in datalist])
    keep = max(1, round(negatives.size * data_fraction))
    kept = np.sort(np.concatenate([positives, np.random.default_rng(seed).choice(negatives, keep, replace=False)]))
    return [datalist[i] for i in kept]


def validation_subset(
    datalist: Sequence[dict],
    fraction: float | str = "auto",
    data_fraction: float = 0.1,
    seed: int = 0,
    max_negatives: int = VALIDATION_NEGATIVES,
    label_key: str = "label",
) -> list[dict]:
    """The validation items a run scores every epoch: every one, or every positive and a fixed subset of negatives.

    With ``fraction="auto"``, a split of at most `max_negatives` negatives is scored whole: on a small data set a
    tenth of its negatives is too few to choose a model by (40 positives and 80 negatives chose ``model.pt`` on 1,000
    real lesions). A larger one (ISIC 2024's ~80,000 per fold) keeps `data_fraction` of its negatives, as the seed
    pipeline, so validation costs about what a training epoch does.

    Args:
        datalist: the validation items, with a 0/1 `label_key`.
        fraction: ``"auto"``, or the share of negatives to keep, in ``(0, 1]``.
        data_fraction: the share ``"auto"`` keeps of a large split.
        seed: subset seed.
        max_negatives: the most negatives ``"auto"`` scores whole.
        label_key: item key of the label.

    Raises:
        ValueError: `fraction` is neither ``"auto"`` nor in ``(0, 1]``.
    """
    if fraction == "auto":
        negatives = int((label_array([item[label_key] for item in datalist]) == 0).sum())
        fraction = 1.0 if negatives <= max_negatives else data_fraction
    elif isinstance(fraction, str):
        raise ValueError(f"val_data_fraction must be 'auto' or a share in (0, 1], got {fraction!r}.")
    return subsample_negatives(datalist, float(fraction), seed=seed, label_key=label_key)
