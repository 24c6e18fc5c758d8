"""A tqdm progress bar for MONAI engines, declarable in a bundle's handler list."""

from __future__ import annotations

from ignite.engine import Engine
from ignite.handlers import ProgressBar
from monai.handlers import from_engine

__all__ = ["ProgressBarHandler"]


class ProgressBarHandler:
    """Attach Ignite's `ProgressBar` with the running loss, the MONAI-handler way (`attach(engine)`).

    Ignite's `ProgressBar.attach` takes its options at attach time, which a bundle's handler list
    cannot pass; this wrapper takes them in `__init__`.

    Args:
        loss_key: key of the loss in `engine.state.output` to show, or None for a plain bar (evaluators).
        persist: keep the finished bar on screen.
        desc: bar label; defaults to the engine's class name.
    """

    def __init__(self, loss_key: str | None = "loss", persist: bool = False, desc: str | None = None) -> None:
        self.loss_key = loss_key
        self.persist = persist
        self.desc = desc

    def attach(self, engine: Engine) -> None:
        bar = ProgressBar(persist=self.persist, desc=self.desc or type(engine).__name__)
        transform = None
        if self.loss_key is not None:
            extract = from_engine([self.loss_key], first=True)
            transform = lambda output: {self.loss_key: extract(output)}  # noqa: E731
        bar.attach(engine, output_transform=transform)
