"""What the ISIC second stage's trees cost: each booster fitted on each patient-grouped fold of a full-size table."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from medbundle.benchmarks.common import PeakRSS
from medbundle.benchmarks.report import Report
from medbundle.tabular.bagging import NEG_PER_POS

__all__ = ["isic_features", "tabular"]


def isic_features(n_rows: int, n_patients: int, n_positive: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The features ``medbundle tabular`` trains on, of a synthetic ISIC 2024 table: (features, labels, patients).

    The metadata is :func:`~medbundle.tabular.synthetic_isic_table` (rows resampled from the rendered demo, the
    malignant ones standing out among their patient's lesions); the image score is a mediocre image model's, drawn
    from the label (AUROC about 0.8); the matrix is :func:`~medbundle.tabular.fit_features` with that score, so the
    trees are timed on the real feature count, NaN cells and per-patient columns.
    """
    from medbundle.tabular import fit_features, synthetic_isic_table

    frame = synthetic_isic_table(n_rows=n_rows, n_patients=n_patients, n_positive=n_positive, seed=seed)
    labels = frame["target"].to_numpy(np.int8)
    rng = np.random.default_rng(seed)
    frame["image_score"] = 1.0 / (1.0 + np.exp(-(1.2 * labels + rng.normal(0.0, 1.0, labels.size) - 3.0)))
    _, matrix = fit_features(frame, image_score="image_score")
    return matrix, labels, frame["patient_id"].to_numpy()


def tabular(
    n_rows: int = 401_059,
    n_patients: int = 1042,
    n_positive: int = 400,
    boosters: Sequence[str] | None = None,
    folds: int = 5,
    seeds: int = 1,
    neg_per_pos: float | None = NEG_PER_POS,
    threads: int | None = None,
    table: str | Callable = "medbundle.benchmarks.tabular:isic_features",
) -> Report:
    """Fit time, peak memory and out-of-fold AUROC of each booster on each patient-grouped fold.

        python scripts/benchmark.py tabular --boosters "[lightgbm,xgboost,catboost]" --folds 5

    The table is ISIC 2024's size (401,059 lesions of 1,042 patients, 400 malignant) and its features are those
    ``medbundle tabular`` builds, with an image score (:func:`isic_features`: 280 float32 columns). The folds are the image model's
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
            ``"package.module:function"``.
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
               "fit: every positive of the training folds plus the drawn negatives; AUROC / pAUC of the held-out fold",
               "peak MB is growth over the process's resident memory before the fit: the first fold pays for the "
               "allocator's pools, later folds reuse them",
               "`medbundle tabular` fits each (booster, fold) twice (tabular, tabular+image) and bags 3 seeds: about 6 "
               "times the fit seconds above"],
        settings={"n_rows": n_rows, "n_patients": n_patients, "n_positive": n_positive, "boosters": names,
                  "folds": folds, "seeds": seeds, "neg_per_pos": neg_per_pos, "threads": threads, "table": table_name},
    )  # fmt: skip
