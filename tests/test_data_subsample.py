"""NegativeSubsampler and subsample_negatives: all positives, a fresh or fixed share of negatives."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from medbundle.data import NegativeSubsampler, subsample_negatives, validation_subset

LABELS = [1.0] * 5 + [0.0] * 95  # positives are indices 0..4


def _epoch(sampler: NegativeSubsampler, epoch: int) -> list[int]:
    sampler.set_epoch(epoch)
    return list(sampler)


def test_every_epoch_holds_all_positives_and_the_share_of_negatives():
    sampler = NegativeSubsampler(LABELS, data_fraction=0.2, seed=3)
    for epoch in range(4):
        items = _epoch(sampler, epoch)
        assert len(items) == len(sampler) == 5 + 19
        assert set(range(5)) <= set(items) and len(set(items)) == len(items)


def test_negatives_are_fresh_each_epoch_and_all_seen_over_one_pass():
    sampler = NegativeSubsampler(LABELS, data_fraction=0.2, seed=3)
    seen = Counter(i for epoch in range(5) for i in _epoch(sampler, epoch) if i >= 5)
    # 5 epochs of 19 negatives walk once through the 95 negatives
    assert sorted(seen) == list(range(5, 100)) and set(seen.values()) == {1}


def test_negatives_per_positive_sets_the_ratio():
    sampler = NegativeSubsampler(LABELS, neg_per_pos=3, seed=0)
    items = _epoch(sampler, 0)
    assert sum(i < 5 for i in items) == 5 and sum(i >= 5 for i in items) == 15
    assert len(NegativeSubsampler(LABELS, neg_per_pos=1000)) == 100  # capped at all negatives


def test_full_fraction_is_a_shuffle_of_everything():
    sampler = NegativeSubsampler(LABELS, seed=1)
    first, second = _epoch(sampler, 0), _epoch(sampler, 1)
    assert sorted(first) == sorted(second) == list(range(100)) and first != second


def test_order_depends_only_on_seed_and_epoch():
    a, b = NegativeSubsampler(LABELS, 0.3, seed=7), NegativeSubsampler(LABELS, 0.3, seed=7)
    _epoch(a, 0), _epoch(a, 1)
    assert _epoch(a, 2) == _epoch(b, 2)  # a resumed run (b jumps to epoch 2) sees the same items
    assert _epoch(a, 2) != _epoch(NegativeSubsampler(LABELS, 0.3, seed=8), 2)
    a.set_epoch(4)
    list(a)
    assert a.epoch == 5  # iterating advances the epoch when nobody calls set_epoch


def test_ranks_split_one_epoch_padded_to_equal_length():
    ranks = [NegativeSubsampler(LABELS, 0.2, seed=3, rank=r, world_size=3) for r in range(3)]
    parts = [_epoch(s, 1) for s in ranks]
    assert {len(p) for p in parts} == {8}  # ceil(24 / 3)
    assert set().union(*parts) == set(_epoch(NegativeSubsampler(LABELS, 0.2, seed=3), 1))


def test_in_a_dataloader():
    sampler = NegativeSubsampler(LABELS, neg_per_pos=2, seed=0)
    loader = DataLoader(torch.tensor(LABELS), sampler=sampler, batch_size=4, drop_last=True)
    batches = list(loader)
    assert [len(b) for b in batches] == [4, 4, 4]  # 15 items: 3 full batches, the last 3 items dropped


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"data_fraction": 0.0}, "data_fraction"),
        ({"data_fraction": 1.5}, "data_fraction"),
        ({"neg_per_pos": 0}, "neg_per_pos"),
        ({"rank": 2, "world_size": 2}, "rank"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NegativeSubsampler(LABELS, **kwargs)


def test_labels_without_positives_are_refused():
    with pytest.raises(ValueError, match="0 positives"):
        NegativeSubsampler([0.0] * 10, 0.5)
    with pytest.raises(ValueError, match="0 or 1"):
        NegativeSubsampler([0.0, 2.0], 0.5)


def test_subsample_negatives_is_fixed_and_keeps_order():
    datalist = [{"label": [y], "image_id": str(i)} for i, y in enumerate(LABELS)]
    kept = subsample_negatives(datalist, 0.1, seed=0)
    ids = [int(item["image_id"]) for item in kept]
    assert ids == sorted(ids) and set(range(5)) <= set(ids) and len(ids) == 5 + 10
    assert kept == subsample_negatives(datalist, 0.1, seed=0)
    assert kept != subsample_negatives(datalist, 0.1, seed=1)
    assert subsample_negatives(datalist, 1.0) == datalist
    assert np.isclose(len(subsample_negatives(datalist, 0.5)), 5 + 48)  # round(95 * 0.5) = 48 (banker's)


def test_epoch_labels_give_the_epoch_ratio_as_positive_weight():
    from medbundle.losses import positive_weight

    assert positive_weight(NegativeSubsampler(LABELS).epoch_labels) == pytest.approx(95 / 5)
    assert positive_weight(NegativeSubsampler(LABELS, data_fraction=0.2).epoch_labels) == pytest.approx(19 / 5)
    assert positive_weight(NegativeSubsampler(LABELS, neg_per_pos=3).epoch_labels) == pytest.approx(3.0)


def test_validation_subset_scores_a_small_split_whole_and_a_large_one_in_part():
    small = [{"label": [float(i % 20 == 0)]} for i in range(1000)]  # 950 negatives
    assert validation_subset(small) == small
    assert validation_subset(small, max_negatives=900, data_fraction=0.1) == subsample_negatives(small, 0.1, seed=0)
    assert validation_subset(small, 0.5, seed=3) == subsample_negatives(small, 0.5, seed=3)
    with pytest.raises(ValueError, match="val_data_fraction must be 'auto'"):
        validation_subset(small, "all")
