"""Tests of ProgressBarHandler: a tqdm bar in a terminal, periodic log lines with the loss otherwise."""

from __future__ import annotations

import logging

import torch
from ignite.engine import Engine
from ignite.handlers import ProgressBar

from medbundle.handlers import ProgressBarHandler, progress_bar


class _Loss:
    """A loss that records being read as a number (a CUDA loss would make the host wait for the GPU)."""

    def __init__(self, value: float, read: set[float]) -> None:
        self.value, self.read = value, read

    def __float__(self) -> float:
        self.read.add(self.value)
        return self.value


def test_redirected_output_logs_the_loss_every_quarter_and_reads_it_only_then(caplog, monkeypatch):
    monkeypatch.setattr(progress_bar, "interactive", lambda: False)
    read: set[float] = set()
    engine = Engine(lambda engine, batch: [{"loss": _Loss(batch, read)}])
    ProgressBarHandler(loss_key="loss", desc="train").attach(engine)
    with caplog.at_level(logging.INFO, logger="medbundle.progress"):
        engine.run([0.5, 0.25, 0.125, 0.0625, 1.0, 2.0, 3.0, 4.0], max_epochs=1)
    lines = [r.getMessage() for r in caplog.records if r.name == "medbundle.progress"]  # not Ignite's own lines
    assert [line.split(" (")[0] for line in lines] == ["train epoch 1: 25%", "train epoch 1: 50%", "train epoch 1: 75%",
                                                      "train epoch 1: 100%"]
    assert lines[0].endswith(", loss 0.2500") and lines[-1].endswith(", loss 4.0000")
    assert read == {0.25, 0.0625, 2.0, 4.0}  # the losses of the logged iterations only


def test_without_a_loss_key_lines_carry_no_loss(caplog, monkeypatch):
    monkeypatch.setattr(progress_bar, "interactive", lambda: False)
    engine = Engine(lambda engine, batch: None)
    ProgressBarHandler(loss_key=None, every=50).attach(engine)
    with caplog.at_level(logging.INFO, logger="medbundle.progress"):
        engine.run(range(4), max_epochs=1)
    lines = [r.getMessage() for r in caplog.records if r.name == "medbundle.progress"]  # not Ignite's own lines
    assert [line.split(" (")[0] for line in lines] == ["Engine epoch 1: 50%", "Engine epoch 1: 100%"]
    assert not any("loss" in line for line in lines)


def test_terminal_gets_ignites_bar_with_the_loss(monkeypatch):
    monkeypatch.setattr(progress_bar, "interactive", lambda: True)
    attached = {}
    monkeypatch.setattr(ProgressBar, "attach", lambda self, engine, output_transform=None: attached.update(
        bar=self, transform=output_transform))
    ProgressBarHandler(loss_key="loss", desc="train").attach(Engine(lambda engine, batch: None))
    assert attached["bar"].tqdm_kwargs["desc"] == "train"
    assert attached["transform"]([{"loss": torch.tensor(0.5)}]) == {"loss": torch.tensor(0.5)}
