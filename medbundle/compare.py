"""Evaluate every trained checkpoint of a bundle on one split and rank them in one table.

Choosing a backbone means training several presets and comparing them on the same images. Each run is
evaluated by the bundle's own ``evaluate.yaml`` (so the numbers are exactly those ``monai.bundle run
evaluating`` writes), reading its network settings from the checkpoint; the table adds the parameter
count and the evaluation throughput.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from medbundle.checkpoints import stored_config
from medbundle.outputs import evaluation_dir

__all__ = ["compare_checkpoints", "find_checkpoints", "markdown_table"]

logger = logging.getLogger(__name__)

#: Table columns taken from ``metrics.json`` ("image" level), per model kind, best-first sort key first.
_COLUMNS = {
    "multiclass": ("accuracy", "macro_f1", "macro_auroc", "log_loss"),
    "binary": ("auroc", "pf1_prob", "pf1_best", "pf1_at_threshold"),
}


def find_checkpoints(root: str | Path) -> list[Path]:
    """Every best-model checkpoint ``.../models/fold<k>/model.pt`` below `root`, sorted by path."""
    return sorted(p for p in Path(root).rglob("model.pt") if p.parent.name.startswith("fold") and p.parent.parent.name == "models")


def _run_name(checkpoint: Path, runs: Path) -> str:
    """``<run folder relative to runs>/fold<k>``, or the folder's own name for a run at `runs` itself."""
    run_root = checkpoint.parent.parent.parent
    relative = run_root.relative_to(runs) if run_root.is_relative_to(runs) else run_root
    return f"{relative.as_posix() if str(relative) != '.' else run_root.name}/{checkpoint.parent.name}"


def _evaluate(bundle: Path, checkpoint: Path, output_dir: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    from monai.bundle import run

    configs = [str(bundle / "configs" / name) for name in ("train.yaml", "evaluate.yaml")]
    run(
        run_id="evaluating",
        config_file=configs,
        bundle_root=str(checkpoint.parent.parent.parent),
        config_dir=str(bundle / "configs"),
        fold=int(checkpoint.parent.name.removeprefix("fold")),
        ckpt_path=str(checkpoint),
        output_dir=str(output_dir),
        **overrides,
    )
    split, tta = overrides.get("eval_split", "val"), bool(overrides.get("tta", False))
    return json.loads((evaluation_dir(output_dir, split, tta) / "metrics.json").read_text())


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown table of `frame` (floats to 4 decimals), without extra dependencies."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "n/a" if math.isnan(value) else f"{value:.4f}"
        return str(value)

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def compare_checkpoints(
    bundle: str | Path,
    runs: str | Path | None = None,
    checkpoints: Sequence[str | Path] | None = None,
    out: str | Path | None = None,
    sort: str | None = None,
    **overrides: Any,
) -> pd.DataFrame:
    """Evaluate each checkpoint with the bundle's evaluate.yaml and write one ranked table.

    Args:
        bundle: the bundle folder (``bundles/chest_xray``) whose configs evaluate the checkpoints.
        runs: folder searched for ``models/fold<k>/model.pt`` checkpoints; default `bundle` (train each model
            with its own ``--bundle_root bundles/chest_xray/runs/<name>`` to keep them apart).
        checkpoints: explicit checkpoint paths instead of the search.
        out: folder for ``compare.md``, ``compare.csv`` and each run's evaluation files; default
            ``<bundle>/outputs/compare``.
        sort: metric to rank by, best first; default accuracy (multi-class) or auroc (binary).
        overrides: bundle config overrides for every evaluation, e.g. ``dataset_dir``, ``eval_split="test"``,
            ``num_workers``.

    Returns:
        The table, best first: run, model, backbone, image size, the metrics, params, images/s.

    Raises:
        FileNotFoundError: no checkpoint was found; the message says where it looked and how to train one.
    """
    bundle = Path(bundle)
    runs = Path(runs) if runs is not None else bundle
    found = [Path(c) for c in checkpoints] if checkpoints else find_checkpoints(runs)
    if not found:
        raise FileNotFoundError(
            f"no checkpoint models/fold<k>/model.pt below {runs}; train first, e.g. python -m monai.bundle run "
            f"training --config_file {bundle / 'configs' / 'train.yaml'} --bundle_root {bundle / 'runs' / 'NAME'}"
        )
    out = Path(out) if out is not None else bundle / "outputs" / "compare"
    overrides.setdefault("cache_dir", str(bundle / "cache"))
    overrides.setdefault("report", False)  # a ranking needs each checkpoint's numbers, not a page each (--report True)
    rows = []
    for checkpoint in found:
        name = _run_name(checkpoint, runs)
        logger.info("evaluating %s (%s)", name, checkpoint)
        metrics = _evaluate(bundle, checkpoint, out / name, overrides)
        config = stored_config(checkpoint, defaults={})
        image = metrics["image"]
        kind = "multiclass" if "macro_f1" in image else "binary"
        row = {
            "run": name,
            "model": config.get("model", config.get("backbone", "?")),
            "backbone": config.get("backbone", "?"),
            "image_size": "x".join(map(str, config.get("image_size", []))),
        }
        row |= {column: math.nan if image[column] is None else float(image[column]) for column in _COLUMNS[kind]}
        row |= {
            "params": int(metrics["model"].get("params", 0)),
            "images/s": float(metrics["model"].get("images_per_second", float("nan"))),
        }
        rows.append(row)
    table = pd.DataFrame(rows)
    key = sort or ("accuracy" if "accuracy" in table else "auroc")
    if key not in table:
        raise ValueError(f"cannot sort by {key!r}; choose one of {list(table.columns)}")
    table = table.sort_values(key, ascending=key == "log_loss", kind="stable").reset_index(drop=True)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "compare.csv", index=False)
    (out / "compare.md").write_text(markdown_table(table) + "\n")
    logger.info("comparison of %d checkpoints written to %s and %s", len(table), out / "compare.md", out / "compare.csv")
    return table
