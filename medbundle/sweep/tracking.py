"""A tracked sweep: one MLflow experiment, a parent run per sweep, a child run per (model, fold), the summary on top.

``scripts/sweep.py train ... --tracking mlflow`` opens the parent run (named after the sweep, in the bundle's
experiment, in one store for the whole sweep: ``<sweep>/eval/mlruns.db`` unless ``--tracking_uri`` names another)
and starts every run with ``--tracking mlflow``, the sweep's ``--tracking_uri``, ``--run_name <model>-fold<k>`` and
``MEDBUNDLE_PARENT_RUN_ID``, which the bundle's tracking recorder turns into MLflow's ``mlflow.parentRunId`` tag:
the MLflow UI nests the runs under the sweep. ``sweep.py summary`` logs each model's mean, sd and out-of-fold
metrics to the parent. The parent's id is kept in ``sweep.json``, so a resumed sweep reuses it.

Like the bundles' own tracking, it never stops a sweep: without mlflow, or with a tracking server that does not
answer, it warns once and the sweep runs untracked.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from medbundle.tracking.availability import tracking_disabled
from medbundle.tracking.recorder import PARENT_RUN_ENV
from medbundle.tracking.store import bundle_store_uri

__all__ = ["end_sweep_run", "log_summary", "run_tracking", "start_sweep_tracking"]

logger = logging.getLogger(__name__)


def _experiment(bundle: str | Path, overrides: Mapping[str, Any]) -> str:
    """The experiment the bundle's runs go to: the ``experiment_name`` override or train.yaml's (the task)."""
    if "experiment_name" in overrides:
        return str(overrides["experiment_name"])
    config = yaml.safe_load((Path(bundle) / "configs" / "train.yaml").read_text()) or {}
    name = config.get("experiment_name")
    return name if isinstance(name, str) and not name.startswith(("$", "@")) else Path(bundle).resolve().name


def start_sweep_tracking(
    tracker: str, bundle: str | Path, sweep: str | Path, overrides: Mapping[str, Any], recorded: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """Open (or, for a resumed sweep, find) the sweep's parent run; the facts ``sweep.json`` keeps, or None.

    Args:
        tracker: ``--tracking``'s value: ``mlflow`` gets a parent run; a settings file (``tracking/wandb.yaml``)
            is passed to the runs as it is.
        bundle: the bundle folder.
        sweep: the sweep folder.
        overrides: the sweep's bundle overrides (``tracking_uri``, ``experiment_name`` are read).
        recorded: the tracking facts of an earlier start of this sweep, if any.
    """
    if tracker != "mlflow":
        return {"tracking": tracker}
    uri = str(overrides.get("tracking_uri") or bundle_store_uri(sweep))
    if tracking_disabled(uri):
        return None
    import mlflow

    client = mlflow.MlflowClient(uri)
    experiment = _experiment(bundle, overrides)
    if recorded and recorded.get("tracking_uri") == uri and recorded.get("parent_run_id"):
        return dict(recorded)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        artifacts = None
        if uri.startswith("sqlite:///"):
            artifacts = Path(uri.removeprefix("sqlite:///")).parent.joinpath("mlruns").resolve().as_uri()
        experiment_id = client.create_experiment(experiment, artifact_location=artifacts)
    else:
        experiment_id = found.experiment_id
    tags = {"sweep": str(Path(sweep).resolve()), "bundle": str(bundle), "stage": "sweep"}
    parent = client.create_run(experiment_id, run_name=Path(sweep).name, tags=tags)
    params = {"bundle": str(bundle), **{k: json.dumps(v) if not isinstance(v, str) else v for k, v in overrides.items()}}
    client.log_batch(parent.info.run_id, params=[mlflow.entities.Param(k, v[:6000]) for k, v in params.items()])
    logger.info("sweep %s: MLflow parent run %s in experiment %s of %s", sweep, parent.info.run_id, experiment, uri)
    return {"tracking": "mlflow", "tracking_uri": uri, "experiment": experiment, "parent_run_id": parent.info.run_id}


def run_tracking(
    tracking: Mapping[str, Any] | None, model: str, fold: int, overrides: Mapping[str, Any]
) -> tuple[list[str], dict[str, str]]:
    """The extra command-line arguments and environment of one run of a tracked sweep (none where untracked).

    `overrides` are the run's bundle overrides: a ``tracking_uri`` or ``experiment_name`` there is already passed.
    """
    if not tracking:
        return [], {}
    args = ["--tracking", str(tracking["tracking"]), "--run_name", f"{model}-fold{fold}"]
    if tracking["tracking"] != "mlflow":
        return args, {}
    for key, value in (("tracking_uri", tracking["tracking_uri"]), ("experiment_name", tracking["experiment"])):
        if key not in overrides:
            args += [f"--{key}", value]
    return args, {PARENT_RUN_ENV: tracking["parent_run_id"]}


def end_sweep_run(tracking: Mapping[str, Any] | None, failed: bool) -> None:
    """Mark the parent run finished (or failed, when a run of the sweep failed) once the training is over."""
    if not tracking or tracking.get("tracking") != "mlflow" or tracking_disabled(tracking["tracking_uri"]):
        return
    import mlflow

    mlflow.MlflowClient(tracking["tracking_uri"]).set_terminated(
        tracking["parent_run_id"], "FAILED" if failed else "FINISHED"
    )


def log_summary(tracking: Mapping[str, Any] | None, table: pd.DataFrame, files: Sequence[Path] = ()) -> None:
    """Log a summary's mean, sd and OOF rows per model (``<model>/<row>_<metric>``) and `files` to the parent run."""
    if not tracking or tracking.get("tracking") != "mlflow" or tracking_disabled(tracking["tracking_uri"]):
        return
    import mlflow

    metrics = {}
    for row in table.to_dict("records"):
        if row["fold"] not in ("mean", "sd", "oof"):
            continue
        for name, value in row.items():
            if name not in ("model", "fold", "n") and isinstance(value, (int, float)) and math.isfinite(value):
                metrics[f"{row['model']}/{row['fold']}_{name}"] = float(value)
    now = int(time.time() * 1000)
    run_id = tracking["parent_run_id"]
    batch = [mlflow.entities.Metric(k, v, now, 0) for k, v in metrics.items()]
    client = mlflow.MlflowClient(tracking["tracking_uri"])
    client.log_batch(run_id, metrics=batch)
    for path in files:
        client.log_artifact(run_id, str(path))
    logger.info("sweep summary: %d metrics logged to the parent run %s", len(metrics), run_id)
