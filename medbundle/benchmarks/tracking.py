"""What experiment tracking costs a training epoch: the rsna demo trained untracked, with ``--tracking mlflow`` (the
bundle's local SQLite store) and with ``--tracking tracking/wandb.yaml`` (W&B offline), in the same process."""

from __future__ import annotations

import itertools
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medbundle.benchmarks.common import BUNDLES
from medbundle.benchmarks.report import Report

#: --tracking's value per condition; None: untracked (the reference)
TRACKERS = {"none": None, "mlflow": "mlflow", "wandb": str(BUNDLES.parent / "tracking" / "wandb.yaml")}


def _epoch_seconds(trainer) -> list[float]:
    """Seconds of each whole epoch of `trainer`: its iterations, validation and every handler (trackers included)."""
    from ignite.engine import Events

    marks: list[float] = []
    trainer.add_event_handler(Events.EPOCH_STARTED, lambda _: marks.append(time.perf_counter()))
    trainer.add_event_handler(Events.COMPLETED, lambda _: marks.append(time.perf_counter()))
    return marks


def _run(tracking: str | None, data: Path, root: Path, overrides: dict[str, Any]) -> list[float]:
    from monai.bundle import ConfigWorkflow

    configs = BUNDLES / "rsna" / "configs"
    workflow = ConfigWorkflow(
        config_file=[str(configs / "train.yaml"), str(configs / "demo.yaml")], workflow_type="train", run_id="training",
        logging_file=False, tracking=tracking, dataset_dir=str(data), bundle_root=str(root), config_dir=str(configs),
        **overrides,
    )  # fmt: skip
    workflow.initialize()
    marks = _epoch_seconds(workflow.parser.get_parsed_content("train#trainer"))
    workflow.run()
    workflow.finalize()
    return [b - a for a, b in itertools.pairwise(marks)]


def tracking(
    trackers: Sequence[str] = ("none", "mlflow", "wandb"),
    epochs: int = 4,
    n_patients: int = 40,
    image_size: tuple[int, int] = (256, 128),
    num_workers: int = 0,
) -> Report:
    """Seconds per training epoch (validation and handlers included) of the rsna demo, untracked and tracked.

        python scripts/benchmark.py tracking

    The demo's settings (resnet10t, batch 16, linear head) on a synthetic RSNA set of `n_patients` (4 images each):
    each condition trains `epochs` epochs from the same seed in its own bundle folder; the first epoch is left out
    (the cache fill and the trackers' start), the median of the others is reported with its ratio to the untracked
    run. MLflow logs the loss and learning rates every iteration and the metrics every epoch to the bundle's SQLite
    store; W&B runs offline (``WANDB_MODE=offline``).

    Args:
        trackers: conditions among ``none``, ``mlflow``, ``wandb``.
        epochs: epochs per condition (at least 2).
        n_patients: synthetic patients.
        image_size: the network's input size.
        num_workers: DataLoader workers.
    """
    from medbundle.demo import write_rsna_demo

    unknown = sorted(set(trackers) - set(TRACKERS))
    if unknown or epochs < 2:
        raise ValueError(f"--trackers {unknown}: choose among {sorted(TRACKERS)}; --epochs {epochs}: at least 2.")
    overrides = {"epochs": epochs, "image_size": list(image_size), "num_workers": num_workers, "progress": False,
                 "patience": epochs, "min_epochs": epochs, "seed": 0}  # fmt: skip
    rows: list[dict[str, Any]] = []
    previous = os.environ.get("WANDB_MODE")
    os.environ["WANDB_MODE"] = "offline"
    try:
        with tempfile.TemporaryDirectory(prefix="medbundle_bench_tracking_") as work:
            work = Path(work)
            write_rsna_demo(work / "data", n_patients=n_patients, positive_rate=0.2, seed=0)
            for name in trackers:
                seconds = _run(TRACKERS[name], work / "data", work / name, overrides)
                rows.append({"tracking": name, "epochs": len(seconds), "seconds": statistics.median(seconds[1:]),
                             "per_epoch": " ".join(f"{s:.2f}" for s in seconds)})  # fmt: skip
    finally:
        if previous is None:
            os.environ.pop("WANDB_MODE", None)
        else:
            os.environ["WANDB_MODE"] = previous
    reference = next((row["seconds"] for row in rows if row["tracking"] == "none"), None)
    for row in rows:
        row["ratio"] = row["seconds"] / reference if reference else None
    title = (f"rsna demo training (resnet10t, {image_size[0]}x{image_size[1]}, batch 16, {n_patients * 4} images), "
             f"median seconds per epoch after the first, validation and handlers included; ratio to untracked")  # fmt: skip
    return Report(
        name="tracking",
        title=title,
        columns=[("tracking", "tracking"), ("seconds", "s per epoch"), ("ratio", "/ untracked"),
                 ("per_epoch", "every epoch (s)")],
        rows=rows,
        settings={"trackers": list(trackers), "epochs": epochs, "n_patients": n_patients,
                  "image_size": list(image_size), "num_workers": num_workers},
    )
