"""Out-of-fold tables from each finished fold's validation predictions; evaluation of the folds that lack them."""

from __future__ import annotations

import logging
import sys

import pandas as pd
import pytest

from medbundle.sweep import oof as oof_module
from medbundle.sweep.layout import SweepPlan, run_dirs
from medbundle.sweep.oof import collect_oof, finished_runs, oof_tables
from medbundle.sweep.status import RunStatus, write_status


def sweep_with_runs(folder, predictions: dict[int, list[str]], finished=(0, 1)):
    SweepPlan("bundles/isic", "model", {"dataset_dir": "d"}, ["m"], sorted(predictions)).write(folder)
    runs = run_dirs(folder, ["m"], sorted(predictions))
    for run in runs:
        run.ckpt_dir.mkdir(parents=True)
        run.best_checkpoint.write_bytes(b"")
        write_status(run, RunStatus("done" if run.fold in finished else "running", run.model, run.fold))
        if predictions[run.fold]:
            run.output_dir.mkdir(parents=True)
            pd.DataFrame({"image_id": predictions[run.fold], "patient_id": "007", "pred": 0.5, "label": 0.0}).to_csv(
                run.predictions, index=False
            )
    return runs


def test_oof_table_stacks_the_folds_with_a_fold_column(tmp_path):
    sweep_with_runs(tmp_path, {0: ["a", "b"], 1: ["c"]})
    paths = collect_oof(tmp_path)
    table = pd.read_csv(paths["m"], dtype={"image_id": str, "patient_id": str})
    assert table.columns.tolist() == ["fold", "image_id", "patient_id", "pred", "label"]
    assert table[["fold", "image_id"]].values.tolist() == [[0, "a"], [0, "b"], [1, "c"]]
    assert table["patient_id"].eq("007").all()  # ids stay text


def test_unfinished_runs_are_left_out(tmp_path, caplog):
    runs = sweep_with_runs(tmp_path, {0: ["a"], 1: ["b"]}, finished=(0,))
    caplog.set_level(logging.WARNING, "medbundle.sweep")
    assert finished_runs(tmp_path) == runs[:1]
    assert "m/fold_1: not finished (running)" in caplog.text


def test_an_item_in_two_folds_is_refused(tmp_path):
    runs = sweep_with_runs(tmp_path, {0: ["a", "b"], 1: ["b"]})
    with pytest.raises(ValueError, match=r"item b is in the validation predictions of folds \[0, 1\]"):
        oof_tables(runs)


def test_missing_predictions_are_evaluated_and_failures_named(tmp_path, monkeypatch):
    runs = sweep_with_runs(tmp_path, {0: ["a"], 1: [], 2: []}, finished=(0, 1, 2))
    calls = []

    def fake_evaluation(bundle, run, overrides):
        calls.append((run.fold, overrides))
        if run.fold == 2:
            return [sys.executable, "-c", "import sys; print('KeyError: image'); sys.exit(1)"]
        code = f"open({str(run.predictions)!r}, 'w').write('image_id,pred,label\\nz,0.1,1.0\\n')"
        return [sys.executable, "-c", f"import os; os.makedirs({str(run.output_dir)!r}); {code}"]

    monkeypatch.setattr(oof_module, "evaluation_command", fake_evaluation)
    with pytest.raises(RuntimeError, match=r"evaluation failed for m/fold_2 \(see .*evaluate.log\)"):
        collect_oof(tmp_path, num_workers=0)
    assert sorted(calls) == [(1, {"dataset_dir": "d", "num_workers": 0}), (2, {"dataset_dir": "d", "num_workers": 0})]
    table = pd.read_csv(tmp_path / "m" / "oof.csv")
    assert table["fold"].tolist() == [0, 1] and "KeyError: image" in runs[2].evaluation_log.read_text()


def test_tta_evaluations_are_run_and_read_apart_from_the_plain_ones(tmp_path, monkeypatch):
    runs = sweep_with_runs(tmp_path, {0: ["a"], 1: ["b"]})  # plain predictions exist: they must not stand in for TTA
    evaluated = []

    def fake_evaluation(bundle, run, overrides):
        evaluated.append(run.fold)
        path = run.evaluation_predictions(tta=overrides["tta"])
        code = f"import os; os.makedirs({str(path.parent)!r}); open({str(path)!r}, 'w').write('image_id,pred\\nt{run.fold},0.9\\n')"
        return [sys.executable, "-c", code]

    monkeypatch.setattr(oof_module, "evaluation_command", fake_evaluation)
    table = pd.read_csv(collect_oof(tmp_path, tta=True)["m"])
    assert sorted(evaluated) == [0, 1] and table["image_id"].tolist() == ["t0", "t1"]
    assert all(run.predictions.is_file() for run in runs)
