"""Train every (model, fold) of a sweep on this machine: skip finished runs, resume interrupted ones.

Each run is its own ``python -m monai.bundle run training`` process (see :mod:`medbundle.sweep.commands`),
its output appended to the run's ``train.log``, its exact command in ``command.txt`` and its state in
``status.json``. Runs go one after another, or side by side on slots: one per GPU group (``gpus``) or
``parallel`` CPU places. A failed run is reported and the others go on.
"""

from __future__ import annotations

import logging
import os
import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medbundle.outputs import evaluation_dir
from medbundle.sweep.commands import (
    RESERVED_KEYS,
    bundle_n_folds,
    model_key,
    shared_cache,
    shell_line,
    training_command,
)
from medbundle.sweep.layout import RunDir, SweepPlan, run_dirs
from medbundle.sweep.processes import device_slots, last_line, run_logged, run_parallel
from medbundle.sweep.status import (
    Action,
    RunStatus,
    next_action,
    now,
    read_status,
    write_status,
)
from medbundle.sweep.tracking import end_sweep_run, run_tracking, start_sweep_tracking

__all__ = ["RunResult", "check_overrides", "failure_report", "plan_sweep", "train_run", "train_sweep"]

logger = logging.getLogger("medbundle.sweep")


@dataclass
class RunResult:
    """How one run of a sweep ended in this call.

    Args:
        run: the run.
        outcome: ``done``, ``failed``, ``skipped`` (finished before) or ``busy`` (trained by a live process).
        wall_seconds: the attempt's duration.
        returncode: the training process's exit status.
        last_line: the last line of its log (why a failed run stopped).
    """

    run: RunDir
    outcome: str
    wall_seconds: float | None = None
    returncode: int | None = None
    last_line: str = ""


def check_overrides(overrides: Mapping[str, Any]) -> None:
    """Refuse overrides of the keys the sweep sets per run.

    Raises:
        ValueError: an override sets a reserved key; the message says which option sets it instead.
    """
    reserved = sorted(set(overrides) & set(RESERVED_KEYS))
    if reserved:
        raise ValueError(
            f"--{reserved[0]} is set by the sweep for each run (models with --models, folds with --folds, the run "
            "folder with --runs_dir/--name, the bundle's configs with --bundle, resume automatically); remove it from the bundle overrides."
        )


def plan_sweep(
    bundle: str | Path, models: Sequence[str], folds: Sequence[int] | None, sweep: str | Path, nproc: int,
    overrides: Mapping[str, Any],
) -> tuple[SweepPlan, list[RunDir]]:  # fmt: skip
    """Check the arguments, record them in the sweep's ``sweep.json`` and list the runs.

    The recorded overrides, which every run is trained with, add a cache shared by the runs
    (:func:`~medbundle.sweep.commands.shared_cache`).

    Raises:
        ValueError: no model, a reserved override, a fold outside ``0..n_folds-1``, or a sweep folder already
            used for another bundle.
    """
    if not models:
        raise ValueError("no models: pass --models NAME[,NAME...] (presets of the bundle, or timm backbone names).")
    check_overrides(overrides)
    n_folds = bundle_n_folds(bundle, overrides)
    folds = list(range(n_folds)) if folds is None else [int(f) for f in folds]
    outside = [f for f in folds if not 0 <= f < n_folds]
    if outside:
        raise ValueError(f"folds {outside} are outside 0..{n_folds - 1} (n_folds {n_folds}); pass --folds within it.")
    overrides = {**overrides, **shared_cache(bundle, sweep, overrides)}
    plan = SweepPlan(str(bundle), model_key(bundle), overrides, list(models), folds, nproc)
    try:
        recorded = SweepPlan.read(sweep)
    except FileNotFoundError:
        recorded = None
    if recorded is not None:
        if Path(recorded.bundle).resolve() != Path(bundle).resolve():
            raise ValueError(f"{sweep} holds a sweep of {recorded.bundle}, not {bundle}: choose another --name.")
        if recorded.overrides != plan.overrides:
            logger.warning("%s: bundle overrides changed from %s to %s", sweep, recorded.overrides, plan.overrides)
        plan = recorded.merged(plan)
    plan.write(sweep)
    return plan, run_dirs(sweep, models, folds)


def _clear_evaluation(run: RunDir) -> None:
    """Delete evaluation files of an earlier model.pt: retraining makes them stale."""
    for folder in (run.output_dir, evaluation_dir(run.output_dir, tta=True)):
        for path in [*folder.glob("predictions_*.csv"), folder / "metrics.json"]:
            path.unlink(missing_ok=True)


def train_run(
    bundle: str | Path, run: RunDir, key: str, overrides: Mapping[str, Any], nproc: int = 1,
    devices: Sequence[int] | None = None, tracking: Mapping[str, Any] | None = None,
) -> RunResult:  # fmt: skip
    """Train one run unless it is finished; resume it when it stopped after a checkpoint.

    Args:
        bundle: the bundle folder.
        run: the run.
        key: the bundle key the model name sets (``model`` or ``backbone``).
        overrides: bundle overrides.
        nproc: processes (GPUs) for the run.
        devices: GPU ids for ``CUDA_VISIBLE_DEVICES``; None leaves the environment as it is.
        tracking: a tracked sweep's facts (``sweep.json``): the run is tracked as a child of the sweep's run.
    """
    action = next_action(run)
    if action is Action.SKIP:
        logger.info("%s: skipped (done, %s present)", run.name, run.best_checkpoint)
        return RunResult(run, "skipped")
    if action is Action.BUSY:
        logger.warning("%s: skipped, a live process on this host is training it (see %s)", run.name, run.status_file)
        return RunResult(run, "busy")
    resume = action is Action.RESUME
    env = {} if devices is None else {"CUDA_VISIBLE_DEVICES": ",".join(map(str, devices))}
    tracked_args, tracked_env = run_tracking(tracking, run.model, run.fold, overrides)
    env |= tracked_env
    command = training_command(bundle, run, key, overrides, resume=resume, nproc=nproc) + tracked_args
    run.folder.mkdir(parents=True, exist_ok=True)
    _clear_evaluation(run)
    run.command_file.write_text(f"cd {shlex.quote(os.getcwd())}\n{shell_line(command, env)}\n")
    previous = read_status(run)
    status = RunStatus(
        state="running", model=run.model, fold=run.fold, attempt=previous.attempt + 1 if previous else 1,
        resumed=resume, start=now(), devices=env.get("CUDA_VISIBLE_DEVICES"),
    )  # fmt: skip
    write_status(run, status)
    where = f" on GPU {status.devices}" if status.devices is not None else ""
    logger.info("%s: %s%s (log %s)", run.name, "resumed from its last checkpoint" if resume else "started", where, run.log_file)

    def started(process) -> None:
        status.pid = process.pid
        write_status(run, status)

    header = f"==== {status.start} attempt {status.attempt}{' (--resume)' if resume else ''}: {shell_line(command, env)}\n"
    begin = time.monotonic()
    returncode = run_logged(command, run.log_file, env=env, header=header, on_start=started)
    status.wall_seconds = round(time.monotonic() - begin, 1)
    finished = returncode == 0 and run.best_checkpoint.is_file()
    status.state, status.returncode, status.end = ("done" if finished else "failed"), returncode, now()
    write_status(run, status)
    if finished:
        logger.info("%s: done in %.0f s", run.name, status.wall_seconds)
        return RunResult(run, "done", status.wall_seconds, returncode)
    said = last_line(run.log_file) if returncode else (
        f"training ended without writing {run.best_checkpoint}: no validation ran (check val_interval against epochs)"
    )  # fmt: skip
    logger.error("%s: FAILED (exit %d) after %.0f s: %s", run.name, returncode, status.wall_seconds, said)
    return RunResult(run, "failed", status.wall_seconds, returncode, said)


def failure_report(results: Sequence[RunResult]) -> str:
    """One line of counts, then one line per failed run with its last log line and log file."""
    counts = {outcome: sum(r.outcome == outcome for r in results) for outcome in ("done", "skipped", "busy", "failed")}
    lines = [f"{len(results)} runs: " + ", ".join(f"{n} {outcome}" for outcome, n in counts.items() if n)]
    lines += [
        f"  FAILED {r.run.name} (exit {r.returncode}): {r.last_line}  [{r.run.log_file}]"
        for r in results
        if r.outcome == "failed"
    ]
    return "\n".join(lines)


def train_sweep(
    bundle: str | Path,
    models: Sequence[str],
    folds: Sequence[int] | None = None,
    sweep: str | Path = "runs/sweep",
    gpus: Sequence[int] | None = None,
    parallel: int = 1,
    nproc: int = 1,
    tracking: str | None = None,
    **overrides: Any,
) -> list[RunResult]:
    """Train every model on every fold, skipping finished runs and resuming interrupted ones.

    Args:
        bundle: the bundle folder, e.g. ``bundles/isic``.
        models: model presets (``--model``), or timm backbones (``--backbone``: names that are no preset, and rsna's).
        folds: the validation folds; default all ``n_folds``.
        sweep: the sweep folder ``<runs_dir>/<name>``.
        gpus: GPU ids; runs go side by side, each on its own group of `nproc` of them.
        parallel: runs side by side without `gpus` (CPU).
        nproc: processes per run (``torch.distributed.run``, one per GPU).
        tracking: ``"mlflow"``: one experiment, a parent run for the sweep and a child run per (model, fold)
            (:mod:`medbundle.sweep.tracking`); a MONAI tracking settings file (``tracking/wandb.yaml``) is passed
            to every run.
        overrides: bundle overrides for every run, e.g. ``epochs=3``, ``image_size=[64, 64]``.

    Returns:
        One result per run, in the order model by model, fold by fold.
    """
    plan, runs = plan_sweep(bundle, models, folds, sweep, nproc, overrides)
    if tracking:
        plan.tracking = start_sweep_tracking(tracking, bundle, sweep, plan.overrides, plan.tracking)
        plan.write(sweep)
    slots = device_slots(gpus, nproc, parallel)
    logger.info("sweep %s: %d runs (%s x folds %s) of %s on %d slot(s)", sweep, len(runs), ",".join(models),
                sorted({run.fold for run in runs}), bundle, len(slots))  # fmt: skip
    track = plan.tracking if tracking else None
    results = run_parallel(
        runs, slots, lambda run, slot: train_run(bundle, run, plan.model_key, plan.overrides, nproc, slot, track)
    )
    end_sweep_run(track, failed=any(result.outcome == "failed" for result in results))
    logger.info("%s", failure_report(results))
    return results
