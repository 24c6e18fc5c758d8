"""Weights & Biases for a bundle, the way ``--tracking mlflow`` does MLflow: Ignite's ``WandBLogger`` as a MONAI handler.

MONAI's ``--tracking`` takes a settings file (``tracking/wandb.yaml``) that appends one handler per engine, as
``DEFAULT_MLFLOW_SETTINGS`` appends ``MLFlowHandler``. :class:`WandBHandler` is that handler: ``attach(engine)``
(MONAI's handler protocol) wires Ignite's ``WandBLogger`` output and learning-rate handlers to the engine. All the
handlers of a process share one W&B run, as MONAI's MLflow handlers share one run by its name. The
:class:`~medbundle.tracking.recorder.TrackingRecorder` then adds the parameters, tags, model.pt and evaluation
files to it and finishes it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ignite.engine import Engine, Events

__all__ = ["WandBHandler"]

_RUNS: dict[tuple[str, str | None], Any] = {}  # (project, name) -> WandBLogger: one run per process and name


def _logger(project: str, name: str | None, directory: str | None, mode: str | None) -> Any:
    from ignite.handlers import WandBLogger

    key = (project, name)
    if key not in _RUNS or _RUNS[key]._wandb.run is None:
        if directory:
            Path(directory).mkdir(parents=True, exist_ok=True)
        _RUNS[key] = WandBLogger(project=project, name=name, dir=directory, mode=mode, reinit="finish_previous")
    return _RUNS[key]


class _WandBRun:
    """The tracker-neutral face of a W&B run for the recorder (see ``_MLflowRun``)."""

    def __init__(self, logger: Any) -> None:
        self.logger, self.run = logger, logger._wandb.run

    def set_tags(self, tags: Mapping[str, str]) -> None:
        labels = (f"{k}:{v}"[:64] for k, v in tags.items() if not k.startswith("mlflow."))  # W&B has its own git facts
        self.run.tags = tuple(dict.fromkeys([*self.run.tags, *labels]))
        self.run.config.update({"tags": dict(tags)}, allow_val_change=True)

    def log_params(self, params: Mapping[str, str]) -> None:
        self.run.config.update(dict(params), allow_val_change=True)

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        self.run.summary.update(dict(metrics))

    def log_artifact(self, path: Path, folder: str | None) -> None:
        import wandb

        kind = "model" if path.suffix == ".pt" else "evaluation"
        artifact = wandb.Artifact(f"{self.run.name or self.run.id}-{folder or path.stem}".replace("/", "-"), type=kind)
        artifact.add_file(str(path))
        self.run.log_artifact(artifact)

    def end(self) -> None:
        self.run.finish()


class WandBHandler:
    """Log an engine to W&B through Ignite's ``WandBLogger``; one shared run per (project, name) and process.

    Args:
        project: the W&B project (medbundle's settings: the bundle's ``experiment_name``).
        name: the run's name (the bundle's ``run_name``).
        role: ``"trainer"`` (loss per iteration at the iteration's step, learning rates), ``"validator"`` (the
            metrics per epoch, at the trainer's latest step) or ``"evaluator"`` (its metrics once).
        directory: where W&B writes its run files (``<dir>/wandb``).
        mode: ``"online"``, ``"offline"`` or ``"disabled"``; None: W&B's own choice (``WANDB_MODE``).
        output_transform: the trainer's loss from its output.
    """

    def __init__(
        self,
        project: str,
        name: str | None = None,
        role: str = "trainer",
        directory: str | os.PathLike | None = None,
        mode: str | None = None,
        output_transform: Callable[[Any], Any] | None = None,
    ) -> None:
        if role not in ("trainer", "validator", "evaluator"):
            raise ValueError(f"role {role!r}: choose trainer, validator or evaluator.")
        self.project, self.name, self.role, self.mode = project, name, role, mode
        self.directory = None if directory is None else str(directory)
        self.output_transform = output_transform or (lambda output: output[0]["loss"])
        self.logger: Any = None
        self._learning_rates = False

    def attach(self, engine: Engine) -> None:
        from ignite.handlers.wandb_logger import OutputHandler

        self.logger = _logger(self.project, self.name, self.directory, self.mode)
        engine.add_event_handler(Events.STARTED, self.started)
        if self.role == "trainer":
            loss = OutputHandler(
                tag="train", output_transform=lambda output: {"loss": float(self.output_transform(output))}
            )
            self.logger.attach(engine, loss, Events.ITERATION_COMPLETED)
            return
        # validation metrics go at the run's current step (the trainer's last iteration): W&B steps only increase
        metrics = OutputHandler(
            tag="validation" if self.role == "validator" else "evaluation",
            metric_names="all",
            global_step_transform=lambda *_: int(self.logger._wandb.run.step),
            state_attributes=["epoch"],
        )
        self.logger.attach(engine, metrics, Events.EPOCH_COMPLETED)

    def started(self, engine: Engine) -> None:
        """Record the engine's length in the run's config, as MONAI's ``MLFlowHandler`` does, and log learning rates."""
        from ignite.handlers.wandb_logger import OptimizerParamsHandler

        if self.role == "trainer":
            lengths = {"max_epochs": engine.state.max_epochs, "epoch_length": engine.state.epoch_length}
            self.logger._wandb.run.config.update(lengths, allow_val_change=True)
            optimizer = getattr(engine, "optimizer", None)  # MONAI sets it after attaching the handlers
            if optimizer is not None and not self._learning_rates:
                self._learning_rates = True
                lrs = OptimizerParamsHandler(optimizer, param_name="lr", tag="train")
                self.logger.attach(engine, lrs, Events.ITERATION_STARTED)

    def tracked_run(self) -> _WandBRun:
        """This handler's run, for :class:`~medbundle.tracking.recorder.TrackingRecorder`."""
        return _WandBRun(self.logger)
