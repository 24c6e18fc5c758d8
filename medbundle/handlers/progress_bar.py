"""Progress of a MONAI engine: a tqdm bar in a terminal, a periodic log line when the output is redirected."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ignite.engine import Engine, Events
from ignite.handlers import ProgressBar
from monai.handlers import from_engine

from medbundle.progress import PeriodicLog, interactive

__all__ = ["ProgressBarHandler"]


class _LossSuffix:
    """``", loss 0.1234"``, read from an iteration's output only when a log line prints it.

    Logging formats its arguments only for a line it writes, and most iterations write none: reading a
    CUDA loss as a Python number would make the host wait for the GPU at every iteration.
    """

    def __init__(self, key: str, extract: Callable[[Any], Any], output: Any) -> None:
        self.key, self.extract, self.output = key, extract, output

    def __str__(self) -> str:
        return f", {self.key} {float(self.extract(self.output)):.4f}"


class ProgressBarHandler:
    """Attach Ignite's `ProgressBar` with the running loss, the MONAI-handler way (`attach(engine)`).

    Ignite's `ProgressBar.attach` takes its options at attach time, which a bundle's handler list
    cannot pass; this wrapper takes them in `__init__`. When stderr is not a terminal (a job log, a pipe)
    the bar's carriage-return frames would fill the log, so it logs one line per `every` percent of each
    epoch instead (:class:`medbundle.progress.PeriodicLog`), with the loss, which is read only for those lines.

    Args:
        loss_key: key of the loss in `engine.state.output` to show, or None for a plain bar (evaluators).
        persist: keep the finished bar on screen.
        desc: bar label; defaults to the engine's class name.
        every: percent of an epoch between two log lines when the output is not a terminal.
    """

    def __init__(self, loss_key: str | None = "loss", persist: bool = False, desc: str | None = None, every: int = 25) -> None:
        self.loss_key = loss_key
        self.persist = persist
        self.desc = desc
        self.every = every

    def attach(self, engine: Engine) -> None:
        desc = self.desc or type(engine).__name__
        extract = from_engine([self.loss_key], first=True) if self.loss_key is not None else None
        if interactive():
            transform = None if extract is None else (lambda output: {self.loss_key: extract(output)})
            ProgressBar(persist=self.persist, desc=desc).attach(engine, output_transform=transform)
            return

        def start(engine: Engine) -> None:
            self._log = PeriodicLog(engine.state.epoch_length or 0, f"{desc} epoch {engine.state.epoch}", "iterations",
                                    self.every)

        def step(engine: Engine) -> None:
            self._log.update(1, "" if extract is None else _LossSuffix(self.loss_key, extract, engine.state.output))

        engine.add_event_handler(Events.EPOCH_STARTED, start)
        engine.add_event_handler(Events.ITERATION_COMPLETED, step)
