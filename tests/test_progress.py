from __future__ import annotations

import logging

from medbundle import progress as progress_module
from medbundle.progress import PeriodicLog, progress


def test_redirected_output_gets_one_log_line_per_step_of_percent(caplog, monkeypatch):
    monkeypatch.setattr(progress_module, "interactive", lambda: False)
    with caplog.at_level(logging.INFO, logger="medbundle.progress"):
        assert list(progress(range(40), desc="caching train", unit="img")) == list(range(40))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 10 and lines[0].startswith("caching train: 10% (4/40 img") and "100% (40/40 img" in lines[-1]
    assert not any("\r" in line for line in lines)


def test_disabled_progress_shows_nothing(caplog, monkeypatch):
    monkeypatch.setattr(progress_module, "interactive", lambda: False)
    with caplog.at_level(logging.INFO, logger="medbundle.progress"):
        assert list(progress([1, 2], enabled=False)) == [1, 2]
    assert not caplog.records


def test_periodic_log_skips_percent_steps_it_jumps_over(caplog):
    log = PeriodicLog(total=3, desc="epoch 1", unit="iterations", every=25)
    with caplog.at_level(logging.INFO, logger="medbundle.progress"):
        for _ in range(3):
            log.update(1, ", loss 0.5")
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == ["epoch 1: 33%", "epoch 1: 66%", "epoch 1: 100%"]
    assert caplog.records[-1].getMessage().endswith(", loss 0.5")
