"""What the ISIC second stage's trees cost: each booster fitted on each patient-grouped fold of a full-size table."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from medbundle.benchmarks.common import PeakRSS
from medbundle.benchmarks.report import Report
from medbundle.tabular.bagging import NEG_PER_POS

__all__ = ["synthetic_features", "tabular"]


def synthetic_features(
    n_rows: int, n_patients: int, n_positive: int, n_features: int = 150, missing: float = 0.05, seed: int = 0
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """A float32 feature table with a planted signal: (features, 0/1 labels, patient per row).

    Features are standard normal, named ``x000``...; exactly `n_positive` rows are positive, drawn without
    replacement with odds ``exp(2 x000 + x001 + x002 / 1.5 + ...)`` (the first five features, weights 2 / (1 + i)),
    so ``x000`` carries the most signal. A `missing` share of cells is NaN. Rows are spread over `n_patients`
    uniformly. It times the trees at the real ISIC 2024 size without the metadata; any function of the same
    signature and return (a real feature builder) can replace it in :func:`tabular`.
    """
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((n_rows, n_features), dtype=np.float32)
    informative = min(5, n_features)
    risk = values[:, :informative].astype(np.float64) @ (2.0 / (1.0 + np.arange(informative)))
    # Gumbel top-k: the k largest of risk + Gumbel noise are a draw without replacement with odds exp(risk)
    positives = np.argpartition(-(risk + rng.gumbel(size=n_rows)), n_positive - 1)[:n_positive]
    labels = np.zeros(n_rows, np.int8)
    labels[positives] = 1
    values[rng.random((n_rows, n_features), dtype=np.float32) < missing] = np.nan
    columns = [f"x{i:03d}" for i in range(n_features)]
    patients = rng.integers(n_patients, size=n_rows)
    return pd.DataFrame(values, columns=columns, copy=False), labels, patients


def tabular(
    n_rows: int = 401_059,
    n_patients: int = 1042,
    n_positive: int = 400,
    boosters: Sequence[str] | None = None,
    folds: int = 5,
    seeds: int = 1,
    neg_per_pos: float | None = NEG_PER_POS,
    threads: int | None = None,
    table: str | Callable = "medbundle.benchmarks.tabular:synthetic_features",
) -> Report:
    """Fit time, peak memory and out-of-fold AUROC of each booster on each patient-grouped fold.

        python scripts/benchmark.py tabular --boosters "[lightgbm,xgboost,catboost]" --folds 5

    The table is ISIC 2024's size (401,059 lesions of 1,042 patients, 400 malignant; 150 float32 features with a
    planted signal and 5 % missing cells, :func:`synthetic_features`). The folds are the image model's
    (:func:`~medbundle.data.folds.grouped_folds`: patients whole, labels stratified). Each fit is
    :func:`~medbundle.tabular.fit_bagged` with the library's default settings: every positive of the training folds
    and `neg_per_pos` negatives per positive, `seeds` bagged models. Memory is the fit's peak resident memory above
    the process's before it (sampled every 50 ms from /proc, so the libraries' native buffers count).

    Args:
        n_rows, n_patients, n_positive: the table's size.
        boosters: the :data:`~medbundle.tabular.BOOSTERS` names to fit; default every installed one.
        folds: folds, each fitted and predicted once per booster.
        seeds: bagged models per fit.
        neg_per_pos: negatives drawn per positive, or None for every negative.
        threads: threads per fit; default the cores this process may use.
        table: ``(n_rows, n_patients, n_positive) -> (features, labels, patients)``, or its
            ``"package.module:function"``, e.g. a real ISIC feature builder in place of the synthetic table.
    """
    from medbundle.data.folds import grouped_folds
    from medbundle.metrics.binary import auroc
    from medbundle.metrics.partial_auc import partial_auc
    from medbundle.tabular import (
        available_boosters,
        default_threads,
        fit_bagged,
        get_booster,
    )
    from medbundle.tasks import resolve

    names = list(boosters or available_boosters())
    threads = threads or default_threads()
    start = time.perf_counter()
    X, y, patients = resolve(table)(n_rows, n_patients, n_positive)
    fold_of = grouped_folds(patients, y, n_splits=folds)
    prepared = time.perf_counter() - start
    rows = []
    for name in names:
        get_booster(name).module()  # imported before the first fit, so its memory is not counted as the fit's
        scores = np.zeros(len(y))
        for fold in range(folds):
            train, val = np.flatnonzero(fold_of != fold), np.flatnonzero(fold_of == fold)
            X_train = X.iloc[train]
            with PeakRSS() as before:
                pass
            with PeakRSS() as peak:
                fit_start = time.perf_counter()
                model = fit_bagged(name, X_train, y[train], seeds=range(seeds), neg_per_pos=neg_per_pos,
                                   threads=threads)  # fmt: skip
                fit = time.perf_counter() - fit_start
            predict_start = time.perf_counter()
            scores[val] = model.predict(X.iloc[val])
            rows.append({
                "booster": name, "fold": str(fold), "train_rows": int(train.size), "fit_s": fit,
                "predict_s": time.perf_counter() - predict_start, "peak_mb": max(0, peak.main_mb - before.main_mb),
                "auroc": auroc(y[val], scores[val]), "pauc": partial_auc(y[val], scores[val]),
            })  # fmt: skip
        mine = [row for row in rows if row["booster"] == name]
        rows.append({
            "booster": name, "fold": "all (out-of-fold)", "train_rows": None,
            "fit_s": sum(row["fit_s"] for row in mine), "predict_s": sum(row["predict_s"] for row in mine),
            "peak_mb": max(row["peak_mb"] for row in mine), "auroc": auroc(y, scores), "pauc": partial_auc(y, scores),
        })  # fmt: skip
    table_name = table if isinstance(table, str) else f"{table.__module__}:{table.__qualname__}"
    return Report(
        name="tabular",
        title=(f"Boosters on {len(y):,} rows x {X.shape[1]} features ({int(y.sum())} positive, {n_patients} patients, "
               f"{folds} patient-grouped folds), {seeds} seed(s) per fit, {neg_per_pos} negatives per positive, "
               f"{threads} thread(s); peak MB: resident memory above the process's before the fit, sampled every "
               f"50 ms from /proc (native buffers included)"),
        columns=[("booster", "booster"), ("fold", "fold"), ("train_rows", "training rows"), ("fit_s", "fit s"),
                 ("predict_s", "predict s"), ("peak_mb", "peak MB"), ("auroc", "AUROC"), ("pauc", "pAUC (TPR > 0.8)")],
        rows=rows,
        notes=[f"table: {table_name}, built and split in {prepared:.1f} s (not timed above)",
               "fit: every positive of the training folds plus the drawn negatives; AUROC / pAUC of the held-out fold"],
        settings={"n_rows": n_rows, "n_patients": n_patients, "n_positive": n_positive, "boosters": names,
                  "folds": folds, "seeds": seeds, "neg_per_pos": neg_per_pos, "threads": threads, "table": table_name},
    )  # fmt: skip
