"""Timing and configuration helpers shared by the benchmark modules."""

from __future__ import annotations

import math
import os
import resource
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # benchmarks build timm networks from scratch; never reach the hub

BUNDLES = Path(__file__).resolve().parents[2] / "bundles"


def bundle_parser(bundle: str = "rsna", config: str = "train.yaml", demo: bool = False, **overrides: Any):
    """A ConfigParser of `bundle`'s `config` (plus demo.yaml's settings when `demo`) with `overrides` applied."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    folder = BUNDLES / bundle / "configs"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such bundle; the benchmarks run from a checkout of medbundle")
    parser.read_config([str(folder / config)])
    if "config_dir" in parser:  # train.yaml reads inference.yaml's preprocessing from there, whatever the working directory
        parser["config_dir"] = str(folder)
    if demo:
        parser.update(ConfigParser.load_config_file(str(folder / "demo.yaml")))
    parser.update(overrides)
    return parser


def benchmark_facts(task: str):
    """The :class:`~medbundle.tasks.BenchmarkFacts` of `task`.

    Raises:
        ValueError: unknown task, or one without benchmark facts; the message says which tasks have them.
    """
    from medbundle.tasks import get_task, tasks

    facts = get_task(task).benchmark
    if facts is None:
        raise ValueError(f"task {task!r} declares no benchmark facts; benchmark one of "
                         f"{[name for name, spec in tasks().items() if spec.benchmark]}.")
    return facts


def write_sized_set(task: str, folder: Path, n_images: int, source_size=None, training: bool = False) -> str:
    """A synthetic set of `task` (its demo's ``sized_set``) with at least `n_images` labelled images, or, when
    `training`, about `n_images` in fold 0's training part; returns the ``dataset_dir``."""
    from medbundle.tasks import get_task, resolve

    facts = benchmark_facts(task)
    count = math.ceil(n_images / facts.train_share) if training else n_images
    return resolve(get_task(task).demo.sized_set)(folder, count, source_size)


def best_seconds(run: Callable[[], object], repeats: int) -> float:
    """The shortest of `repeats` timed calls of `run` (the least disturbed by other processes)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def epoch_timer(trainer) -> list[float]:
    """Seconds of each training epoch of an Ignite `trainer`, validation excluded (EPOCH_STARTED to the last
    iteration); the list fills as the trainer runs."""
    from ignite.engine import Events

    times: list[float] = []
    start = {}
    trainer.add_event_handler(Events.EPOCH_STARTED, lambda _: start.update(t=time.perf_counter()))
    trainer.add_event_handler(
        Events.ITERATION_COMPLETED,
        lambda e: e.state.iteration % e.state.epoch_length == 0 and times.append(time.perf_counter() - start["t"]),
    )
    return times


def psnr(a, b) -> float:
    """PSNR in dB of two images in [0, 1]; inf when equal."""
    import numpy as np

    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def _rss_mb(pid: int) -> float:
    """Resident set size of process `pid` in MiB (0 when it has ended)."""
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            return [int(c) for c in children.read().split()]
    except FileNotFoundError:
        return []


class PeakRSS:
    """Peak resident memory of this process and of this process plus its children (DataLoader workers,
    multiprocessing pools) while the ``with`` block runs, sampled every `interval` seconds, in MiB.

    ``ru_maxrss`` cannot give this: it is the peak of the whole process life, not of one phase, and counts no
    worker. Samples from /proc (Linux); elsewhere the peaks stay 0.
    """

    def __init__(self, interval: float = 0.05) -> None:
        self.interval, self.main_mb, self.total_mb = interval, 0.0, 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        pid = os.getpid()
        while True:
            main = _rss_mb(pid)
            total = main + sum(_rss_mb(child) for child in _children(pid))
            self.main_mb, self.total_mb = max(self.main_mb, main), max(self.total_mb, total)
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> Self:
        if Path("/proc/self/statm").exists():
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.main_mb, self.total_mb = round(self.main_mb), round(self.total_mb)

    @staticmethod
    def process_peak_mb() -> float:
        """This process's lifetime peak RSS (``ru_maxrss``) in MiB."""
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
