"""Out-of-fold predictions: every labelled item scored once, by the model that did not train on it.

Cross-validation trains fold ``k``'s model on all other folds, so its predictions on fold ``k`` are unbiased.
Gathering every fold's validation predictions gives one prediction per item of the data set: the
out-of-fold (OOF) table, on which a decision threshold is chosen without peeking at any model's own
training data. The predictions come from the bundle's ``evaluate.yaml`` (the same files ``monai.bundle run
evaluating`` writes), run for each finished fold that has none yet.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from medbundle.io.atomic_file import atomic_write
from medbundle.sweep.commands import evaluation_command, shell_line
from medbundle.sweep.layout import RunDir, SweepPlan, find_runs
from medbundle.sweep.processes import device_slots, last_line, run_logged, run_parallel
from medbundle.sweep.status import is_finished, read_status

__all__ = ["OOF_FILE", "collect_oof", "evaluate_missing", "finished_runs", "oof_table", "oof_tables"]

OOF_FILE = "oof.csv"
ID_COLUMN = "image_id"
logger = logging.getLogger("medbundle.sweep")


def oof_table(path: str | Path) -> pd.DataFrame:
    """Read a predictions file or an ``oof.csv`` with its ids as strings."""
    return pd.read_csv(path, dtype={ID_COLUMN: str, "patient_id": str})


def finished_runs(sweep: str | Path) -> list[RunDir]:
    """The runs of a sweep that finished training (status done, ``model.pt`` present); logs the others."""
    finished = []
    for run in find_runs(sweep):
        status = read_status(run)
        if is_finished(run, status):
            finished.append(run)
        else:
            logger.warning("%s: not finished (%s), left out", run.name, status.state if status else "no status.json")
    return finished


def _uses_tta(settings: dict[str, Any]) -> bool:
    """Whether the evaluations run with test-time augmentation (the isic bundle's ``tta``)."""
    return bool(settings.get("tta", False))


def evaluate_missing(runs: Sequence[RunDir], plan: SweepPlan, parallel: int = 1, **overrides: Any) -> list[RunDir]:
    """Run the bundle's evaluate.yaml for each run without a predictions file; return the runs that failed.

    Args:
        runs: finished runs.
        plan: the sweep's plan (bundle, and the training overrides that also locate the data).
        parallel: evaluations side by side.
        overrides: evaluation overrides on top of the training ones, e.g. ``num_workers=0``, ``tta=True``
            (TTA predictions are kept apart from the plain ones, see :func:`~medbundle.outputs.evaluation_dir`).
    """
    settings = {**plan.overrides, **overrides}
    tta = _uses_tta(settings)
    missing = [run for run in runs if not run.evaluation_predictions(tta).is_file()]

    def evaluate(run: RunDir, _slot: Any) -> bool:
        command = evaluation_command(plan.bundle, run, settings)
        logger.info("%s: evaluating the validation fold (log %s)", run.name, run.evaluation_log)
        begin = time.monotonic()
        returncode = run_logged(command, run.evaluation_log, header=f"==== {shell_line(command)}\n")
        if returncode == 0 and run.evaluation_predictions(tta).is_file():
            logger.info("%s: evaluated in %.0f s", run.name, time.monotonic() - begin)
            return True
        logger.error("%s: evaluation FAILED (exit %d): %s", run.name, returncode, last_line(run.evaluation_log))
        return False

    ok = run_parallel(missing, device_slots(None, parallel=parallel), evaluate)
    return [run for run, good in zip(missing, ok) if not good]


def oof_tables(runs: Sequence[RunDir], tta: bool = False) -> dict[str, pd.DataFrame]:
    """Per model, the validation predictions of its folds (with `tta`, the TTA ones) in one table with a leading
    ``fold`` column.

    Raises:
        ValueError: an item appears in two folds' predictions (the runs were not trained on one split: the
            same ``n_folds`` and ``seed``); the message names the item and the folds.
    """
    by_model: dict[str, list[pd.DataFrame]] = {}
    for run in runs:
        predictions = run.evaluation_predictions(tta)
        if not predictions.is_file():
            continue
        frame = oof_table(predictions)
        by_model.setdefault(run.model, []).append(frame.assign(fold=run.fold)[["fold", *frame.columns]])
    tables = {}
    for model, frames in by_model.items():
        table = pd.concat(frames, ignore_index=True)
        repeated = table[table.duplicated(ID_COLUMN, keep=False)]
        if not repeated.empty:
            item = repeated.iloc[0][ID_COLUMN]
            folds = sorted(repeated.loc[repeated[ID_COLUMN] == item, "fold"])
            raise ValueError(
                f"{model}: item {item} is in the validation predictions of folds {folds}; the folds were not split "
                "alike (n_folds or seed differ between runs): retrain the sweep's runs with one n_folds and seed."
            )
        tables[model] = table
    return tables


def collect_oof(sweep: str | Path, parallel: int = 1, **overrides: Any) -> dict[str, Path]:
    """Evaluate the finished folds that have no predictions yet and write ``<sweep>/<model>/oof.csv`` per model.

    Args:
        sweep: the sweep folder ``<runs_dir>/<name>``.
        parallel: evaluations side by side.
        overrides: evaluation overrides, e.g. ``num_workers=0``.

    Returns:
        The OOF file of each model.

    Raises:
        FileNotFoundError: the sweep has no finished run.
        RuntimeError: an evaluation failed; the message names the runs and their logs.
    """
    plan = SweepPlan.read(sweep)
    runs = finished_runs(sweep)
    if not runs:
        raise FileNotFoundError(f"no finished run (status done, model.pt present) below {sweep}: train first.")
    failed = evaluate_missing(runs, plan, parallel=parallel, **overrides)
    written = {}
    for model, table in oof_tables(runs, tta=_uses_tta({**plan.overrides, **overrides})).items():
        path = Path(sweep) / model / OOF_FILE
        with atomic_write(path, text=True) as stream:
            table.to_csv(stream, index=False)
        logger.info("%s: %d out-of-fold predictions from folds %s in %s", model, len(table), sorted(int(f) for f in table["fold"].unique()), path)
        written[model] = path
    if failed:
        raise RuntimeError(
            "evaluation failed for " + ", ".join(f"{run.name} (see {run.evaluation_log})" for run in failed)
            + f"; the OOF tables leave those folds out. Fix the cause and run `sweep.py oof --runs {sweep}` again."
        )
    return written
