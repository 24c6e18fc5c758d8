from __future__ import annotations

from ignite.engine import Engine

from medbundle.data import BalancedBatchSampler
from medbundle.handlers import SamplerEpochHandler


def _batches_per_epoch(start_epoch: int, max_epochs: int) -> dict[int, list]:
    sampler = BalancedBatchSampler([1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0], batch_size=4, pos_per_batch=1, seed=3)
    seen: dict[int, list] = {}
    engine = Engine(lambda e, batch: seen.setdefault(e.state.epoch, []).append(list(batch)))
    SamplerEpochHandler(sampler).attach(engine)
    engine.load_state_dict({"iteration": start_epoch * len(sampler), "epoch_length": len(sampler), "max_epochs": max_epochs})
    engine.run(sampler)
    return seen


def test_batches_follow_the_trainer_epoch_so_a_resumed_run_matches():
    full = _batches_per_epoch(0, 3)
    resumed = _batches_per_epoch(2, 3)
    assert list(resumed) == [3]
    assert resumed[3] == full[3]
    assert full[1] != full[2]
