"""The evaluation report end to end: a toy bundle trained (in this process) and evaluated through ``python -m
monai.bundle run``, its ``report/`` read back (intervals, calibration, subgroups, Grad-CAM), opened in headless
Chromium, rebuilt by ``medbundle report``, and ``--calibrate True`` storing a temperature that the next evaluation
(in this process) applies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import run_in_process
from tiny_tasks import TASKS

from medbundle.metrics.calibration import apply_temperature, logits_from_probabilities

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore:parsing config_file:UserWarning"}


def run(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def bundle(task: str, run_id: str, names: tuple[str, ...], overrides: dict) -> str:
    configs = repr([str(REPO / "bundles" / task / "configs" / name) for name in names])
    flags = [arg for key, value in overrides.items() for arg in (f"--{key}", str(value))]
    return run("-m", "monai.bundle", "run", run_id, "--config_file", configs, *flags)


def bundle_here(task: str, run_id: str, names: tuple[str, ...], overrides: dict) -> str:
    """`bundle` in this process (conftest's run_in_process), for runs that are not the subject; what it printed."""
    configs = [REPO / "bundles" / task / "configs" / name for name in names]
    return run_in_process(configs, run_id, **{k: str(v) if isinstance(v, Path) else v for k, v in overrides.items()})


def trained_and_evaluated(task: str, root: Path, epochs: int = 2) -> tuple[Path, dict]:
    spec = TASKS[task]
    spec.write_demo(root / "data", **spec.demo_args)
    overrides = {**spec.overrides, "epochs": epochs, "dataset_dir": root / "data", "bundle_root": root / "b"}
    bundle_here(task, "training", ("train.yaml",), overrides)
    evaluation = {k: v for k, v in overrides.items() if k != "epochs"}
    bundle(task, "evaluating", ("train.yaml", "evaluate.yaml"), evaluation)
    return root / "b" / "outputs" / "fold0", evaluation


@pytest.fixture(scope="module")
def rsna(tmp_path_factory):
    return trained_and_evaluated("rsna", tmp_path_factory.mktemp("report_rsna"))


def test_the_rsna_report_holds_intervals_calibration_subgroups_and_evidence(rsna):
    folder, _ = rsna
    report = json.loads((folder / "report" / "report.json").read_text())
    levels = {(row["metric"], row["level"]) for row in report["headline"]}
    assert {("pF1", "breast"), ("AUROC", "breast"), ("AUROC", "image"), ("sensitivity", "breast")} <= levels
    for row in report["headline"]:
        if row["low"] is not None:
            assert row["low"] - 1e-9 <= row["estimate"] <= row["high"] + 1e-9, row
    calibration = report["calibration"]
    assert calibration["temperature"] > 0 and calibration["ece_after"] <= calibration["ece_before"] + 1e-9
    assert {row["attribute"] for row in report["subgroups"]} == {"age band", "site", "machine", "view", "density"}
    overall = next(r["estimate"] for r in report["headline"] if (r["metric"], r["level"]) == ("AUROC", "image"))
    flagged = [r for r in report["subgroups"] if r["flag"]]
    assert all(r["high"] < overall for r in flagged) and len(report["flags"]) == len(flagged)
    assert {curve["kind"] for curve in report["curves"]} == {"roc", "pr"} and report["curves"][0]["marker"]
    assert any(curve["tag"] == "train_loss" for curve in report["training"])
    sections = {section["section"]: section["items"] for section in report["evidence"]}
    assert "most confident true positives" in sections and sum(map(len, sections.values())) > 0
    assert len(list((folder / "report" / "evidence").glob("*.png"))) == sum(map(len, sections.values()))


def test_the_rsna_report_opens_in_a_browser_without_errors(rsna, tmp_path):
    from medbundle.report.browser import BrowserCheckError, check_in_browser

    folder, _ = rsna
    try:
        checked = check_in_browser(folder / "report" / "index.html", tmp_path / "page.png")
    except BrowserCheckError as error:
        pytest.skip(str(error).splitlines()[-1])
    assert checked["console_errors"] == [] and checked["broken_images"] == 0 and not checked["blank"], checked
    assert checked["network_requests"] == [] and checked["images"] > 0


def test_medbundle_report_rebuilds_the_page_from_the_files(rsna):
    folder, _ = rsna
    page = folder / "report" / "index.html"
    page.unlink()
    out = run("-m", "medbundle", "report", "--run", str(folder), "--k", "1", "--n_resamples", "200")
    assert str(page) in out and page.is_file()
    sections = json.loads((folder / "report" / "report.json").read_text())["evidence"]
    assert all(len(section["items"]) <= 1 for section in sections)


def test_calibrate_stores_the_calibration_that_the_next_evaluation_applies(rsna, tmp_path):
    folder, evaluation = rsna
    checkpoint = folder.parent.parent / "models" / "fold0" / "model.pt"
    before = pd.read_csv(folder / "predictions_image.csv", dtype={"image_id": str})
    thresholds = torch.load(checkpoint, weights_only=True)["thresholds"]
    bundle("rsna", "evaluating", ("train.yaml", "evaluate.yaml"), {**evaluation, "calibrate": True, "report_k": 0})
    state = torch.load(checkpoint, weights_only=True)
    temperature, bias = float(state["model"]["temperature"]), float(state["model"]["logit_bias"])
    report = json.loads((folder / "report" / "report.json").read_text())
    assert temperature == pytest.approx(report["calibration"]["temperature"]) and temperature != 1.0
    assert bias == pytest.approx(report["calibration"]["bias"]) and bias != 0.0  # binary: Platt scaling
    calibrated = apply_temperature(logits_from_probabilities(before["pred"].to_numpy()), temperature, bias)
    for key, value in thresholds.items():  # each threshold moved with the calibration: the same decisions
        if key.endswith("_threshold"):
            assert ((before["pred"] >= value) == (calibrated >= state["thresholds"][key])).all(), key
    bundle_here("rsna", "evaluating", ("train.yaml", "evaluate.yaml"), {**evaluation, "report": False})
    after = pd.read_csv(folder / "predictions_image.csv", dtype={"image_id": str})
    np.testing.assert_allclose(after["pred"], calibrated, atol=1e-5)


def test_a_subgroup_of_too_few_patients_gets_no_interval_and_no_flag():
    """Ten lesions of one patient: resampling that patient gives an interval of zero width; it must not be flagged."""
    from medbundle.metrics import auroc
    from medbundle.report.build import _subgroups
    from medbundle.report.facts import REPORT_FACTS

    rng = np.random.default_rng(0)
    labels = np.tile([0, 1], 30)
    scores = np.clip(labels * 0.6 + rng.random(60) * 0.5, 0, 1)
    scores[:10] = rng.random(10)  # the one patient's lesions: ranked badly
    table = pd.DataFrame({"image_id": [str(i) for i in range(60)],
                          "patient_id": ["solo"] * 10 + [f"p{i // 2}" for i in range(50)]})  # fmt: skip
    metadata = pd.DataFrame({"sex": ["unknown-sex"] * 10 + ["female"] * 26 + ["male"] * 24})
    rows, flags = _subgroups(REPORT_FACTS["isic"], table, metadata, "AUROC", auroc, scores, labels, 0.95, 50, 0)
    solo = next(row for row in rows if row["group"] == "unknown-sex")
    assert solo["estimate"] is not None and solo["low"] is None and not solo["flag"] and "1 patient: no interval" == solo["note"]
    assert not any("unknown-sex" in flag for flag in flags)
    assert all(row["low"] is not None for row in rows if row["group"] != "unknown-sex")


def test_the_page_decides_at_the_threshold_the_evaluation_used():
    """isic decides at roc_threshold (its evaluate.yaml threshold_key), rsna at pf1_threshold: metrics.json says which."""
    from medbundle.report.build import _decision_key

    stored = {"roc_threshold": 0.41, "pf1_threshold": 0.50, "auroc": 0.41}
    assert _decision_key(stored, {"threshold": 0.41}) == "roc_threshold"
    assert _decision_key(stored, {"threshold": 0.50}) == "pf1_threshold"
    assert _decision_key(stored, {}) == "pf1_threshold"  # an evaluation that did not say: the first stored key
