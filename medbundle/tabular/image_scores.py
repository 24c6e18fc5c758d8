"""The image model's score of each lesion, as the trees take it: out of fold for training, the ensemble's for test.

The trees learn how much to trust the image score from the training rows, so a training row's score must come
from a model that never saw that row: the sweep's out-of-fold table (``scripts/sweep.py oof`` writes
``<sweep>/<model>/oof.csv``, one validation prediction per lesion, with its fold). The same folds then split the
trees' own cross-validation, so no tree is scored on a lesion whose patient it trained on. A test lesion's score
is the mean of the fold models (``bundles/ensemble/configs/inference.yaml`` writes it as ``submission.csv``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from medbundle.sweep.oof import OOF_FILE, oof_table
from medbundle.tabular.features import IMAGE_SCORE

__all__ = ["IMAGE_SCORE", "image_scores_of_test", "oof_image_scores"]


def oof_image_scores(sweep: str | Path, models: Sequence[str] | None = None) -> pd.DataFrame:
    """``isic_id``, ``fold`` and ``image_score`` (the mean over `models` of their out-of-fold probability).

    Args:
        sweep: the sweep folder ``<runs_dir>/<name>`` whose ``<model>/oof.csv`` files ``sweep.py oof`` wrote, or one
            ``oof.csv`` file.
        models: the sweep's models to average; default every model with an ``oof.csv``.

    Raises:
        FileNotFoundError: no ``oof.csv`` (the message says to run ``sweep.py oof``), or a named model has none.
        ValueError: the models' folds disagree for a lesion, or a file lacks ``image_id``, ``fold`` or ``pred``.
    """
    sweep = Path(sweep)
    if sweep.is_file():
        files = {sweep.parent.name: sweep}
    else:
        found = {path.parent.name: path for path in sorted(sweep.glob(f"*/{OOF_FILE}"))}
        files = found if models is None else {name: sweep / name / OOF_FILE for name in models}
        absent = [str(path) for path in files.values() if not path.is_file()]
        if not files or absent:
            raise FileNotFoundError(
                f"no out-of-fold predictions {', '.join(absent) or f'{sweep}/<model>/{OOF_FILE}'}: run "
                f"`python scripts/sweep.py oof --runs {sweep}` after training the sweep, then pass --oof {sweep}."
            )
    merged = None
    for model, path in files.items():
        table = oof_table(path)
        lacking = [column for column in ("image_id", "fold", "pred") if column not in table]
        if lacking:
            raise ValueError(f"{path} lacks column(s) {lacking}: pass an oof.csv written by `scripts/sweep.py oof`.")
        table = table[["image_id", "fold", "pred"]].rename(columns={"pred": model, "fold": f"fold_{model}"})
        merged = table if merged is None else merged.merge(table, on="image_id", how="inner")
    folds = merged[[f"fold_{model}" for model in files]]
    disagree = folds.nunique(axis=1) > 1
    if disagree.any():
        raise ValueError(
            f"the models {list(files)} put lesion {merged.loc[disagree, 'image_id'].iloc[0]} in different folds: "
            "their sweeps were split with other n_folds or seed; pass --models with models of one split."
        )
    return pd.DataFrame({
        "isic_id": merged["image_id"].astype(str),
        "fold": folds.iloc[:, 0].astype(int),
        IMAGE_SCORE: merged[list(files)].mean(axis=1).astype(float),
    })  # fmt: skip


def image_scores_of_test(path: str | Path) -> pd.Series:
    """``isic_id`` -> image score from the ensemble's ``submission.csv`` (``isic_id,target``) or a predictions file
    with ``image_id`` and ``pred`` (a task bundle's or the ensemble's ``predictions_image.csv``: its ``pred``).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: it has neither column pair.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"image scores {path} not found: predict the test set first (bundles/ensemble/configs/inference.yaml "
            "with --task isic writes submission.csv), then pass its path as --image_scores."
        )
    frame = pd.read_csv(path, dtype={"isic_id": str, "image_id": str})
    for key, value in (("isic_id", "target"), ("image_id", "pred")):
        if {key, value} <= set(frame.columns):
            return pd.Series(frame[value].to_numpy(float), index=frame[key].astype(str), name=IMAGE_SCORE)
    raise ValueError(
        f"{path} has columns {list(frame.columns)}; image scores need isic_id,target (a submission.csv) or "
        "image_id,pred (predictions_image.csv)."
    )
