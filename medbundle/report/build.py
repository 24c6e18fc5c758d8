"""An evaluation's report: the numbers with intervals, curves at the operating point, calibration, subgroups and
Grad-CAM evidence, gathered from the files the evaluation wrote and rendered as one page (``report/index.html``).

Everything is read from the evaluation folder (``predictions_image.csv``, ``metrics.json``), the checkpoint
(thresholds, temperature) and the training run's TensorBoard events, so ``medbundle report --run DIR`` rebuilds a
page from files alone; ``report/inputs.json`` keeps what else it needs (the checkpoint, the images, the data set).

An ensemble's evaluation (``bundles/ensemble``) is reported the same way: its own columns of the prediction files
read in a single model's schema, its threshold from ``metrics.json``, no stored temperature, its members table, and
one member's checkpoint for the Grad-CAM evidence (an ensemble has no single network to explain).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from medbundle.checkpoints import (
    store_temperature,
    stored_bias,
    stored_temperature,
)
from medbundle.metrics import aggregate_groups
from medbundle.metrics.bootstrap import bootstrap_interval
from medbundle.metrics.calibration import (
    apply_temperature,
    expected_calibration_error,
    fit_platt,
    fit_temperature,
    logits_from_probabilities,
    reliability_bins,
)
from medbundle.report.ensemble_table import model_table
from medbundle.report.evidence import evidence_cases
from medbundle.report.facts import REPORT_FACTS, ReportFacts, headline_metrics

__all__ = ["INPUTS_FILE", "build_report", "rebuild_report"]

logger = logging.getLogger(__name__)

INPUTS_FILE = "inputs.json"
_THRESHOLD_KEYS = ("pf1_threshold", "roc_threshold")  # the operating point a binary bundle decides at, in order


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _interval(metric, labels, scores, groups, n_resamples: int, seed: int) -> dict[str, Any]:
    found = bootstrap_interval(metric, labels, scores, groups=groups, n_resamples=n_resamples, seed=seed)
    return {"estimate": _finite(found.estimate), "low": _finite(found.low), "high": _finite(found.high)}


def _curves(labels: np.ndarray, scores: np.ndarray, names: Sequence[str] | None, threshold: float | None) -> list[dict]:
    """ROC and precision-recall curves (one series per class for a multi-class model), the threshold marked."""
    from sklearn.metrics import auc, precision_recall_curve, roc_curve

    series = {"roc": [], "pr": []}
    columns = [(None, labels == 1, scores)] if scores.ndim == 1 else [
        (name, labels == k, scores[:, k]) for k, name in enumerate(names or [])
    ]  # fmt: skip
    marker = {"roc": None, "pr": None}
    for name, truth, score in columns:
        if truth.all() or not truth.any():
            continue
        fpr, tpr, _ = roc_curve(truth, score)
        precision, recall, _ = precision_recall_curve(truth, score)
        label = name or "model"
        series["roc"].append({"name": label, "x": fpr.tolist(), "y": tpr.tolist(), "auc": float(auc(fpr, tpr))})
        series["pr"].append({"name": label, "x": recall.tolist(), "y": precision.tolist(), "auc": float(auc(recall, precision))})
        if name is None and threshold is not None:
            decided = score >= threshold
            tp, fp = (decided & truth).sum(), (decided & ~truth).sum()
            sensitivity, fallout = tp / truth.sum(), fp / max((~truth).sum(), 1)
            text = f"threshold {threshold:.3g}"
            marker["roc"] = {"x": float(fallout), "y": float(sensitivity), "label": text}
            marker["pr"] = {"x": float(sensitivity), "y": float(tp / max(tp + fp, 1)), "label": text}
    titles = {"roc": "ROC curve", "pr": "Precision-recall curve"}
    return [{"kind": kind, "title": titles[kind], "series": s, "marker": marker[kind]} for kind, s in series.items() if s]


def _training_curves(log_dir: str | os.PathLike | None, max_points: int = 400) -> list[dict]:
    """Every scalar of the training run's TensorBoard events (loss per iteration thinned to `max_points`)."""
    if not log_dir or not Path(log_dir).is_dir():
        return []
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    events.Reload()
    curves = []
    for tag in sorted(events.Tags().get("scalars", [])):
        points = events.Scalars(tag)
        step = max(1, len(points) // max_points)
        points = points[::step]
        curves.append({"tag": tag, "steps": [p.step for p in points], "values": [float(p.value) for p in points]})
    return curves


def _subgroups(
    facts: ReportFacts, table: pd.DataFrame, metadata: pd.DataFrame | None, metric_name: str, metric, scores, labels,
    overall: float | None, n_resamples: int, seed: int, min_n: int = 10, min_groups: int = 5,
) -> tuple[list[dict], list[str]]:  # fmt: skip
    """The headline ranking metric per subgroup of each attribute, with intervals; a flag where an interval lies
    wholly below the overall value.

    A subgroup of fewer than `min_groups` scoring units (patients, breasts) gets its estimate but no interval and no
    flag: resampling one or two patients gives an interval of zero width, a certainty the data do not hold."""
    if metadata is None:
        return [], []
    rows, flags = [], []
    groups = table[facts.group_key].to_numpy() if facts.group_key in table else None
    for attribute, (column, binning) in facts.attributes.items():
        if column not in metadata:
            continue
        values = metadata[column] if binning is None else binning(metadata[column])
        values = values.astype(object).where(values.notna(), "unknown").map(str).replace({"": "unknown", "nan": "unknown"}).to_numpy()
        for group in sorted(set(values), key=lambda g: (g == "unknown", g.lstrip("<"))):  # "<50" before "50-59"
            mask = values == group
            row = {"attribute": attribute, "group": group, "n": int(mask.sum()), "metric": metric_name,
                   "estimate": None, "low": None, "high": None, "flag": False}  # fmt: skip
            if mask.sum() >= min_n and (metric_name != "AUROC" or len(set(labels[mask].tolist())) > 1):
                sub_groups = None if groups is None else groups[mask]
                row |= _interval(metric, labels[mask], scores[mask], sub_groups, n_resamples, seed)
                units = None if sub_groups is None else len(set(sub_groups.tolist()))
                if units is not None and units < min_groups:
                    unit = facts.group_key.removesuffix("_id")
                    row |= {"low": None, "high": None, "note": f"{units} {unit}{'s' if units > 1 else ''}: no interval"}
                if overall is not None and row["high"] is not None and row["high"] < overall:
                    row["flag"] = True
                    flags.append(f"{attribute} = {group} (n = {row['n']}): {metric_name} {row['estimate']:.3f} "
                                 f"({row['low']:.3f}–{row['high']:.3f}) lies wholly below the overall {overall:.3f}")  # fmt: skip
            rows.append(row)
    return rows, flags


def _metadata(facts: ReportFacts, table: pd.DataFrame, dataset_dir, attributes_csv, images) -> pd.DataFrame | None:
    """The attributes of each row of `table` (same order), from `attributes_csv` or the data set's metadata CSV, and
    those the task derives from the files (:attr:`ReportFacts.derived`)."""
    source, id_column = (attributes_csv, None) if attributes_csv else (None, facts.metadata_id)
    if source is None and dataset_dir and facts.metadata_csv:
        source = Path(dataset_dir) / facts.metadata_csv
    derived = facts.derived(table["image_id"], images).reset_index(drop=True) if facts.derived else None
    if source is None or not Path(source).is_file():
        return derived
    frame = pd.read_csv(source, dtype=str, low_memory=False)
    id_column = id_column or ("image_id" if "image_id" in frame else frame.columns[0])
    frame = frame.drop_duplicates(id_column).set_index(id_column)
    ids = table["image_id"].astype(str).str.rpartition("::")[2]
    joined = frame.reindex(ids.str.rpartition("/")[2].where(~ids.isin(frame.index), ids)).reset_index(drop=True)
    return joined if derived is None else pd.concat([derived.drop(columns=joined.columns, errors="ignore"), joined], axis=1)


def _evidence(cases, images: Mapping[str, str], bundle, checkpoint, out_dir: Path, target_layer) -> list[dict]:
    """Grad-CAM overlays of the chosen cases (the image the network saw), per section."""
    sections = []
    for title, class_index, rows in cases:
        items = []
        paths = [images[str(i)] for i in rows["image_id"] if str(i) in images]
        if paths:
            from medbundle.explain import explain

            explained = explain(str(bundle), str(checkpoint), paths, str(out_dir / "evidence"), class_index=class_index,
                                target_layer=target_layer)  # fmt: skip
            for (_, row), found in zip(rows.iterrows(), explained):
                items.append({"image_id": str(row["image_id"]), "probability": found.get("probability"),
                              "label": str(row.get("label_class", row.get("label", ""))), "png": found["png"]})  # fmt: skip
        sections.append({"section": title, "items": items})
    return sections


def _fit_calibration(raw: np.ndarray, labels: np.ndarray, binary: bool) -> tuple[float, float]:
    """Binary: Platt's temperature and bias (a temperature cannot undo the prior shift of a model trained on a share
    of the negatives, isic's); multi-class, or a split with one class only: a temperature alone."""
    if binary and np.unique(labels).size == 2:
        return fit_platt(raw, labels)
    return fit_temperature(raw, labels), 0.0


def _calibration_name(temperature: float, bias: float, binary: bool) -> str:
    return f"temperature {temperature:.3f}" + (f" and logit bias {bias:+.3f}" if binary else "")


@dataclass(frozen=True)
class _Model:
    """What the report reads about the evaluated model besides its predictions: one checkpoint's, or an ensemble's.

    Args:
        table: the image rows in a single model's schema (``label``, ``pred`` or ``prob_<class>``, the ids).
        thresholds: the stored binary operating points by key; `threshold_key` is the one decided at.
        threshold_key: the key of the decision threshold, None for none (0.5).
        temperature: the temperature the evaluated probabilities already carry (1: none).
        bias: the logit bias they carry after it (0: none).
        description: the model in the subtitle (a backbone, the ensemble and its strategy).
        source: the settings rows naming where the model came from.
        notes: notes of its own.
        members: an ensemble's members table (one row per member and one for the ensemble).
        level_table: the rows of the task's level in the schema of `table` where the evaluation scored that level
            itself (an ensemble votes per breast); None aggregates the image rows.
    """

    table: pd.DataFrame
    thresholds: dict[str, float]
    threshold_key: str | None
    temperature: float
    bias: float
    description: str | None
    source: dict[str, str]
    notes: list[str] = field(default_factory=list)
    members: list[dict] | None = None
    level_table: pd.DataFrame | None = None


def _read_predictions(path: Path) -> pd.DataFrame:
    """An evaluation's prediction CSV, ids as text; a report needs its labels."""
    table = pd.read_csv(path, dtype={"image_id": str, "patient_id": str, "breast_id": str})
    if "label" not in table:
        raise ValueError(f"{path} has no label column: a report needs a labelled evaluation.")
    return table


def _decision_key(thresholds: Mapping[str, float], evaluation: Mapping[str, Any]) -> str | None:
    """The key of the threshold the evaluation decided at (its ``metrics.json`` ``threshold``: the bundle's
    ``threshold_key``, e.g. isic's ``roc_threshold``), else the first stored of :data:`_THRESHOLD_KEYS`."""
    decided = evaluation.get("threshold")
    if isinstance(decided, (int, float)):
        keys = [key for key in (*_THRESHOLD_KEYS, *sorted(thresholds)) if key.endswith("threshold") and key in thresholds]
        match = next((key for key in keys if math.isclose(thresholds[key], decided, rel_tol=1e-6, abs_tol=1e-9)), None)
        if match:
            return match
    return next((key for key in _THRESHOLD_KEYS if key in thresholds), None)


def _checkpoint_model(eval_dir: Path, checkpoint: str | os.PathLike, evaluation: Mapping[str, Any]) -> _Model:
    """A task bundle's evaluation of `checkpoint`: its thresholds, stored calibration and backbone."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    thresholds = {key: float(v) for key, v in state.get("thresholds", {}).items()}
    return _Model(
        table=_read_predictions(eval_dir / "predictions_image.csv"),
        thresholds=thresholds,
        threshold_key=_decision_key(thresholds, evaluation),
        temperature=stored_temperature(state),
        bias=stored_bias(state),
        description=state.get("config", {}).get("backbone"),
        source={"checkpoint": str(checkpoint)},
    )


def _ensemble_model(eval_dir: Path, checkpoint: str | os.PathLike | None, task: str, evaluation: Mapping) -> _Model:
    """An ensemble bundle's evaluation: its columns of the prediction files, its threshold and members table;
    `checkpoint`, one member's, only explains (the Grad-CAM evidence)."""
    level = REPORT_FACTS.get(task, REPORT_FACTS["classify"]).level
    level_path = eval_dir / f"predictions_{level}.csv"
    members = eval_dir / "members.csv"
    thresholds = {"ensemble_threshold": float(evaluation["threshold"])} if "threshold" in evaluation else {}
    evidence = (f"evidence maps: member {checkpoint} (Grad-CAM of one network: the probabilities on them are that "
                "member's; the ensemble's probabilities chose the cases)") if checkpoint else "no evidence maps"  # fmt: skip
    return _Model(
        table=model_table(_read_predictions(eval_dir / "predictions_image.csv"), task),
        thresholds=thresholds,
        threshold_key="ensemble_threshold" if thresholds else None,
        temperature=1.0,
        bias=0.0,
        description=f"ensemble of {len(evaluation.get('members', {}))} members ({evaluation.get('strategy')})",
        source={"evidence member": str(checkpoint)} if checkpoint else {},
        notes=[evidence],
        members=pd.read_csv(members).to_dict("records") if members.is_file() else None,
        level_table=model_table(_read_predictions(level_path), task) if level and level_path.is_file() else None,
    )


def _calibration_note(fitted: str, stored: str, fit: bool, calibrate: bool, ensemble: bool) -> str:
    """Where the calibration section's calibration (`fitted`, e.g. "temperature 1.2 and logit bias -3.0") comes from,
    and whether the page's numbers carry it."""
    if calibrate:
        return f"{fitted} fitted on this split and stored in the checkpoint: the numbers are the calibrated model's"
    if ensemble:
        where = "fitted on the ensemble's probabilities of this split" if fit else "(none)"
        return (f"{fitted} {where} for the calibration section only: an ensemble stores no calibration and its "
                "members' checkpoints are left as they are; the numbers are the ensemble's as evaluated")  # fmt: skip
    return (f"{fitted} " + ("fitted on this split (not stored: --calibrate True stores it)" if fit else "as stored in the checkpoint")
            + f"; the numbers are the checkpoint's as evaluated (its stored {stored})")  # fmt: skip


def build_report(
    eval_dir: str | os.PathLike,
    checkpoint: str | os.PathLike | None,
    task: str,
    out_dir: str | os.PathLike | None = None,
    images: Mapping[str, str] | None = None,
    bundle: str | os.PathLike | None = None,
    dataset_dir: str | os.PathLike | None = None,
    log_dir: str | os.PathLike | None = None,
    fit: bool = True,
    calibrate: bool = False,
    k: int = 3,
    attributes_csv: str | os.PathLike | None = None,
    target_layer: str | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    title: str | None = None,
    ensemble: bool = False,
) -> Path:
    """Write ``<out_dir>/index.html`` and ``report.json`` for an evaluation folder; returns the page's path.

    Args:
        eval_dir: where the evaluation wrote ``predictions_image.csv`` and ``metrics.json``.
        checkpoint: the evaluated ``model.pt`` (thresholds, temperature, settings); with `ensemble`, the member whose
            Grad-CAM maps show the evidence (None: no maps).
        task: the task (its :data:`~medbundle.report.facts.REPORT_FACTS`).
        out_dir: the report folder; default ``<eval_dir>/report``.
        images: ``{image_id: path}`` of the evaluated images, for the Grad-CAM evidence (none without).
        bundle: the bundle folder (its inference preprocessing makes the image the network saw).
        dataset_dir: the data set, whose metadata CSV holds the subgroup attributes.
        log_dir: the training run's TensorBoard folder, for the training curves.
        fit: fit a temperature on these predictions (the validation split) for the calibration section; False (a
            test split) shows the stored temperature against none.
        calibrate: also store the fitted temperature in `checkpoint` (and rescale its thresholds), so inference,
            the ensemble and the export calibrate; the page's numbers are then the calibrated model's. Not inside a
            sweep before ``sweep.py summary``: its out-of-fold threshold is chosen on the evaluated probabilities.
        k: evidence images per section.
        attributes_csv: a CSV of subgroup attributes (first column or ``image_id``: the image id) instead of the
            data set's own.
        target_layer: the Grad-CAM layer; default the backbone family's (:func:`medbundle.explain.target_layer`).
        n_resamples: bootstrap resamples per interval.
        seed: the bootstrap's seed.
        title: the page title; default from the task and the checkpoint.
        ensemble: `eval_dir` is an ensemble bundle's evaluation: report the ensemble's probabilities (its columns of
            ``predictions_<level>.csv``) at its threshold in ``metrics.json``, with its members table; the ensemble
            stores no temperature, so `calibrate` is refused.

    Raises:
        ValueError: the predictions have no labels, or `calibrate` is asked of an ensemble.
    """
    from medbundle.report.page import render_report

    eval_dir = Path(eval_dir)
    out_dir = Path(out_dir) if out_dir else eval_dir / "report"
    facts = REPORT_FACTS.get(task, REPORT_FACTS["classify"])
    evaluation = json.loads((eval_dir / "metrics.json").read_text()) if (eval_dir / "metrics.json").is_file() else {}
    if ensemble and calibrate:
        raise ValueError(f"{eval_dir} is an ensemble's evaluation, which stores no temperature: leave calibrate False "
                         "(calibrate each member with its own bundle's evaluate.yaml --calibrate True).")  # fmt: skip
    if ensemble:
        model = _ensemble_model(eval_dir, checkpoint, task, evaluation)
    else:
        model = _checkpoint_model(eval_dir, checkpoint, evaluation)
    table = model.table
    labels = table["label"].to_numpy().astype(int)
    binary = "pred" in table
    names = None if binary else [c.removeprefix("prob_") for c in table.columns if c.startswith("prob_")]
    probabilities = table["pred"].to_numpy(float) if binary else table[[f"prob_{n}" for n in names]].to_numpy(float)

    # calibration: the raw logits (before any stored calibration), the calibration fitted on this split (or the
    # stored one), ECE both ways; the headline uses what the checkpoint predicts (the new calibration once stored)
    stored, stored_b = model.temperature, model.bias
    raw = (logits_from_probabilities(probabilities) - stored_b) * stored
    temperature, bias = (_fit_calibration(raw, labels, binary) if fit else (stored, stored_b))
    thresholds = model.thresholds
    if calibrate:
        thresholds = store_temperature(checkpoint, temperature, fitted_on=str(eval_dir), bias=bias) or thresholds
        probabilities = apply_temperature(raw, temperature, bias)
        logger.info("temperature %.3f and bias %.3f fitted on %s and stored in %s", temperature, bias, eval_dir, checkpoint)
    threshold_key = model.threshold_key
    threshold = thresholds.get(threshold_key, 0.5) if binary else 0.5
    uncalibrated = apply_temperature(raw, 1.0)
    calibration = {
        "temperature": float(temperature),
        "bias": float(bias) if binary else None,
        "ece_before": _finite(expected_calibration_error(labels, uncalibrated)),
        "ece_after": _finite(expected_calibration_error(labels, apply_temperature(raw, temperature, bias))),
        "bins_before": reliability_bins(labels, uncalibrated),
        "bins_after": reliability_bins(labels, apply_temperature(raw, temperature, bias)),
    }
    calibrated = probabilities

    # headline metrics with intervals: images (grouped by the scoring unit) and the task's level
    groups = table[facts.group_key].to_numpy() if facts.group_key in table else None
    headline = []
    for name, metric in headline_metrics(task, binary, threshold, None).items():
        headline.append({"metric": name, "level": "image", "n": len(table),
                         **_interval(metric, labels, calibrated, groups, n_resamples, seed)})  # fmt: skip
    if facts.level and facts.level_key in table and binary:
        if model.level_table is not None:
            level_labels, level_scores = model.level_table["label"].to_numpy(int), model.level_table["pred"].to_numpy()
        else:
            _, level_labels, level_scores = aggregate_groups(
                table[facts.level_key].tolist(), labels, calibrated, how=evaluation.get("aggregation", "mean")
            )
        for name, metric in headline_metrics(task, binary, threshold, facts.level).items():
            headline.append({"metric": name, "level": facts.level, "n": len(level_labels),
                             **_interval(metric, np.asarray(level_labels), np.asarray(level_scores), None, n_resamples, seed)})  # fmt: skip

    # subgroups on the ranking metric at image level
    rank_name = "AUROC" if binary else "accuracy"
    rank_metric = headline_metrics(task, binary, threshold, None)[rank_name]
    overall = next(row["estimate"] for row in headline if row["metric"] == rank_name and row["level"] == "image")
    metadata = _metadata(facts, table, dataset_dir, attributes_csv, images)
    subgroups, flags = _subgroups(facts, table, metadata, rank_name, rank_metric, calibrated, labels, overall,
                                  n_resamples, seed)  # fmt: skip

    confusion = None
    if not binary:
        from medbundle.metrics import confusion as confusion_matrix

        confusion = {"classes": names, "matrix": confusion_matrix(labels, calibrated, len(names)).tolist()}
    evidence = []
    if images and bundle is not None and checkpoint is not None:
        shown = table.assign(pred=calibrated) if binary else table
        evidence = _evidence(evidence_cases(shown, k, threshold, names), images, bundle, checkpoint, out_dir, target_layer)
    report = {
        "title": title or f"{task} evaluation report",
        "subtitle": " · ".join(str(x) for x in (task, model.description, f"{len(table)} images", eval_dir) if x),
        "flags": flags,
        "headline": headline,
        "curves": _curves(labels, calibrated, names, threshold if binary else None),
        "confusion": confusion,
        "members": model.members,
        "calibration": calibration,
        "training": _training_curves(log_dir),
        "subgroups": subgroups,
        "evidence": evidence,
        "notes": [
            f"95 % intervals: percentile bootstrap, {n_resamples} resamples of "
            + (f"{facts.group_key}s" if groups is not None else "images") + ", seed " + str(seed),
            _calibration_note(_calibration_name(temperature, bias, binary), _calibration_name(stored, stored_b, binary),
                              fit, calibrate, ensemble),
            *model.notes,
        ],
        "settings": {**model.source, "evaluation": str(eval_dir), "threshold": threshold if binary else None,
                     "threshold_key": threshold_key, **{k: v for k, v in evaluation.items() if not isinstance(v, dict)}},
    }
    return render_report(report, out_dir)


def rebuild_report(run: str | os.PathLike, **changes: Any) -> Path:
    """``medbundle report --run DIR``: the report of an evaluation folder again, from its ``report/inputs.json``."""
    path = Path(run) / "report" / INPUTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: pass --run an evaluation folder whose evaluate.yaml wrote a report.")
    inputs = {**json.loads(path.read_text()), "calibrate": False, **changes}  # storing again would compound nothing
    return build_report(**inputs)
