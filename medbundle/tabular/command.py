"""``medbundle tabular`` (train the second stage out of fold) and ``medbundle tabular_predict`` (the submission)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medbundle.data.columns import dataset_folder, read_csv_checked
from medbundle.io.atomic_file import atomic_write
from medbundle.tabular.image_scores import image_scores_of_test
from medbundle.tabular.model import TabularModel

__all__ = ["predict_submission", "tabular_options"]


def _names(value: str | Sequence[str] | None) -> list[str] | None:
    """fire gives ``--boosters lightgbm,xgboost`` as a tuple and ``--boosters lightgbm`` as a string."""
    if value is None:
        return None
    return [part for part in value.split(",") if part] if isinstance(value, str) else [str(v) for v in value]


def tabular_options(boosters, models, seeds) -> dict[str, Any]:
    """The command line's list options as :func:`~medbundle.tabular.training.train_tabular` takes them."""
    seeds = [int(seeds)] if isinstance(seeds, int) else [int(s) for s in (_names(seeds) or [])]
    return {"boosters": _names(boosters), "models": _names(models), **({"seeds": seeds} if seeds else {})}


def predict_submission(
    model: str | Path,
    dataset_dir: str | Path,
    image_scores: str | Path,
    csv: str = "test-metadata.csv",
    out: str | Path | None = None,
) -> Path:
    """Score the test metadata with a trained second stage and write ``submission.csv`` (``isic_id,target``) in
    the test CSV's row order.

    Args:
        model: the folder ``medbundle tabular`` wrote.
        dataset_dir: the folder holding the test metadata CSV.
        image_scores: the test images' scores (the ensemble's ``submission.csv``, or a ``predictions_image.csv``).
        csv: the test metadata CSV inside `dataset_dir`.
        out: the output folder; default `model`. It also gets ``predictions.csv`` (image, trees and blend).

    Returns:
        The submission's path.
    """
    folder = dataset_folder(dataset_dir, f"{csv} (the Kaggle isic-2024-challenge test metadata)")
    frame = read_csv_checked(folder / csv, ["isic_id", "patient_id"], dtype={"isic_id": str, "patient_id": str})
    scored = TabularModel.load(model).predict(frame, image_scores_of_test(image_scores), source=str(folder / csv))
    out = Path(out or model)
    out.mkdir(parents=True, exist_ok=True)
    for name, table in (("predictions.csv", scored), ("submission.csv", scored[["isic_id", "target"]])):
        with atomic_write(out / name, text=True) as stream:
            table.to_csv(stream, index=False)
    return out / "submission.csv"
