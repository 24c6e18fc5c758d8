"""A plain function run as a one-iteration Ignite engine, so that ``--tracking`` has an engine to attach to.

MONAI's ``--tracking`` patches its handler into a bundle's ``evaluator`` (with ``handlers``); the ensemble bundle
computes with functions, not an engine, so without one its evaluation could not be tracked at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ignite.engine import Engine

__all__ = ["TrackedStep"]


class TrackedStep(Engine):
    """Run a step once, as one iteration of one epoch, with `val_handlers` attached (MONAI's handler protocol).

    The step is given to :meth:`run`, not to the constructor, so that building the engine (as MONAI's property
    checks do) computes nothing.

    Args:
        val_handlers: objects with ``attach(engine)``: ``--tracking``'s handler, the tracking recorder.
    """

    def __init__(self, val_handlers: Sequence[Any] | None = None) -> None:
        super().__init__(lambda engine, step: step())
        for handler in val_handlers or ():
            handler.attach(self)

    def run(self, step: Callable[[], Any]) -> Any:  # type: ignore[override]
        """Do `step` once; returns the engine state (``state.output`` is what `step` returned)."""
        return super().run([step], max_epochs=1)
