"""Tests of the balanced batch sampler."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from medbundle.data import BalancedBatchSampler


def labels_with(n_pos, n_neg):
    """``[x]`` labels with ``n_pos`` positives spread evenly among ``n_neg`` negatives."""
    labels = [[0.0]] * (n_pos + n_neg)
    for index in np.linspace(0, n_pos + n_neg - 1, n_pos).astype(int):
        labels[index] = [1.0]
    return labels


def test_exact_positives_per_batch():
    labels = labels_with(10, 90)
    sampler = BalancedBatchSampler(labels, batch_size=8, pos_per_batch=2)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 100 // 8
    for batch in batches:
        assert len(batch) == 8 and len(set(batch)) == 8
        assert sum(labels[i][0] for i in batch) == 2


def test_negatives_once_per_epoch_and_positives_oversampled():
    labels = labels_with(2, 45)
    sampler = BalancedBatchSampler(labels, batch_size=10, pos_per_batch=1, num_batches=5)
    counts = Counter(i for batch in sampler for i in batch)
    assert all(counts[i] == 1 for i, label in enumerate(labels) if label == [0.0])
    assert sum(1 for i, label in enumerate(labels) if label == [0.0] and i in counts) == 45
    assert sorted(counts[i] for i, label in enumerate(labels) if label == [1.0]) == [2, 3]  # 5 draws, 2 positives


def test_deterministic_per_seed_and_epoch():
    labels = labels_with(10, 90)
    first, second = BalancedBatchSampler(labels, 10, seed=5), BalancedBatchSampler(labels, 10, seed=5)
    first.set_epoch(3)
    second.set_epoch(3)
    assert list(first) == list(second)
    assert list(BalancedBatchSampler(labels, 10, seed=6)) != list(BalancedBatchSampler(labels, 10, seed=5))


def test_epochs_advance_without_set_epoch():
    labels = labels_with(10, 90)
    sampler = BalancedBatchSampler(labels, 10)
    epoch0, epoch1 = list(sampler), list(sampler)
    assert epoch0 != epoch1
    sampler.set_epoch(1)
    assert list(sampler) == epoch1


def test_ranks_differ_and_split_the_epoch():
    labels = labels_with(10, 90)
    ranks = [BalancedBatchSampler(labels, 10, num_batches=9, rank=r, world_size=2) for r in (0, 1)]
    batches = [list(sampler) for sampler in ranks]
    assert [len(sampler) for sampler in ranks] == [4, 4]
    assert batches[0] != batches[1]
    negatives = [{i for batch in b for i in batch if labels[i] == [0.0]} for b in batches]
    assert not negatives[0] & negatives[1]


def test_invalid_arguments():
    with pytest.raises(ValueError, match="0 positives"):
        BalancedBatchSampler([0, 0, 0, 0], batch_size=2)
    with pytest.raises(ValueError, match="pos_per_batch must be in"):
        BalancedBatchSampler([0, 1, 0, 1], batch_size=2, pos_per_batch=2)
    with pytest.raises(ValueError, match="rank must be in"):
        BalancedBatchSampler([0, 1, 0, 1], batch_size=2, rank=2, world_size=2)


def test_works_as_dataloader_batch_sampler():
    labels = labels_with(4, 28)
    loader = DataLoader(torch.arange(32), batch_sampler=BalancedBatchSampler(labels, batch_size=4))
    batches = list(loader)
    assert len(batches) == 8 and all(batch.shape == (4,) for batch in batches)
