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
    assert ("| bundle | system | metric | best | last | per epoch | best AUROC (chest_xray: macro) | lowest log loss "
            "| s per epoch | verdict |") in out
    rows = {(row["bundle"], row["system"]): row for row in result["rows"]}
    assert set(rows) == {("chest_xray", "bundle"), ("chest_xray", "plain"), ("isic", "bundle"), ("isic", "plain"),
                         ("rsna", "breast crop")}  # fmt: skip
    for bundle, metric in (("chest_xray", "val_accuracy"), ("isic", "val_pauc")):
        for system in ("bundle", "plain"):
            row = rows[bundle, system]
            epochs = result["settings"]["settings"][bundle]["epochs"]
            assert row["metric"] == metric and len(row["per_epoch"].split()) == epochs and row["seconds"] > 0
        assert rows[bundle, "bundle"]["verdict"].startswith("bundle ")
    for system in ("bundle", "plain"):  # the threshold-free companions, as the bundle's metrics compute them
        assert 0 <= rows["chest_xray", system]["auroc"] <= 1 and rows["chest_xray", system]["log_loss"] > 0
        assert 0 <= rows["isic", system]["auroc"] <= 1 and rows["isic", system]["log_loss"] is None
    assert "; macro AUROC " in rows["chest_xray", "bundle"]["verdict"]
    assert "; AUROC " in rows["isic", "bundle"]["verdict"] and "log loss" not in rows["isic", "bundle"]["verdict"]
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
    fake = lambda system, seed: dict(zip(("series", "auroc", "log_loss"), runs[system, seed]), times=[2.0, 4.0, 6.0])
    monkeypatch.setattr(module, "SETTINGS", {"chest_xray": {"epochs": 3, "stage1_epochs": 1, "image_size": [8, 8],
                                                            "batch_size": 2}})  # fmt: skip
    monkeypatch.setattr(module, "_bundle_run", lambda bundle, data, weights, settings, workers, work, seed, scale,
                        split: fake("bundle", seed))  # fmt: skip
    monkeypatch.setattr(module, "_plain_run", lambda bundle, data, weights, settings, workers, seed, scale, split:
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
    assert mean["auroc"] == pytest.approx(0.915) and mean["log_loss"] == pytest.approx(0.5)
    assert mean["seconds"] == pytest.approx(5.0)  # the stage-2 epochs
    assert rows["plain, mean of 2 seeds"]["best"] == pytest.approx(0.75)
    assert mean["verdict"] == ("bundle >= plain (0.800 vs 0.750); macro AUROC 0.915 vs 0.890, "
                               "log loss 0.500 vs 0.750")  # fmt: skip
    assert rows["plain, mean of 2 seeds"]["verdict"] == "1.00x the plain loop's seconds per epoch"
    assert [note.split(":")[0] for note in report["notes"]] == ["chest_xray stage boundary, seed 0",
                                                            "chest_xray stage boundary, seed 1",
                                                            "chest_xray stage boundary, mean of 2 seeds"]  # fmt: skip
    assert report["notes"][-1].endswith("stage-1 best 0.550, lowest of the first two stage-2 epochs 0.750 (+20.0 points; "
                                        "stage 1 itself fell up to 0.0 points below its running best), last 0.750; "
                                        "validation loss: stage-1 lowest 0.850, highest of the first two stage-2 epochs "
                                        "0.550, last 0.550")  # fmt: skip
    assert report["settings"]["seed"] == [0, 1] and report["settings"]["folds"] is None


def _real_cxr_stand_in(folder) -> None:
    """The demo's class folders with a ``labels.csv`` as real_cxr has it: ``file`` and the patient (``group_id``),
    two images per patient."""
    write_chest_xray_demo(folder, n_train=8, n_val=2, n_test=0, size_range=(64, 80), seed=1)
    files = sorted(p.relative_to(folder).as_posix() for p in folder.glob("*/*/*") if p.is_file())
    lines = ["split,class,file,group_id"] + [f"{f.split('/')[0]},{f.split('/')[1]},{f},{f.split('/')[1]} {i // 2}"
                                             for i, f in enumerate(files)]  # fmt: skip
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")


def test_realdata_over_folds_runs_each_fold_on_the_bundles_split_and_adds_the_means(tmp_path, monkeypatch,
                                                                                  run_benchmark_in_process):
    """`realdata --folds "[0,2]"`: a row pair per fold, each system given the fold's split keys (chest_xray: real_cxr's
    patients as a patients_csv), then the means and the boundary of the mean series."""
    import csv

    from medbundle.benchmarks import realdata as module

    _real_cxr_stand_in(tmp_path / "real_cxr")
    seen = []

    def fake(system, bundle, seed, split):
        seen.append((system, bundle, seed, dict(split)))
        if split.get("patients_csv"):
            with open(split["patients_csv"], newline="") as handle:
                seen[-1][3]["patients"] = list(csv.DictReader(handle))
        series = [0.5, 0.6, 0.7] if split["fold"] == 0 else [0.7, 0.8, 0.9]
        return {"series": series, "auroc": [0.8, 0.9, 0.9], "times": [1.0, 1.0, 1.0],
                **({"log_loss": [0.9, 0.8, 0.7]} if bundle == "chest_xray" else {})}  # fmt: skip

    monkeypatch.setattr(module, "SETTINGS", {"chest_xray": {"epochs": 3, "stage1_epochs": 1, "image_size": [8, 8],
                                                            "batch_size": 2},
                                             "isic": {"epochs": 3, "image_size": [8, 8], "batch_size": 2}})  # fmt: skip
    monkeypatch.setattr(module, "_bundle_run", lambda bundle, data, weights, settings, workers, work, seed, scale,
                        split: fake("bundle", bundle, seed, split))  # fmt: skip
    monkeypatch.setattr(module, "_plain_run", lambda bundle, data, weights, settings, workers, seed, scale, split:
                        fake("plain", bundle, seed, split))  # fmt: skip
    out, report = run_benchmark_in_process("realdata", "--shared", str(tmp_path), "--bundles", "[chest_xray,isic]",
                                           "--weights", str(tmp_path / "w.pth"), "--folds", "[0,2]")  # fmt: skip
    systems = [(row["bundle"], row["system"]) for row in report["rows"]]
    assert systems == [(b, f"{s}{label}") for b in ("chest_xray", "isic")
                       for label in (", fold 0", ", fold 2", ", mean of 2 folds") for s in ("bundle", "plain")]  # fmt: skip
    assert "| isic | bundle, mean of 2 folds | val_pauc | 0.8 | 0.8 | 0.600 0.700 0.800 | 0.9 |" in out
    chest = [split for system, bundle, seed, split in seen if bundle == "chest_xray"]
    assert [split["fold"] for split in chest] == [0, 0, 2, 2] and all(seed == 0 for *_, seed, _ in seen)
    with open(tmp_path / "real_cxr" / "labels.csv", newline="") as handle:
        labels = {row["file"]: row["group_id"] for row in csv.DictReader(handle)}
    assert {row["image"]: row["patient_id"] for row in chest[0]["patients"]} == labels and len(labels) > 20
    assert [split for system, bundle, seed, split in seen if bundle == "isic"] == [{"fold": 0}, {"fold": 0},
                                                                                 {"fold": 2}, {"fold": 2}]  # fmt: skip
    assert report["notes"][-1] == (
        "chest_xray stage boundary, mean of 2 folds: stage-1 best 0.600, lowest of the first two stage-2 epochs 0.700 "
        "(+10.0 points; stage 1 itself fell up to 0.0 points below its running best), last 0.800; validation loss: "
        "stage-1 lowest 0.900, highest of the first two stage-2 epochs 0.800, last 0.700"
    )
    assert report["settings"]["folds"] == [0, 2]


def test_realdata_without_patients_for_folds_says_what_it_needs(tmp_path):
    from medbundle.benchmarks.realdata import _split

    write_chest_xray_demo(tmp_path / "real_cxr", n_train=2, n_val=1, n_test=0, size_range=(64, 80), seed=1)
    with pytest.raises(FileNotFoundError, match=r"labels.csv does not exist: .*leave --folds out"):
        _split("chest_xray", tmp_path / "real_cxr", 1, tmp_path)
    (tmp_path / "real_cxr" / "labels.csv").write_text("split,class,file\n")
    with pytest.raises(ValueError, match=r"labels.csv has no column \['group_id'\].*leave --folds out"):
        _split("chest_xray", tmp_path / "real_cxr", 1, tmp_path)


@pytest.mark.parametrize("bundle", ["chest_xray", "isic"])
def test_the_plain_loop_trains_and_validates_on_the_bundles_split(tmp_path, bundle):
    """For a fold and a seed, the plain loop's training and validation images are the bundle's own split (isic draws
    its folds with the run's seed, chest_xray's patients come from labels.csv)."""
    from medbundle.benchmarks import realdata as module

    data = tmp_path / ("real_cxr" if bundle == "chest_xray" else "real_isic")
    if bundle == "chest_xray":
        _real_cxr_stand_in(data)
    else:
        write_isic_demo(data, n_patients=30, positive_rate=0.3, n_test=0, size_range=(40, 60), seed=1)
    settings, seed = module._scaled(module.SETTINGS[bundle], 1.0), 3
    split = module._split(bundle, data, 2, tmp_path)
    workflow = module._workflow(bundle, data, tmp_path / "w.pth", settings, 0, tmp_path / "run", seed, 1.0, split)
    workflow.initialize()
    train, val = workflow.parser.get_parsed_content("split")
    if bundle == "chest_xray":
        plain_train, plain_val, _ = module._class_folders(data, 1.0, seed, split)
    else:
        plain_train, plain_val = module._isic_split(data, 1.0, seed, split)
    assert sorted(str(i["image"]) for i in val) == sorted(str(image) for image, _ in plain_val)
    assert sorted(str(i["image"]) for i in train) == sorted(str(image) for image, _ in plain_train)
    assert len(plain_val) < len(plain_train)
    other_seed = module._isic_split(data, 1.0, 4, split)[1] if bundle == "isic" else None
    assert other_seed is None or sorted(other_seed) != sorted(plain_val)


def test_the_boundary_note_sets_the_fall_at_the_unfreeze_beside_stage_1s_own_and_the_loss():
    """Stage 1 (backbone frozen) falls 8 points below its running best by itself: the note says so next to the 6
    points the first two stage-2 epochs lose, and gives the validation loss across the boundary."""
    from medbundle.benchmarks.realdata import _boundary_note

    summary = {"series": [0.70, 0.80, 0.75, 0.72, 0.78, 0.74, 0.80, 0.82],
               "loss_series": [0.90, 0.60, 0.62, 0.64, 0.61, 0.66, 0.58, 0.55]}  # fmt: skip
    assert _boundary_note({"stage1_epochs": 5}, summary, ", fold 3") == (
        "chest_xray stage boundary, fold 3: stage-1 best 0.800, lowest of the first two stage-2 epochs 0.740 "
        "(-6.0 points; stage 1 itself fell up to 8.0 points below its running best), last 0.820; validation loss: "
        "stage-1 lowest 0.600, highest of the first two stage-2 epochs 0.660, last 0.550"
    )
    assert _boundary_note({"stage1_epochs": 5}, {"series": summary["series"]}).endswith("last 0.820")
