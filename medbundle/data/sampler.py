"""Batch sampler with a fixed number of positives per batch, for rare-positive datasets.

With ~2 % cancers (RSNA), most random batches of 8-16 mammograms hold no positive, and training
learns little from them.  :class:`BalancedBatchSampler` puts exactly ``pos_per_batch`` positives in
every batch (oversampling them) and fills the rest with a shuffled pass over the negatives.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt
from torch.utils.data import Sampler

from medbundle.data.folds import label_array

__all__ = ["BalancedBatchSampler"]


def _cycled_permutations(indices: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` draws from ``indices``: consecutive random permutations, so each index recurs only after all others."""
    cycles = -(-count // indices.size)
    return np.concatenate([rng.permutation(indices) for _ in range(cycles)])[:count]


class BalancedBatchSampler(Sampler[list[int]]):
    """Yields batches of dataset indices with exactly ``pos_per_batch`` positives each.

    Positives are drawn without replacement and reshuffled once all were used; negatives are one
    shuffled pass (repeated only if the epoch needs more negatives than exist), so with the default
    ``num_batches`` an epoch sees most negatives once and the positives several times.  Order within
    a batch is shuffled.  The batches depend only on ``(seed, epoch)``.

    Each ``iter()`` uses the current epoch and then advances it by one, so consecutive epochs differ
    even if nobody calls :meth:`set_epoch`; calling ``set_epoch(e)`` before an epoch (like
    ``DistributedSampler``) makes that epoch's batches exactly those of epoch ``e``.

    With ``world_size > 1`` all ranks build the same epoch stream and rank ``r`` takes batches
    ``r, r + world_size, ...``, so ranks get disjoint negatives and ``num_batches // world_size``
    batches each.

    Use it as ``DataLoader(dataset, batch_sampler=BalancedBatchSampler(...))``.

    Args:
        labels: per-item 0/1 labels, scalars or ``[x]``, in dataset order.
        batch_size: items per batch.
        pos_per_batch: positives per batch, at least 1 and below ``batch_size``.
        num_batches: batches per epoch over all ranks; default ``len(labels) // batch_size``.
        seed: base seed.
        rank: this process's rank.
        world_size: number of processes.
    """

    def __init__(
        self,
        labels: Sequence[object] | npt.ArrayLike,
        batch_size: int,
        pos_per_batch: int = 1,
        num_batches: int | None = None,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        y = label_array(labels)
        if not np.isin(y, (0.0, 1.0)).all():
            raise ValueError(f"labels must be 0 or 1, found {np.unique(y)[:5].tolist()}.")
        if not 1 <= pos_per_batch < batch_size:
            raise ValueError(
                f"pos_per_batch must be in [1, batch_size); got pos_per_batch={pos_per_batch}, batch_size={batch_size}."
            )
        self.positives = np.flatnonzero(y == 1.0)
        self.negatives = np.flatnonzero(y == 0.0)
        if self.positives.size == 0 or self.negatives.size == 0:
            raise ValueError(
                f"labels hold {self.positives.size} positives and {self.negatives.size} negatives; "
                "a balanced batch needs both. Use a plain sampler or check the label column."
            )
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}.")
        self.num_batches = len(y) // batch_size if num_batches is None else num_batches
        if self.num_batches // world_size < 1:
            raise ValueError(
                f"num_batches={self.num_batches} gives no batch per rank with world_size={world_size}; "
                "raise num_batches or lower batch_size."
            )
        self.batch_size = batch_size
        self.pos_per_batch = pos_per_batch
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next ``iter()`` yield the batches of ``epoch``.

        Args:
            epoch: epoch number (non-negative), e.g. ``engine.state.epoch``.
        """
        self.epoch = epoch

    def __len__(self) -> int:
        """Number of batches this rank yields per epoch."""
        return self.num_batches // self.world_size

    def __iter__(self) -> Iterator[list[int]]:
        """Yield this rank's batches for the current epoch, then advance the epoch."""
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        total = len(self) * self.world_size
        negatives_per_batch = self.batch_size - self.pos_per_batch
        positives = _cycled_permutations(self.positives, total * self.pos_per_batch, rng)
        negatives = _cycled_permutations(self.negatives, total * negatives_per_batch, rng)
        batches = np.concatenate(
            [positives.reshape(total, self.pos_per_batch), negatives.reshape(total, negatives_per_batch)], axis=1
        )
        batches = rng.permuted(batches, axis=1)
        for batch in batches[self.rank :: self.world_size]:
            yield batch.tolist()
