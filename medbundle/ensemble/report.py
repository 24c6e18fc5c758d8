"""Combine the members' probabilities with a strategy and write what an ensemble run leaves behind.

For a task scored per group (RSNA: per breast), each member's image probabilities are first aggregated per
group and the strategy is applied to those: member thresholds were chosen on groups, so a member votes on a
breast, not on an image. Image-level ensemble predictions are written as well.

Files in ``output_dir`` (:func:`write_evaluation`, :func:`write_predictions`):

- ``members.csv`` / ``members.md``: one row per member and one for the ensemble, with the task's metrics at
  the scored level (rsna: pF1 per breast at the row's threshold, probabilistic pF1, AUROC; isic: pAUC above
  80 % TPR, AUROC; chest_xray: accuracy, macro F1, macro AUROC), labelled runs only;
- ``metrics.json``: the ensemble's full summary per level, the strategy, threshold and weights (strict JSON:
  an undefined metric is ``null``);
- ``predictions_image.csv`` (and ``predictions_breast.csv``): ids, label, every member's probability (column
  named by the member; ``<member>:<class>`` for multi-class) and the ensemble's (``ensemble``,
  ``ensemble_label`` at the threshold; ``ensemble:<class>``, ``ensemble_class``);
- the task's submission: rsna ``submission.csv`` (prediction_id,cancer per breast, binarised), isic
  ``submission.csv`` (isic_id,target scores), chest_xray ``inference/predictions_image.csv`` (image_id,
  pred_class, prob_<class>; binary classify: image_id, pred, pred_class at the ensemble threshold), written by
  the bundles' own writers.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medbundle.compare import markdown_table
from medbundle.ensemble.members import Member
from medbundle.ensemble.predictions import MemberPredictions
from medbundle.ensemble.strategies import combine
from medbundle.ensemble.tasks import EnsembleTask, get_task
from medbundle.handlers import PredictionWriter, SubmissionWriter
from medbundle.io.strict_json import to_strict_json
from medbundle.metrics import aggregate_groups, binary_summary, multiclass_summary
from medbundle.report.ensemble_table import ENSEMBLE, model_table

__all__ = [
    "EnsemblePredictions",
    "LevelPredictions",
    "combine_predictions",
    "metrics_table",
    "model_table",
    "prediction_table",
    "write_evaluation",
    "write_predictions",
]

logger = logging.getLogger(__name__)



@dataclass
class LevelPredictions:
    """Member and ensemble predictions at one level (images, or the task's groups).

    Args:
        ids: one row per item with its id columns.
        labels: labels per item, or None.
        members: member name -> ``(N,)`` or ``(N, K)`` probabilities.
        ensemble: the strategy's ``(N,)`` scores or ``(N, K)`` probabilities.
    """

    ids: pd.DataFrame
    labels: np.ndarray | None
    members: dict[str, np.ndarray]
    ensemble: np.ndarray


@dataclass
class EnsemblePredictions:
    """The combined predictions of an ensemble and how they were combined.

    Args:
        task: the task.
        strategy: the strategy name.
        members: the members, in order.
        member_thresholds: each binary member's own threshold (None for multi-class).
        weights: the member weights used, or None for equal weights.
        threshold: the ensemble's decision threshold (None for multi-class argmax).
        class_names: class names of a multi-class task, in output order.
        aggregation: how image predictions form a group's (``mean`` or ``max``).
        levels: ``"image"`` and, for a grouped task, its group level (``"breast"``).
    """

    task: EnsembleTask
    strategy: str
    members: list[Member]
    member_thresholds: dict[str, float] | None
    weights: list[float] | None
    threshold: float | None
    class_names: list[str] | None
    aggregation: str
    levels: dict[str, LevelPredictions]


def _weights(members: Sequence[Member], strategy: str, weights: Sequence[float] | None) -> list[float] | None:
    if weights is not None:
        if len(weights) != len(members):
            raise ValueError(
                f"weights has {len(weights)} entries for {len(members)} members {[m.name for m in members]}; give one "
                "per member, in that order."
            )
        return [float(w) for w in weights]
    if strategy != "hard_weighted":
        return None
    aurocs = [m.threshold("auroc") for m in members]
    for member, value in zip(members, aurocs):
        if not math.isfinite(value):
            raise ValueError(
                f"ensemble member {member.path} stores validation AUROC {value}, which cannot weight its vote (its "
                "validation held one class); pass weights explicitly or use strategy soft."
            )
    return aurocs


def combine_predictions(
    predictions: MemberPredictions,
    members: Sequence[Member],
    task: str,
    strategy: str = "soft",
    weights: Sequence[float] | None = None,
    threshold_key: str | None = None,
    aggregation: str = "mean",
) -> EnsemblePredictions:
    """Apply `strategy` to the members' probabilities at the image level and at the task's group level.

    Args:
        predictions: every member's probabilities (:func:`~medbundle.ensemble.predict_members`).
        members: the members, in the order of the weights.
        task: the task name.
        strategy: see :mod:`medbundle.ensemble.strategies`.
        weights: one weight per member; default the stored validation AUROC for ``hard_weighted``, else equal.
        threshold_key: the stored threshold each binary member decides at; default the task's.
        aggregation: how a group's image probabilities combine (``mean`` or ``max``).

    Raises:
        ValueError: the strategy does not fit the task, or weights are malformed.
        KeyError: a member lacks the threshold or AUROC the strategy needs; the message names the file.
    """
    spec = get_task(task)
    binary = spec.is_binary(members)
    names = [m.name for m in members]
    member_thresholds = None
    if binary:
        key = threshold_key or spec.threshold_key
        member_thresholds = {m.name: m.threshold(key) for m in members}
    used_weights = _weights(members, strategy, weights)
    thresholds = None if member_thresholds is None else list(member_thresholds.values())

    def level(ids: pd.DataFrame, labels: np.ndarray | None, probabilities: dict[str, np.ndarray]) -> tuple[LevelPredictions, Any]:
        combined = combine(strategy, np.stack([probabilities[n] for n in names]), thresholds, used_weights)
        return LevelPredictions(ids, labels, probabilities, combined.scores), combined.threshold

    levels: dict[str, LevelPredictions] = {}
    levels["image"], threshold = level(predictions.ids, predictions.labels, predictions.probabilities)
    if spec.group_key is not None and spec.group_key in predictions.ids:
        groups = predictions.ids[spec.group_key].tolist()
        grouped: dict[str, np.ndarray] = {}
        for name in names:
            group_ids, group_labels, grouped[name] = aggregate_groups(
                groups, predictions.labels, predictions.probabilities[name], how=aggregation
            )
        levels[spec.scored_level], _ = level(pd.DataFrame({spec.group_key: group_ids}), group_labels, grouped)
    class_names = None
    if not binary:
        stored = members[0].config.get("class_names")
        n_classes = levels["image"].ensemble.shape[1]
        class_names = [str(c) for c in stored] if stored else [f"class_{k}" for k in range(n_classes)]
    return EnsemblePredictions(
        task=spec,
        strategy=strategy,
        members=list(members),
        member_thresholds=member_thresholds,
        weights=used_weights,
        threshold=threshold,
        class_names=class_names,
        aggregation=aggregation,
        levels=levels,
    )


def prediction_table(ensemble: EnsemblePredictions, level: str = "image") -> pd.DataFrame:
    """One row per item of `level`: ids, label, every member's probability, the ensemble's and its decision."""
    data = ensemble.levels[level]
    table = data.ids.reset_index(drop=True).copy()
    names = ensemble.class_names
    if data.labels is not None:
        table["label"] = data.labels
        if names is not None:
            table["label_class"] = [names[int(k)] for k in data.labels]
    columns = {**data.members, ENSEMBLE: data.ensemble}
    for name, values in columns.items():
        if names is None:
            table[name] = values
        else:
            for k, class_name in enumerate(names):
                table[f"{name}:{class_name}"] = values[:, k]
    if names is None:
        table[f"{ENSEMBLE}_label"] = (data.ensemble >= ensemble.threshold).astype(int)
    else:
        table[f"{ENSEMBLE}_class"] = [names[k] for k in data.ensemble.argmax(1)]
    return table


def _summary(ensemble: EnsemblePredictions, labels: np.ndarray, scores: np.ndarray, threshold: float | None) -> dict:
    if ensemble.class_names is None:
        return binary_summary(labels, scores, threshold)
    return multiclass_summary(labels, scores, ensemble.class_names)


def metrics_table(ensemble: EnsemblePredictions) -> pd.DataFrame:
    """One row per member and one for the ensemble: the task's metrics at its scored level (labels required).

    Binary rows are binarised at their own threshold: each member's stored one, the ensemble's from the strategy.

    Raises:
        ValueError: the predictions have no labels.
    """
    spec = ensemble.task
    data = ensemble.levels[spec.scored_level]
    if data.labels is None:
        raise ValueError("the metrics table needs labelled items; these predictions have no labels.")
    weights = dict(zip([m.name for m in ensemble.members], ensemble.weights or []))
    rows = []
    for member in [*ensemble.members, None]:
        name = member.name if member is not None else ENSEMBLE
        config = member.config if member is not None else {}
        threshold = ensemble.threshold if member is None else (ensemble.member_thresholds or {}).get(name)
        scores = data.ensemble if member is None else data.members[name]
        summary = _summary(ensemble, data.labels, scores, threshold)
        row = {
            "member": name,
            "model": config.get("model", config.get("backbone", ensemble.strategy if member is None else "?")),
            "image_size": "x".join(map(str, config.get("image_size", []))),
        }
        if threshold is not None:
            row["threshold"] = float(threshold)
        if weights:
            row["weight"] = weights.get(name, float("nan"))
        row |= {key: float(summary[key]) for key in spec.table_metrics if key in summary}
        rows.append(row)
    return pd.DataFrame(rows)


def _write_submission(ensemble: EnsemblePredictions, output_dir: Path) -> None:
    """The task's submission file, written by the bundles' own writers from the ensemble's predictions."""
    spec = ensemble.task
    if spec.submission is None:
        data = ensemble.levels["image"]
        frame = data.ids[["image_id"]].reset_index(drop=True).copy()
        if ensemble.class_names is None:  # binary: the positive probability, named by the members' two classes
            frame["pred"] = data.ensemble
            writer = PredictionWriter(output_dir / "inference", threshold=ensemble.threshold,
                                      class_names=ensemble.members[0].config.get("class_names"))  # fmt: skip
        else:
            for k in range(data.ensemble.shape[1]):
                frame[f"pred_{k}"] = data.ensemble[:, k]
            writer = PredictionWriter(output_dir / "inference", class_names=ensemble.class_names)
        writer.write(frame, None)
        return
    group_key = spec.submission["group_key"]
    level = spec.scored_level if spec.group_key == group_key else "image"
    data = ensemble.levels[level]
    frame = pd.DataFrame({group_key: data.ids[group_key].to_numpy(), "pred": data.ensemble})
    threshold = ensemble.threshold if spec.binarize_submission else None
    SubmissionWriter(output_dir / "submission.csv", threshold=threshold, **spec.submission).write(frame, None)


def write_predictions(ensemble: EnsemblePredictions, output_dir: str | Path) -> dict[str, Path]:
    """Write ``predictions_<level>.csv`` per level and the task's submission; return the prediction files by level."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for level in ensemble.levels:
        written[level] = output_dir / f"predictions_{level}.csv"
        prediction_table(ensemble, level).to_csv(written[level], index=False)
    _write_submission(ensemble, output_dir)
    return written


def write_evaluation(
    ensemble: EnsemblePredictions, output_dir: str | Path, settings: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """Write the members table, ``metrics.json``, the predictions and the submission of a labelled run.

    Args:
        ensemble: the combined predictions.
        output_dir: the folder of the files (created if needed).
        settings: how the members were run, written into ``metrics.json`` first, e.g. ``{"tta": True}``.

    Returns:
        The members table (one row per member, then the ensemble).
    """
    output_dir = Path(output_dir)
    write_predictions(ensemble, output_dir)
    table = metrics_table(ensemble)
    table.to_csv(output_dir / "members.csv", index=False)
    (output_dir / "members.md").write_text(markdown_table(table) + "\n")
    metrics: dict[str, Any] = {
        **(settings or {}),
        "strategy": ensemble.strategy,
        "members": {m.name: str(m.path) for m in ensemble.members},
        "weights": ensemble.weights,
    }
    if ensemble.threshold is not None:
        metrics |= {"threshold": ensemble.threshold, "member_thresholds": ensemble.member_thresholds}
    if len(ensemble.levels) > 1:
        metrics["aggregation"] = ensemble.aggregation
    for level, data in ensemble.levels.items():
        metrics[level] = _summary(ensemble, data.labels, data.ensemble, ensemble.threshold)
    (output_dir / "metrics.json").write_text(to_strict_json(metrics, indent=2))
    logger.info("ensemble of %d members (%s):\n%s", len(ensemble.members), ensemble.strategy, markdown_table(table))
    logger.info("members table, metrics.json and predictions written to %s", output_dir)
    return table
