"""Progress on long work: a tqdm bar in a terminal, a periodic log line in a redirected log.

A tqdm bar redraws itself with carriage returns; written to a file (a cluster job's log, ``| tee``) it
becomes thousands of partial frames that bury the messages that matter. Everything medbundle shows
progress for goes through :func:`progress`, which draws the bar only when stderr is a terminal and
otherwise logs one line every ``every`` percent.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

__all__ = ["PeriodicLog", "interactive", "progress"]

T = TypeVar("T")
logger = logging.getLogger("medbundle.progress")


def interactive() -> bool:
    """True when stderr is a terminal, where a redrawn bar is readable."""
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


class PeriodicLog:
    """Log ``"<desc>: 40% (120/300 img, 12 s)"`` each time another `every` percent of `total` is done.

    Args:
        total: number of steps.
        desc: what is being done, e.g. "caching train".
        unit: the steps' unit.
        every: percent between two lines.
    """

    def __init__(self, total: int, desc: str, unit: str = "it", every: int = 10) -> None:
        self.total, self.desc, self.unit, self.every = max(int(total), 0), desc, unit, every
        self.done = 0
        self._next = every
        self._start = time.monotonic()

    def update(self, n: int = 1, suffix: str = "") -> None:
        """Count `n` more steps and log when a new multiple of `every` percent is reached."""
        self.done += n
        if not self.total:
            return
        percent = 100 * self.done // self.total
        if percent >= self._next or self.done == self.total:
            elapsed = time.monotonic() - self._start
            logger.info(
                "%s: %d%% (%d/%d %s, %.0f s)%s", self.desc, percent, self.done, self.total, self.unit, elapsed, suffix
            )
            self._next = (percent // self.every + 1) * self.every


def progress(iterable: Iterable[T], total: int | None = None, desc: str = "", unit: str = "it", enabled: bool = True) -> Iterator[T]:
    """Iterate `iterable` with a tqdm bar in a terminal, or periodic log lines when output is redirected.

    Args:
        iterable: the work.
        total: its length, when ``len()`` does not give it.
        desc: what is being done.
        unit: the steps' unit.
        enabled: False shows nothing.
    """
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    if not enabled:
        yield from iterable
    elif interactive():
        yield from tqdm(iterable, total=total, desc=desc, unit=unit)
    else:
        log = PeriodicLog(total or 0, desc, unit)
        for item in iterable:
            yield item
            log.update()
