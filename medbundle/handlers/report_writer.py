"""Write an evaluation's report page (``<eval_dir>/report/index.html``) once the evaluator has written its files."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import ignite.distributed as idist
from ignite.engine import Engine, Events

__all__ = ["ReportWriter"]

logger = logging.getLogger(__name__)


class ReportWriter:
    """Build the report of an evaluation after :class:`~medbundle.handlers.PredictionWriter` (attach it later).

    It records what the report needs besides the evaluation's files in ``report/inputs.json``, so that
    ``medbundle report --run <eval_dir>`` rebuilds the page, then calls :func:`medbundle.report.build_report`.

    Args:
        eval_dir: the folder PredictionWriter writes to.
        checkpoint: the evaluated ``model.pt``; an ensemble's evaluation (``ensemble=True`` among `options`): the
            member whose Grad-CAM maps show the evidence.
        task: the bundle's task.
        bundle: the bundle folder (Grad-CAM preprocesses with its inference chain).
        datalist: the evaluated items (``image``, ``image_id``), for the evidence images.
        dataset_dir: the data set (its metadata CSV holds the subgroup attributes).
        log_dir: the training run's TensorBoard folder.
        calibrate: fit the calibration here (temperature; binary: and logit bias) and store it in `checkpoint` (the validation split only).
        enabled: False writes no report.
        options: further :func:`~medbundle.report.build_report` arguments (``k``, ``attributes_csv``,
            ``target_layer``, ``n_resamples``, ``ensemble``).
    """

    def __init__(
        self,
        eval_dir: str | os.PathLike,
        checkpoint: str | os.PathLike,
        task: str,
        bundle: str | os.PathLike | None = None,
        datalist: Iterable[Mapping[str, Any]] | None = None,
        dataset_dir: str | os.PathLike | None = None,
        log_dir: str | os.PathLike | None = None,
        calibrate: bool = False,
        enabled: bool = True,
        **options: Any,
    ) -> None:
        self.enabled = enabled
        images = {str(item["image_id"]): str(item["image"]) for item in datalist or () if "image_id" in item}
        self.inputs = {
            "eval_dir": str(eval_dir), "checkpoint": str(checkpoint), "task": task,
            "bundle": None if bundle is None else str(bundle), "images": images,
            "dataset_dir": None if dataset_dir is None else str(dataset_dir),
            "log_dir": None if log_dir is None else str(log_dir), "calibrate": bool(calibrate), **options,
        }  # fmt: skip

    def attach(self, engine: Engine) -> None:
        if self.enabled:
            engine.add_event_handler(Events.COMPLETED, self.completed)

    def completed(self, engine: Engine) -> None:
        if idist.get_rank() != 0:
            return
        from medbundle.report.build import INPUTS_FILE, build_report

        folder = Path(self.inputs["eval_dir"]) / "report"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / INPUTS_FILE).write_text(json.dumps(self.inputs, indent=1))
        page = build_report(**self.inputs)
        logger.info("report written to %s (open it in a browser)", page)
