"""The part of a tracked run that MONAI's ``MLFlowHandler`` leaves out: parameters, tags and the run's files.

``--tracking mlflow`` appends an ``MLFlowHandler`` to the engines of a bundle: it opens a run, logs the training
loss per iteration, the learning rates and every entry of ``engine.state.metrics`` per epoch (per-class scores
included), and the config as run. Each medbundle bundle has a :class:`TrackingRecorder` among its handlers. It
does nothing unless a tracker was attached to the same engine, and otherwise adds to that tracker's run:

- every top-level key as a parameter (:func:`~medbundle.tracking.params.run_params`);
- tags: task, fold, backbone, stage (train / evaluate / inference), the git commit and, inside a sweep, the
  parent run (``MEDBUNDLE_PARENT_RUN_ID``, set by ``scripts/sweep.py``);
- when the engine completes: the files of `artifacts` written during this run (training: ``model.pt``;
  evaluation: ``metrics.json``, the prediction CSVs, the ROC and confusion-matrix images) and the numbers of
  ``metrics.json`` as metrics; then it ends the run where MONAI's handler would leave it open (the
  evaluator's handler of ``evaluate.yaml`` does, and W&B's handlers all do).

It also serves :class:`~medbundle.tracking.wandb_handler.WandBHandler`, the W&B counterpart of
``MLFlowHandler`` (``--tracking tracking/wandb.yaml``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import types
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ignite.engine import Engine, Events

from medbundle.tracking.params import run_params, run_tags

__all__ = ["PARENT_RUN_ENV", "TrackingRecorder", "flat_numbers"]

logger = logging.getLogger(__name__)

#: environment variable naming the MLflow run that a sweep's runs nest under
PARENT_RUN_ENV = "MEDBUNDLE_PARENT_RUN_ID"


def flat_numbers(tree: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The finite numbers of a nested mapping (``metrics.json``) as ``{"image/auroc": 0.91, ...}``."""
    out: dict[str, float] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out |= flat_numbers(value, f"{name}/")
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[name] = float(value)
    return out


def _handlers_on(engine: Engine) -> Iterator[Any]:
    """The handler objects `engine` calls: owners of bound methods and callable objects (Ignite keeps no other list)."""
    seen: set[int] = set()
    for entries in engine._event_handlers.values():
        for function, *_ in entries:
            owner = getattr(function, "__self__", None)
            if owner is None and not isinstance(function, types.FunctionType):
                owner = function  # a handler object registered as its own callable
            if owner is not None and id(owner) not in seen:
                seen.add(id(owner))
                yield owner


class _MLflowRun:
    """One MLFlowHandler's run, through the handler's own client (MONAI does not use MLflow's active run)."""

    def __init__(self, handler: Any, engine: Engine) -> None:
        handler.start(engine)  # opens (or, after --resume, finds) the run: idempotent, the handler calls it again
        self.handler, self.client, self.run_id = (
            handler,
            handler.client,
            handler.cur_run.info.run_id,
        )

    def set_tags(self, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, value)

    def log_params(self, params: Mapping[str, str]) -> None:
        import mlflow

        logged = self.client.get_run(self.run_id).data.params  # a resumed run keeps its first values
        changed = sorted(k for k, v in params.items() if k in logged and logged[k] != v)
        if changed:
            logger.warning(
                "resumed run %s keeps its first values of %s; MLflow cannot change a parameter",
                self.run_id,
                changed,
            )
        new = [mlflow.entities.Param(k, v) for k, v in params.items() if k not in logged]
        for start in range(0, len(new), 100):  # MLflow takes at most 100 parameters per batch
            self.client.log_batch(self.run_id, params=new[start : start + 100])

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        import mlflow

        now = int(time.time() * 1000)
        batch = [mlflow.entities.Metric(k, v, now, 0) for k, v in metrics.items()]
        for start in range(0, len(batch), 1000):
            self.client.log_batch(self.run_id, metrics=batch[start : start + 1000])

    def log_artifact(self, path: Path, folder: str | None) -> None:
        self.client.log_artifact(self.run_id, str(path), folder)

    def end(self) -> None:
        if self.client.get_run(self.run_id).info.status == "RUNNING":
            self.client.set_terminated(self.run_id)
        self.handler.cur_run = None  # a later start of this handler opens a new run


def _tracked_runs(engine: Engine) -> list[Any]:
    runs = []
    for handler in _handlers_on(engine):
        if type(handler).__name__ == "MLFlowHandler":
            runs.append(_MLflowRun(handler, engine))
        elif callable(getattr(type(handler), "tracked_run", None)):  # medbundle's WandBHandler (a class attribute:
            # objects whose __getattr__ answers every name, such as MONAI's engines, are not trackers)
            runs.append(handler.tracked_run())
    return runs


class TrackingRecorder:
    """Add parameters, tags, files and evaluation metrics to the tracker's run of an engine (see the module doc).

    Args:
        stage: ``"train"``, ``"evaluate"`` or ``"inference"``, a tag of the run.
        tags: e.g. ``{"task": "rsna", "fold": 0, "backbone": "efficientnet_b3"}``.
        params: resolved values of the top-level keys that are expressions (``backbone``, ``batch_size``, ...).
        config_file: MONAI's ``save_execute_config`` (the config as run, saved by ``--tracking``).
        artifacts: files, or folders whose files, written during this run, are logged (``{"model": path}`` puts
            them under an artifact folder of that name, ``"."`` at the top); `config_file` is always logged.
        metrics_file: a JSON of numbers (``metrics.json``) logged as metrics when the engine completes.
    """

    def __init__(
        self,
        stage: str,
        tags: Mapping[str, Any],
        params: Mapping[str, Any] | None = None,
        config_file: str | os.PathLike | bool | None = None,
        artifacts: Mapping[str, str | os.PathLike] | Sequence[str | os.PathLike] = (),
        metrics_file: str | os.PathLike | None = None,
    ) -> None:
        self.stage = stage
        self.tags = dict(tags)
        self.params = dict(params or {})
        self.config_file = config_file
        self.artifacts = dict(artifacts) if isinstance(artifacts, Mapping) else {str(p): p for p in artifacts}
        self.metrics_file = metrics_file
        self.runs: list[Any] = []
        self._started = 0.0
        self._n_params = 0

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self.started)

    def started(self, engine: Engine) -> None:
        """Find the trackers attached to `engine` and record the run's parameters and tags in each."""
        self._started = time.time()
        self.runs = _tracked_runs(engine)
        if not self.runs:
            return
        params = run_params(self.config_file, self.params)
        self._n_params = len(params)
        tags = run_tags(self.tags, self.stage, os.environ.get(PARENT_RUN_ENV))
        for run in self.runs:
            run.set_tags(tags)
            run.log_params(params)
        if not engine.has_event_handler(self.completed, Events.COMPLETED):
            engine.add_event_handler(Events.COMPLETED, self.completed)  # after the trackers' own: the files exist

    def _files(self) -> Iterator[tuple[Path, str | None]]:
        if isinstance(self.config_file, (str, os.PathLike)) and Path(self.config_file).is_file():
            yield (
                Path(self.config_file),
                None,
            )  # the config as run (MONAI's handler logs it only for some engines)
        for name, path in self.artifacts.items():
            path = Path(path)
            folder = None if name in (".", str(path)) else name  # "." or a list entry: the run's top level
            files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
            for file in files:
                if file.is_file() and file.stat().st_mtime >= self._started - 1:
                    yield file, folder

    def completed(self, engine: Engine) -> None:
        """Log the run's files and evaluation numbers, and end the run."""
        metrics = {}
        if self.metrics_file and Path(self.metrics_file).is_file():
            metrics = flat_numbers(json.loads(Path(self.metrics_file).read_text()))
        files = list(self._files())
        for run in self.runs:
            if metrics:
                run.log_metrics(metrics)
            for file, folder in files:
                run.log_artifact(file, folder)
            run.end()  # MONAI's trainer handler has ended an MLflow training run already; the others stay open
        if self.runs:
            logger.info(
                "tracked run: %d parameters, %d files, %d evaluation numbers",
                self._n_params,
                len(files),
                len(metrics),
            )
