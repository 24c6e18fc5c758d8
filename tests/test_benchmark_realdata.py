"""Smoke test of `python scripts/benchmark.py realdata` at toy size, on synthetic stand-ins of the shared real sets
(the real ones are used when present by the full benchmark, not here) and random weights in timm's names."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import timm
import torch

from medbundle.demo import write_chest_xray_demo, write_isic_demo


def test_realdata_trains_each_bundle_next_to_a_plain_loop_and_crops_the_films(tmp_path, run_benchmark_in_process):
    shared = tmp_path / "shared"
    write_chest_xray_demo(shared / "real_cxr", n_train=6, n_val=2, n_test=0, size_range=(64, 80), seed=1)
    write_isic_demo(shared / "real_isic", n_patients=30, positive_rate=0.3, n_test=0, size_range=(40, 60), seed=1)
    (shared / "mammo_films").mkdir()
    for i in range(2):
        film = np.zeros((300, 300), np.uint8)
        film[:, 40:260] = 8
        cv2.ellipse(film, (40, 150), (150, 130), 0, -90, 90, 140, -1)
        cv2.imwrite(str(shared / "mammo_films" / f"film{i}.png"), film)
    weights = tmp_path / "lite0.pth"
    torch.save(timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict(), weights)
    out, result = run_benchmark_in_process("realdata", "--shared", str(shared), "--weights", str(weights),
                                           "--scale", "0.1", "--num_workers", "0")  # fmt: skip
    assert ("| bundle | system | metric | best | last | per epoch | best macro AUROC | lowest log loss | s per epoch "
            "| verdict |") in out
    rows = {(row["bundle"], row["system"]): row for row in result["rows"]}
    assert set(rows) == {("chest_xray", "bundle"), ("chest_xray", "plain"), ("isic", "bundle"), ("isic", "plain"),
                         ("rsna", "breast crop")}  # fmt: skip
    for bundle, metric in (("chest_xray", "val_accuracy"), ("isic", "val_pauc")):
        for system in ("bundle", "plain"):
            row = rows[bundle, system]
            epochs = result["settings"]["settings"][bundle]["epochs"]
            assert row["metric"] == metric and len(row["per_epoch"].split()) == epochs and row["seconds"] > 0
        assert rows[bundle, "bundle"]["verdict"].startswith("bundle ")
    for system in ("bundle", "plain"):  # chest_xray's threshold-free companions, as the bundle's metrics compute them
        row = rows["chest_xray", system]
        assert 0 <= row["macro_auroc"] <= 1 and row["log_loss"] > 0
    assert rows["isic", "bundle"]["macro_auroc"] is None
    assert "; macro AUROC " in rows["chest_xray", "bundle"]["verdict"]
    assert rows["rsna", "breast crop"]["best"] == 2 and rows["rsna", "breast crop"]["verdict"] == "ok"
    assert any(note.startswith("chest_xray stage boundary: stage-1 best") for note in result["notes"])


def test_realdata_over_several_seeds_adds_the_means_and_a_verdict_on_them(tmp_path, monkeypatch,
                                                                       run_benchmark_in_process):
    """`realdata --seed "[0,1]"`: a row pair per seed, then the mean of each figure over the seeds (the training
    itself is replaced by fixed runs: what is checked is the command line and the bookkeeping)."""
    from medbundle.benchmarks import realdata as module

    runs = {  # (system, seed): accuracy series, macro AUROC, log loss per epoch
        ("bundle", 0): ([0.5, 0.7, 0.8], [0.80, 0.90, 0.92], [0.9, 0.6, 0.5]),
        ("bundle", 1): ([0.6, 0.8, 0.7], [0.85, 0.91, 0.90], [0.8, 0.5, 0.6]),
        ("plain", 0): ([0.4, 0.9, 0.6], [0.70, 0.93, 0.88], [1.2, 0.7, 0.9]),
        ("plain", 1): ([0.3, 0.5, 0.6], [0.60, 0.80, 0.85], [1.5, 1.0, 0.8]),
    }
    fake = lambda system, seed: dict(zip(("series", "macro_auroc", "log_loss"), runs[system, seed]), times=[2.0, 4.0, 6.0])
    monkeypatch.setattr(module, "SETTINGS", {"chest_xray": {"epochs": 3, "stage1_epochs": 1, "image_size": [8, 8],
                                                            "batch_size": 2}})  # fmt: skip
    monkeypatch.setattr(module, "_bundle_run", lambda bundle, data, weights, settings, workers, work, seed, scale:
                        fake("bundle", seed))  # fmt: skip
    monkeypatch.setattr(module, "_plain_run", lambda bundle, data, weights, settings, workers, seed, scale:
                        fake("plain", seed))  # fmt: skip
    out, report = run_benchmark_in_process("realdata", "--shared", str(tmp_path), "--bundles", "[chest_xray]",
                                           "--weights", str(tmp_path / "w.pth"), "--seed", "[0,1]")  # fmt: skip
    assert "| chest_xray | bundle, mean of 2 seeds | val_accuracy | 0.8 | 0.75 | 0.550 0.750 0.750 |" in out
    rows = {row["system"]: row for row in report["rows"]}
    assert list(rows) == ["bundle, seed 0", "plain, seed 0", "bundle, seed 1", "plain, seed 1",
                          "bundle, mean of 2 seeds", "plain, mean of 2 seeds"]  # fmt: skip
    assert rows["bundle, seed 0"]["verdict"].startswith("bundle < plain (0.800 vs 0.900)")
    assert rows["bundle, seed 1"]["verdict"].startswith("bundle >= plain (0.800 vs 0.600)")
    mean = rows["bundle, mean of 2 seeds"]
    assert mean["best"] == pytest.approx(0.8) and mean["last"] == pytest.approx(0.75)
    assert mean["per_epoch"] == "0.550 0.750 0.750"
    assert mean["macro_auroc"] == pytest.approx(0.915) and mean["log_loss"] == pytest.approx(0.5)
    assert mean["seconds"] == pytest.approx(5.0)  # the stage-2 epochs
    assert rows["plain, mean of 2 seeds"]["best"] == pytest.approx(0.75)
    assert mean["verdict"] == ("bundle >= plain (0.800 vs 0.750); macro AUROC 0.915 vs 0.890, "
                               "log loss 0.500 vs 0.750")  # fmt: skip
    assert rows["plain, mean of 2 seeds"]["verdict"] == "1.00x the plain loop's seconds per epoch"
    assert [note.split(":")[0] for note in report["notes"]] == ["chest_xray stage boundary, seed 0",
                                                            "chest_xray stage boundary, seed 1"]  # fmt: skip
    assert report["settings"]["seed"] == [0, 1]
