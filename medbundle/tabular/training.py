"""Cross-validated gradient-boosted trees on the lesion metadata and the image score: isic's second stage.

Every top ISIC 2024 solution stacked its image model under GBDTs on the metadata. Here the trees train on the
image model's own patient-grouped folds (the ``fold`` of the sweep's out-of-fold table), twice per booster:

- ``tabular``: the metadata features alone (:mod:`medbundle.tabular.features`);
- ``tabular+image``: the same plus the out-of-fold image score and its per-patient z-score and rank.

Each (booster, fold) is a seed-bagged model on all positives and a sample of the negatives
(:func:`medbundle.tabular.boosters.fit_bagged`). Out of fold, every lesion is scored by the trees of the one fold
that held it out; boosters are averaged, and the ``blend`` mixes that average with the image score on the logit
scale, ``sigmoid((1 - w) logit(p_trees) + w logit(p_image))``, a formula that scores one lesion on its own, so
the torch-free predictor gives exactly the training side's number. The ``tabular+image`` models of every fold
are kept for inference (:class:`medbundle.tabular.model.TabularModel`), which averages the folds.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medbundle.data.columns import check_binary_cells, dataset_folder, read_csv_checked
from medbundle.io.atomic_file import atomic_write
from medbundle.metrics import auroc, partial_auc
from medbundle.tabular.bagging import NEG_PER_POS, fit_bagged
from medbundle.tabular.boosters import available_boosters
from medbundle.tabular.features import fit_features
from medbundle.tabular.image_scores import IMAGE_SCORE, oof_image_scores
from medbundle.tabular.model import FEATURES_FILE, MANIFEST_FILE, blend_scores, model_folder

__all__ = ["REPORT_ENTRIES", "train_tabular"]

logger = logging.getLogger("medbundle.tabular")

#: the report's rows, in order: what each is
REPORT_ENTRIES = {
    "image": "the image model alone (the sweep's out-of-fold score)",
    "tabular": "the trees on the metadata features alone, boosters averaged",
    "tabular+image": "the trees with the image score and its per-patient z-score and rank as features",
    "blend": "tabular+image and the image score mixed on the logit scale (image_weight)",
}


def _scores(labels: np.ndarray, scores: np.ndarray, min_tpr: float) -> dict[str, float]:
    return {"pauc": float(partial_auc(labels, scores, min_tpr=min_tpr)), "auroc": float(auroc(labels, scores))}


def _training_frame(dataset_dir: str | Path, csv: str, oof: str | Path, models: Sequence[str] | None) -> pd.DataFrame:
    """The metadata rows joined to their out-of-fold image score and fold, in CSV order.

    Raises:
        ValueError: an empty id or a label other than 0/1 (naming CSV lines), or a row without an out-of-fold score.
    """
    folder = dataset_folder(dataset_dir, f"{csv} (the Kaggle isic-2024-challenge files)")
    frame = read_csv_checked(folder / csv, ["isic_id", "patient_id", "target"], dtype={"isic_id": str, "patient_id": str})
    check_binary_cells(frame, ["isic_id", "patient_id", "target"], "target", folder / csv)
    scores = oof_image_scores(oof, models)
    joined = frame.merge(scores, on="isic_id", how="left", validate="one_to_one")
    missing = joined[IMAGE_SCORE].isna()
    if missing.any():
        examples = joined.loc[missing, "isic_id"].head(5).tolist()
        raise ValueError(
            f"{int(missing.sum())} of {len(frame)} lesions of {folder / csv} have no out-of-fold image score in {oof} "
            f"(e.g. {examples}): every fold of the sweep must be trained and evaluated on this CSV "
            f"(`scripts/sweep.py oof --runs {oof}`), with the same dataset_dir."
        )
    extra = len(scores) - int((~missing).sum())
    if extra:
        logger.warning("%d out-of-fold scores of %s have no row in %s and are ignored", extra, oof, folder / csv)
    return joined


def train_tabular(
    dataset_dir: str | Path,
    oof: str | Path,
    out: str | Path,
    csv: str = "train-metadata.csv",
    boosters: Sequence[str] | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    neg_per_pos: float | None = NEG_PER_POS,
    image_weight: float = 0.25,
    models: Sequence[str] | None = None,
    min_tpr: float = 0.8,
    threads: int | None = None,
) -> dict[str, Any]:
    """Train the second stage out of fold and write its models, ``report.md`` / ``report.json`` and ``oof.csv``.

    Args:
        dataset_dir: the Kaggle isic-2024-challenge folder (or the demo's).
        oof: the sweep folder whose ``<model>/oof.csv`` ``scripts/sweep.py oof`` wrote (or one ``oof.csv``).
        out: the output folder: ``tabular.json``, ``features.json``, ``models/<booster>/fold_<k>/``, ``oof.csv``,
            ``importance.csv``, ``report.md``, ``report.json``.
        csv: the training metadata CSV inside `dataset_dir`.
        boosters: of :data:`medbundle.tabular.boosters.BOOSTERS`; default every installed one.
        seeds: one bagged model per seed, each on its own sample of the negatives.
        neg_per_pos: negatives sampled per positive for each bag (100: the top ISIC 2024 solutions' 1 %); None
            trains every bag on every row.
        image_weight: the image score's weight in the blend, in ``[0, 1]``.
        models: the sweep's models whose out-of-fold scores are averaged; default all.
        min_tpr: the partial AUC's lower true-positive rate (ISIC 2024: 0.8).
        threads: threads per booster; default the cores this process may use.

    Returns:
        The report (as written to ``report.json``).

    Raises:
        ValueError: bad settings, or lesions without an out-of-fold score.
    """
    if not 0.0 <= image_weight <= 1.0:
        raise ValueError(f"image_weight must lie in [0, 1], got {image_weight}.")
    boosters = list(boosters or available_boosters())
    if not boosters:
        raise ValueError("no gradient-boosting library installed: pip install 'medbundle[tabular]'.")
    out = Path(out)
    frame = _training_frame(dataset_dir, csv, oof, models)
    labels = frame["target"].to_numpy(int)
    folds = frame["fold"].to_numpy(int)
    # one feature build: the metadata-only matrix is the full one without the image score's columns
    spec, matrix = fit_features(frame, image_score=IMAGE_SCORE, source=str(Path(dataset_dir) / csv))
    variants = {
        "tabular": matrix[[column for column in matrix if not column.startswith(IMAGE_SCORE)]],
        "tabular+image": matrix,
    }
    logger.info("%d lesions, %d positive, %d patients, folds %s; features: %s", len(frame), labels.sum(),
                frame["patient_id"].nunique(), sorted(set(folds.tolist())),
                ", ".join(f"{name} {features.shape[1]}" for name, features in variants.items()))  # fmt: skip
    predictions = pd.DataFrame({"isic_id": frame["isic_id"], "patient_id": frame["patient_id"], "fold": folds,
                                "target": labels, "image": frame[IMAGE_SCORE].to_numpy(float)})  # fmt: skip
    importance, timings = [], []
    for variant, features in variants.items():
        for booster in boosters:
            column = f"{booster}:{variant}"
            predictions[column] = np.nan
            for fold in sorted(set(folds.tolist())):
                held_out = folds == fold
                begin = time.monotonic()
                bagged = fit_bagged(booster, features[~held_out], labels[~held_out], seeds=seeds,
                                    neg_per_pos=neg_per_pos, threads=threads)  # fmt: skip
                predictions.loc[held_out, column] = bagged.predict(features[held_out])
                seconds = time.monotonic() - begin
                timings.append({"booster": booster, "variant": variant, "fold": fold, "seconds": round(seconds, 2)})
                logger.info("%s fold %d: %.1f s, pAUC %.4f", column, fold, seconds,
                            partial_auc(labels[held_out], predictions.loc[held_out, column], min_tpr=min_tpr))  # fmt: skip
                if variant == "tabular+image":
                    bagged.save(model_folder(out, booster, fold))
                    importance.append(bagged.importance().rename(f"{booster}:{fold}"))
        predictions[variant] = predictions[[f"{b}:{variant}" for b in boosters]].mean(axis=1)
    predictions["blend"] = blend_scores(predictions["tabular+image"].to_numpy(), predictions["image"].to_numpy(),
                                        image_weight)  # fmt: skip

    entries = {name: _scores(labels, predictions[name].to_numpy(float), min_tpr) for name in REPORT_ENTRIES}
    per_booster = {f"{b}:{v}": _scores(labels, predictions[f"{b}:{v}"].to_numpy(float), min_tpr)
                   for v in variants for b in boosters}  # fmt: skip
    gain = pd.concat(importance, axis=1).fillna(0.0).mean(axis=1).sort_values(ascending=False)
    report = {
        "entries": entries,
        "meaning": REPORT_ENTRIES,
        "boosters": per_booster,
        "n_lesions": len(frame), "n_positive": int(labels.sum()), "n_patients": int(frame["patient_id"].nunique()),
        "folds": sorted(int(f) for f in set(folds.tolist())),
        "settings": {"dataset_dir": str(dataset_dir), "csv": csv, "oof": str(oof), "boosters": boosters,
                     "seeds": list(seeds), "neg_per_pos": neg_per_pos, "image_weight": image_weight,
                     "models": None if models is None else list(models), "min_tpr": min_tpr},
        "importance": {name: float(value) for name, value in gain.head(30).items()},
        "timings": timings,
    }  # fmt: skip
    _write(out, report, predictions, gain, spec)
    return report


def _write(out: Path, report: dict, predictions: pd.DataFrame, gain: pd.Series, spec) -> None:
    """The model folder's manifest and feature spec, then the report files, each replaced atomically."""
    settings = report["settings"]
    manifest = {"boosters": settings["boosters"], "folds": report["folds"], "image_weight": settings["image_weight"],
                "features": FEATURES_FILE, "models": "models/<booster>/fold_<k>"}  # fmt: skip
    files = {
        MANIFEST_FILE: json.dumps(manifest, indent=1),
        FEATURES_FILE: spec.to_json(),
        "report.json": json.dumps(report, indent=1),
        "report.md": report_markdown(report),
        "oof.csv": predictions.to_csv(index=False),
        "importance.csv": gain.rename("gain").rename_axis("feature").to_csv(),
    }
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        with atomic_write(out / name, text=True) as stream:
            stream.write(text)
    logger.info("wrote %s: %s", out, ", ".join(f"{name} pAUC {v['pauc']:.4f}" for name, v in report["entries"].items()))


def report_markdown(report: dict) -> str:
    """``report.md``: the four out-of-fold rows, each booster, the settings and the top features by gain."""
    settings = report["settings"]
    lines = [
        "# isic second stage: gradient-boosted trees on the metadata and the image score",
        "",
        (f"Out of fold over {report['n_lesions']:,} lesions ({report['n_positive']} malignant, "
         f"{report['n_patients']:,} patients), folds {report['folds']} of the image model's sweep `{settings['oof']}`. "
         f"pAUC: the ISIC 2024 partial AUC above {settings['min_tpr']:.0%} TPR (max {1 - settings['min_tpr']:.2f})."),
        "",
        "| model | pAUC | AUROC | what |",
        "|---|---|---|---|",
        *(f"| {name} | {v['pauc']:.4f} | {v['auroc']:.4f} | {report['meaning'][name]} |"
          for name, v in report["entries"].items()),
        "",
        "Per booster:",
        "",
        "| booster | pAUC | AUROC |",
        "|---|---|---|",
        *(f"| {name} | {v['pauc']:.4f} | {v['auroc']:.4f} |" for name, v in report["boosters"].items()),
        "",
        (f"Settings: boosters {', '.join(settings['boosters'])}; seeds {settings['seeds']}; negatives per positive "
         f"{settings['neg_per_pos']}; image weight in the blend {settings['image_weight']}."),
        "",
        "Top features of tabular+image (mean share of the gain over boosters and folds):",
        "",
        "| feature | gain |",
        "|---|---|",
        *(f"| {name} | {value:.3f} |" for name, value in report["importance"].items()),
        "",
    ]  # fmt: skip
    return "\n".join(lines)
