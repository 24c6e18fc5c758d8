"""A sweep's summary on hand-made out-of-fold tables: per-fold rows, mean ± sd, OOF row, thresholds in model.pt."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from medbundle.checkpoints import stored_config, stored_thresholds
from medbundle.sweep.checkpoint_update import store_oof_threshold
from medbundle.sweep.layout import SweepPlan, run_dirs
from medbundle.sweep.status import RunStatus, write_status
from medbundle.sweep.summary import markdown_summary, model_summary, summarize
from tests.test_sweep_task_metrics import MAX_WINS, rsna_table

FOLDS = {"1_L": 0, "2_L": 0, "3_R": 1, "4_R": 1}
THRESHOLDS = {"roc_threshold": 0.5, "pf1_threshold": 0.4, "auroc": 0.7, "best_auroc": 0.7}


def finished_sweep(folder, task: str, oof: pd.DataFrame, thresholds: dict | None) -> list:
    SweepPlan(f"bundles/{task}", "model", {}, ["m"], [0, 1]).write(folder)
    runs = run_dirs(folder, ["m"], [0, 1])
    for run in runs:
        run.ckpt_dir.mkdir(parents=True)
        state = {"model": {"w": torch.ones(2)}, "config": {"task": task, "backbone": "b"}}
        torch.save(state | ({"thresholds": dict(thresholds)} if thresholds else {}), run.best_checkpoint)
        write_status(run, RunStatus("done", run.model, run.fold, returncode=0))
    oof.to_csv(folder / "m" / "oof.csv", index=False)
    return runs


def test_model_summary_rows_are_folds_mean_sd_and_oof():
    table = rsna_table(MAX_WINS, FOLDS)
    rows, decision = model_summary(table, "rsna")
    assert rows["fold"].tolist() == ["0", "1", "mean", "sd", "oof"]
    by_fold = rows.set_index("fold")
    fold_values = by_fold.loc[["0", "1"], "auroc_max"]
    assert by_fold.loc["mean", "auroc_max"] == pytest.approx(fold_values.mean())
    assert by_fold.loc["sd", "auroc_max"] == pytest.approx(fold_values.std(ddof=1))
    assert by_fold.loc["oof", "pf1_max"] == 1.0 and by_fold.loc["oof", "pf1_mean"] == pytest.approx(0.8)
    assert (by_fold.loc["oof", "threshold"], by_fold.loc["oof", "aggregation"]) == (0.8, "max")
    assert (decision.threshold, decision.aggregation) == (0.8, "max")
    assert by_fold.loc["0", "n"] == 4 and math.isnan(by_fold.loc["0", "threshold"])


def test_markdown_has_a_mean_sd_row_and_an_oof_row_per_model():
    rows, _ = model_summary(rsna_table(MAX_WINS, FOLDS), "rsna")
    text = markdown_summary(pd.concat([rows.assign(model="a"), rows.assign(model="b")]))
    lines = text.splitlines()
    assert lines[0].startswith("| model | fold | n | pf1_mean |") and lines[0].endswith("| threshold | aggregation |")
    assert [line.split(" | ")[1] for line in lines[2:]] == ["0", "1", "mean ± sd", "OOF"] * 2
    assert "| a | OOF | 8 |" in text and text.rstrip().endswith("| 0.8000 | max |")


def test_rsna_summary_stores_the_threshold_and_aggregation_in_every_fold(tmp_path):
    runs = finished_sweep(tmp_path / "cv", "rsna", rsna_table(MAX_WINS, FOLDS), THRESHOLDS)
    markdown, _ = summarize(tmp_path / "cv")
    assert markdown.startswith("# Sweep cv (rsna)") and "OOF threshold 0.8000 after max aggregation" in markdown
    assert (tmp_path / "cv" / "summary.md").read_text() == markdown
    written = pd.read_csv(tmp_path / "cv" / "summary.csv", dtype={"fold": str})
    assert written["fold"].tolist() == ["0", "1", "mean", "sd", "oof"] and written["model"].eq("m").all()
    for run in runs:
        assert stored_thresholds(run.best_checkpoint) == {**THRESHOLDS, "oof_threshold": 0.8}
        assert stored_config(run.best_checkpoint) == {"task": "rsna", "backbone": "b", "oof_aggregation": "max"}
        assert torch.equal(torch.load(run.best_checkpoint, weights_only=True)["model"]["w"], torch.ones(2))
    assert sorted(p.name for p in runs[0].ckpt_dir.iterdir()) == ["model.pt"]  # no temporary file left


def test_chest_xray_summary_has_no_threshold_and_leaves_model_pt_alone(tmp_path):
    oof = pd.DataFrame({"fold": [0, 0, 1, 1], "image_id": list("abcd"), "label": [0, 1, 1, 0],
                        "prob_A": [0.9, 0.2, 0.4, 0.3], "prob_B": [0.1, 0.8, 0.6, 0.7]})  # fmt: skip
    runs = finished_sweep(tmp_path / "cv", "chest_xray", oof, None)
    before = runs[0].best_checkpoint.stat().st_mtime_ns
    markdown, table = summarize(tmp_path / "cv")
    oof_row = table.set_index("fold").loc["oof"]
    assert (oof_row["accuracy"], oof_row["n"]) == (0.75, 4) and "threshold" not in table
    assert "| m | mean ± sd |  | 0.7500 ± 0.3536 |" in markdown and "OOF threshold" not in markdown
    assert runs[0].best_checkpoint.stat().st_mtime_ns == before


def test_summary_before_oof_says_what_to_run(tmp_path):
    runs = finished_sweep(tmp_path / "cv", "isic", pd.DataFrame({"fold": [0]}), THRESHOLDS)
    (runs[0].sweep / "m" / "oof.csv").unlink()
    with pytest.raises(FileNotFoundError, match="sweep.py oof --runs"):
        summarize(tmp_path / "cv")


def test_a_checkpoint_without_thresholds_is_refused(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"model": {}, "config": {}}, path)
    with pytest.raises(KeyError, match="only binary bundles store thresholds"):
        store_oof_threshold(path, 0.5)
