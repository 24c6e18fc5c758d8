"""The ``medbundle`` command line (python-fire): demo data and the demo training run."""

from __future__ import annotations

import logging
from pathlib import Path

import fire

__all__ = ["demo", "demo_data", "main"]

_WRITERS = {"rsna": "medbundle.demo.rsna:write_rsna_demo"}
# sizes for `medbundle demo`: enough positives per validation fold for a readable AUROC, ~5 min on 2 cores
_DEMO_OPTIONS = {"rsna": {"n_patients": 120, "positive_rate": 0.1}}


def _writer(task: str):
    if task not in _WRITERS:
        raise ValueError(f"unknown task {task!r}; choose one of {sorted(_WRITERS)}")
    module, name = _WRITERS[task].split(":")
    return getattr(__import__(module, fromlist=[name]), name)


def demo_data(task: str = "rsna", out: str = "demo_data/rsna", seed: int = 0, **options) -> dict:
    """Write the synthetic demo dataset of `task` in the competition's exact file layout.

    Args:
        task: which dataset ("rsna").
        out: output directory.
        seed: random seed; the same seed writes the same files.
        options: passed to the task's writer (e.g. --n_patients 200 --positive_rate 0.02).
    """
    summary = _writer(task)(out, seed=seed, **options)
    return {k: str(v) for k, v in summary.items() if not isinstance(v, dict)}


def demo(task: str = "rsna", out: str = "demo_data/rsna", bundle_dir: str | None = None, **overrides) -> None:
    """Write the demo data (if missing) and train the task's bundle briefly on it.

    Runs exactly what ``python -m monai.bundle run training`` runs, with the bundle's
    ``configs/demo.yaml`` overlay (small backbone, small images, few epochs, no downloads).

    Args:
        task: which bundle ("rsna").
        out: demo data directory.
        bundle_dir: the bundle folder; defaults to ``bundles/<task>`` under the current directory.
        overrides: extra config overrides, e.g. --epochs 3.
    """
    from monai.bundle import run

    if not (Path(out) / "train.csv").is_file():
        demo_data(task, out, **_DEMO_OPTIONS.get(task, {}))
    bundle = Path(bundle_dir or f"bundles/{task}")
    configs = [str(bundle / "configs" / name) for name in ("train.yaml", "demo.yaml")]
    for path in configs:
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path} not found: run from the repository root or pass --bundle_dir")
    run(
        run_id="training",
        config_file=configs,
        logging_file=str(bundle / "configs" / "logging.conf"),
        bundle_root=str(bundle),
        dataset_dir=out,
        **overrides,
    )


def main() -> None:
    """Entry point of the ``medbundle`` console script."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    fire.Fire({"demo_data": demo_data, "demo": demo})
