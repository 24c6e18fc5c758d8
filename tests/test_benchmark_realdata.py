"""Smoke test of `python scripts/benchmark.py realdata` at toy size, on synthetic stand-ins of the shared real sets
(the real ones are used when present by the full benchmark, not here) and random weights in timm's names."""

from __future__ import annotations

import cv2
import numpy as np
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
