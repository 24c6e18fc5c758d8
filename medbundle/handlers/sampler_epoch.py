"""Tell a batch sampler which epoch starts, so shuffling follows the trainer's epoch (also after --resume)."""

from __future__ import annotations

from typing import Any

from ignite.engine import Engine, Events

__all__ = ["SamplerEpochHandler"]


class SamplerEpochHandler:
    """Call ``sampler.set_epoch(engine.state.epoch)`` at every EPOCH_STARTED.

    MONAI's trainers do this only for a `DistributedSampler` in `data_loader.sampler`; a batch sampler
    such as `BalancedBatchSampler` needs it too, or a resumed run would replay the first epochs' batches.
    Ignite creates each epoch's data iterator after EPOCH_STARTED, so the new epoch is seen in time.

    Args:
        sampler: any object with ``set_epoch(int)``.
    """

    def __init__(self, sampler: Any) -> None:
        self.sampler = sampler

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self)

    def __call__(self, engine: Engine) -> None:
        self.sampler.set_epoch(engine.state.epoch)
