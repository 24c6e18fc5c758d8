"""What the evaluation report costs: the isic bundle's evaluation of about 1,000 demo images with and without it."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from medbundle.benchmarks.common import BUNDLES, write_sized_set
from medbundle.benchmarks.report import Report

__all__ = ["evaluation_report"]


def _evaluate(data: str, root: Path, overrides: dict[str, Any]) -> float:
    """Seconds of one evaluation run (its dataset cached already), building the workflow excluded."""
    from monai.bundle import ConfigWorkflow

    configs = BUNDLES / "isic" / "configs"
    workflow = ConfigWorkflow(
        config_file=[str(configs / "train.yaml"), str(configs / "evaluate.yaml")], workflow_type="eval",
        run_id="evaluating", logging_file=False, dataset_dir=data, bundle_root=str(root), config_dir=str(configs),
        **overrides,
    )  # fmt: skip
    workflow.initialize()
    workflow.parser.get_parsed_content("validate#evaluator")
    start = time.perf_counter()
    workflow.run()
    seconds = time.perf_counter() - start
    workflow.finalize()
    return seconds


def evaluation_report(n_images: int = 1000, image_size: tuple[int, int] = (64, 64), k: int = 3, n_resamples: int = 1000) -> Report:
    """Seconds of the isic bundle's evaluation of `n_images` demo images without the report, and with it.

        python scripts/benchmark.py evaluation_report

    A resnet10t trained one epoch on twice `n_images` synthetic lesions (2 folds: fold 0's validation half is
    evaluated) is evaluated three times: once to fill the cache, then with ``report: false`` and ``report: true``
    (the bootstrap intervals with `n_resamples`, calibration, subgroups, curves and Grad-CAM on `k` images per
    section). The difference is what the report adds; the ratio says how much of an evaluation it is.

    Args:
        n_images: images evaluated (about).
        image_size: the network's input size.
        k: Grad-CAM images per section.
        n_resamples: bootstrap resamples per interval.
    """
    from monai.bundle import ConfigWorkflow

    overrides: dict[str, Any] = {
        "model": "resnet10t", "pretrained": False, "image_size": list(image_size), "n_folds": 2, "num_workers": 0,
        "progress": False, "batch_size": 32,
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="medbundle_bench_report_") as work:
        work = Path(work)
        data = write_sized_set("isic", work / "data", 2 * n_images)
        configs = BUNDLES / "isic" / "configs"
        training = ConfigWorkflow(
            config_file=str(configs / "train.yaml"), workflow_type="train", run_id="training", logging_file=False,
            dataset_dir=data, bundle_root=str(work / "b"), config_dir=str(configs), epochs=1, val_interval=1,
            min_epochs=0, data_fraction=1.0, **overrides,
        )  # fmt: skip
        training.initialize()
        training.run()
        training.finalize()
        evaluation = {**overrides, "report_k": k, "report_resamples": n_resamples}
        _evaluate(data, work / "b", {**evaluation, "report": False})  # fills the validation cache
        plain = _evaluate(data, work / "b", {**evaluation, "report": False})
        with_report = _evaluate(data, work / "b", {**evaluation, "report": True})
        evaluated = len((work / "b" / "outputs" / "fold0" / "predictions_image.csv").read_text().splitlines()) - 1
    rows = [
        {"evaluation": "without the report", "images": evaluated, "seconds": plain, "ratio": 1.0},
        {"evaluation": "with the report", "images": evaluated, "seconds": with_report, "ratio": with_report / plain},
        {"evaluation": "the report alone", "images": evaluated, "seconds": with_report - plain, "ratio": None},
    ]
    return Report(
        name="evaluation_report",
        title=(f"isic evaluation of {evaluated} demo images (resnet10t, {image_size[0]}x{image_size[1]}, cached), with "
               f"and without the report ({n_resamples} bootstrap resamples, Grad-CAM on {k} images per section)"),
        columns=[("evaluation", "evaluation"), ("images", "images"), ("seconds", "seconds"), ("ratio", "/ without")],
        rows=rows,
        settings={"n_images": n_images, "image_size": list(image_size), "k": k, "n_resamples": n_resamples},
    )
