"""A sweep's results in one table: per-fold metrics, their mean ± sd, and the out-of-fold (OOF) metrics.

Per model, the rows are each fold's metrics on its validation predictions, their mean and sample
standard deviation, and the metrics of the whole OOF table with the threshold chosen on it
(:mod:`medbundle.sweep.task_metrics`). That threshold is stored in every fold's ``model.pt``
(:func:`~medbundle.sweep.checkpoint_update.store_oof_threshold`), so inference and the ensemble use it
with ``--threshold_key oof_threshold``. Writes ``summary.csv`` (mean and sd as separate rows) and
``summary.md`` to the sweep folder.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from medbundle.io.atomic_file import atomic_write
from medbundle.sweep.checkpoint_update import store_oof_threshold
from medbundle.sweep.layout import SweepPlan
from medbundle.sweep.oof import OOF_FILE, finished_runs, oof_table
from medbundle.sweep.task_metrics import Decision, get_task_metrics
from medbundle.sweep.tracking import log_summary

__all__ = ["markdown_summary", "model_summary", "summarize", "sweep_task"]

logger = logging.getLogger("medbundle.sweep")


def model_summary(oof: pd.DataFrame, task: str) -> tuple[pd.DataFrame, Decision | None]:
    """One model's summary rows (folds, ``mean``, ``sd``, ``oof``) and its OOF threshold.

    Args:
        oof: the model's out-of-fold table: a ``fold`` column and the task's prediction columns.
        task: ``rsna``, ``isic`` or ``chest_xray``.

    Returns:
        ``(rows, decision)``: a ``fold`` column (fold numbers as text, then ``mean``, ``sd``, ``oof``), the
        task's metrics, and on the ``oof`` row ``threshold`` and (rsna) ``aggregation``; decision is None for
        a task without a threshold.
    """
    spec = get_task_metrics(task)
    folds = pd.DataFrame([{"fold": str(fold), **spec.metrics(frame)} for fold, frame in oof.groupby("fold", sort=True)])
    numbers = folds.drop(columns="fold")
    spread = pd.DataFrame([{"fold": "mean", **numbers.mean()}, {"fold": "sd", **numbers.std(ddof=1)}]).assign(n=math.nan)
    decision = spec.decide(oof) if spec.decide is not None else None
    overall: dict[str, Any] = {"fold": "oof", **spec.metrics(oof)}
    if decision is not None:
        overall |= {"threshold": decision.threshold, "aggregation": decision.aggregation}
    return pd.concat([folds, spread, pd.DataFrame([overall])], ignore_index=True), decision


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def markdown_summary(table: pd.DataFrame) -> str:
    """``summary.md``'s table: per model its fold rows, a ``mean ± sd`` row and the ``OOF`` row (4 decimals)."""
    metrics = [c for c in table.columns if c not in ("model", "fold", "n", "threshold", "aggregation")]
    decided = [c for c in ("threshold", "aggregation") if c in table and table[c].notna().any()]
    header = ["model", "fold", "n", *metrics, *decided]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for model, rows in table.groupby("model", sort=False):
        by_fold = rows.set_index("fold")
        mean, sd = by_fold.loc["mean"], by_fold.loc["sd"]
        cells = [
            *([fold, str(int(row["n"])), *(_cell(row[m]) for m in metrics), *[""] * len(decided)]
              for fold, row in by_fold.drop(index=["mean", "sd", "oof"]).iterrows()),
            ["mean ± sd", "", *(f"{_cell(mean[m])} ± {_cell(sd[m]) or 'n/a'}" for m in metrics), *[""] * len(decided)],
            ["OOF", str(int(by_fold.loc["oof", "n"])), *(_cell(by_fold.loc["oof", c]) for c in [*metrics, *decided])],
        ]  # fmt: skip
        lines += ["| " + " | ".join([str(model), *row]) + " |" for row in cells]
    return "\n".join(lines)


def sweep_task(sweep: str | Path, checkpoints: Sequence[Path]) -> str:
    """The task the sweep's checkpoints were trained for (their stored ``task``), else the bundle's folder name."""
    for checkpoint in checkpoints:
        config = torch.load(checkpoint, map_location="cpu", weights_only=True).get("config", {})
        if "task" in config:
            return str(config["task"])
    return Path(SweepPlan.read(sweep).bundle).name


def summarize(sweep: str | Path, store: bool = True) -> tuple[str, pd.DataFrame]:
    """Summarise every model of a sweep from its ``oof.csv`` and store its OOF threshold in its ``model.pt`` files.

    Args:
        sweep: the sweep folder ``<runs_dir>/<name>``.
        store: write ``oof_threshold`` (and rsna's ``oof_aggregation``) into each fold's ``model.pt``.

    Returns:
        ``(markdown, table)``: the text of ``summary.md`` and the rows of ``summary.csv``.

    Raises:
        FileNotFoundError: no model of the sweep has an ``oof.csv``; run ``sweep.py oof`` first.
    """
    sweep = Path(sweep)
    runs = finished_runs(sweep)
    models = sorted({run.model for run in runs if (sweep / run.model / OOF_FILE).is_file()})
    if not models:
        raise FileNotFoundError(f"no <model>/{OOF_FILE} in {sweep}: run `python scripts/sweep.py oof --runs {sweep}` first.")
    task = sweep_task(sweep, [run.best_checkpoint for run in runs])
    tables, notes = [], []
    for model in models:
        oof = oof_table(sweep / model / OOF_FILE)
        rows, decision = model_summary(oof, task)
        tables.append(rows.assign(model=model))
        if decision is None:
            continue
        folds = set(oof["fold"])
        checkpoints = [run.best_checkpoint for run in runs if run.model == model and run.fold in folds]
        if store:
            for checkpoint in checkpoints:
                store_oof_threshold(checkpoint, decision.threshold, decision.aggregation)
        how = f" after {decision.aggregation} aggregation per breast" if decision.aggregation else ""
        notes.append(
            f"- {model}: OOF threshold {decision.threshold:.4f}{how}"
            + (f" (stored as oof_threshold in {len(checkpoints)} model.pt)" if store else "")
        )
        logger.info("%s", notes[-1].removeprefix("- "))
    table = pd.concat(tables, ignore_index=True)
    table = table[["model", *[c for c in table.columns if c != "model"]]].astype({"n": "Int64"})
    markdown = f"# Sweep {sweep.name} ({task})\n\n{markdown_summary(table)}\n" + ("\n" + "\n".join(notes) + "\n" if notes else "")
    with atomic_write(sweep / "summary.csv", text=True) as stream:
        table.to_csv(stream, index=False)
    with atomic_write(sweep / "summary.md", text=True) as stream:
        stream.write(markdown)
    # a tracked sweep: mean, sd and OOF on its parent run
    log_summary(SweepPlan.read(sweep).tracking, table, [sweep / "summary.md", sweep / "summary.csv"])
    return markdown, table
