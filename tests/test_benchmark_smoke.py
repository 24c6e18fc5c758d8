"""Smoke tests of the README's benchmark commands at tiny sizes, so they cannot rot unseen: each prints its table
and writes the same rows as JSON. The tracking benchmark runs ``python scripts/benchmark.py`` itself (its trackers
stay out of the test process); the others go through the script's subcommand table and fire in this process."""

from __future__ import annotations

from pathlib import Path

import pytest

from medbundle.demo import write_rsna_demo


def _rsna_dicoms(tmp_path: Path, n: int = 3) -> Path:
    write_rsna_demo(tmp_path / "data", n_patients=2, image_shape=(256, 208), n_test_patients=0, seed=1)
    folder = tmp_path / "dicoms"
    folder.mkdir()
    for path in list((tmp_path / "data" / "train_images").rglob("*.dcm"))[:n]:
        (folder / path.name).write_bytes(path.read_bytes())
    return folder


def test_dicom_benchmark_tables_decoding_the_bundle_chain_and_the_plain_reference(tmp_path, run_benchmark_in_process):
    out, result = run_benchmark_in_process("dicom", "--folder", str(_rsna_dicoms(tmp_path)), "--image_size", "[128,64]",
                                "--workers", "2")
    assert "| pipeline | images/s per worker | / plain | median s per image | images/s, 2 workers |" in out
    assert [row["pipeline"].split(":")[0] for row in result["rows"]] == [
        "decode only (read_dicom)", "bundle cached_transforms", "plain"]
    assert all(row["per_worker"] > 0 for row in result["rows"]) and result["rows"][2]["over_plain"] == 1
    assert result["settings"]["images"] == 3 and result["machine"]["cores"] >= 1


def test_dicom_reduce_benchmark_tables_reduced_full_and_plain_decoding(tmp_path, run_benchmark_in_process):
    out, result = run_benchmark_in_process("dicom_reduce", "--folder", str(tmp_path), "--image_size", "[64,32]",
                                "--demo_shape", "[256,208]", "--demo_patients", "2", "--repeats", "1")
    assert "| source | transfer syntax | files | MP | reduce level | on | off | plain | on/plain |" in out
    j2k = [row for row in result["rows"] if row["syntax"] == "JPEG 2000 Image Compression (Lossless Only)"]
    assert j2k and j2k[0]["source"] == "demo 256x208" and j2k[0]["levels"] == "1" and j2k[0]["psnr"] > 10


def test_decoders_benchmark_tables_every_installed_plugin_per_transfer_syntax(tmp_path, run_benchmark_in_process):
    out, result = run_benchmark_in_process("decoders", "--folder", str(tmp_path), "--demo_shape", "[256,208]",
                                "--demo_patients", "2", "--repeats", "1")
    assert "| source | transfer syntax | plugin | files | MP/s | / default | same pixels as default |" in out
    rle = {row["plugin"]: row for row in result["rows"] if row["syntax"] == "RLE Lossless"}
    assert {"default", "pydicom"} <= set(rle) and rle["default"]["over_default"] == 1
    assert all(row["mp_per_s"] > 0 and row["identical"] == "yes" for row in result["rows"])


def test_training_benchmark_times_the_cache_fill_and_the_cached_epoch(run_benchmark_in_process):
    out, result = run_benchmark_in_process("training", "--image_size", "[64,32]", "--source_shape", "[256,208]",
                                "--n_patients", "16", "--num_workers", "0", "--batch_size", "8")
    assert "| phase | seconds | images/s | / plain |" in out and "epoch 2 (cached)" in out
    assert [row["phase"] for row in result["rows"]][-1] == "plain loop, same DataLoader (cached)"
    assert all(row["images_per_s"] > 0 for row in result["rows"])


def test_isic_benchmark_compares_no_cache_disk_cache_and_plain_loading(run_benchmark_in_process):
    out, result = run_benchmark_in_process("isic", "--n_images", "40", "--image_size", "[64,64]", "--workers", "1",
                                "--repeats", "1")
    assert "| loader | workers | images/s | / plain | / no cache |" in out
    assert {(row["loader"], row["workers"]) for row in result["rows"]} == {
        (loader, w) for loader in ("no cache", "disk cache", "plain") for w in (0, 1)}
    assert all(row["images_per_s"] > 0 for row in result["rows"])
    assert "the real 400k crops would need" in out and result["settings"]["cache_kb_per_image"] > 0


def test_isic_training_benchmark_tables_the_trainer_against_a_plain_loop(run_benchmark_in_process):
    out, result = run_benchmark_in_process("isic_training", "--n_images", "64", "--epochs", "1",
                                           "--num_workers", "[0,1]")
    assert "| workers | cache | images/epoch | bundle images/s | plain images/s | bundle / plain |" in out
    assert [(row["workers"], row["cache"]) for row in result["rows"]] == [
        (0, "no cache"), (1, "no cache"), (0, "disk cache"), (1, "disk cache")]
    assert all(row["bundle"] > 0 and row["plain"] > 0 for row in result["rows"])


def test_export_benchmark_tables_eager_torchscript_and_onnxruntime(run_benchmark_in_process):
    out, result = run_benchmark_in_process("export", "--bundles", "[isic]", "--models", "[demo]", "--image_size",
                                           "[32,32]", "--repeats", "1", "--batch_sizes", "[1,2]")
    assert "| bundle | model | backbone | input | batch | eager | TorchScript | onnxruntime |" in out
    assert [(row["input"], row["batch"]) for row in result["rows"]] == [("3x32x32", 1), ("3x32x32", 2)]
    assert all(row["onnxruntime"] > 0 and row["eager"] > 0 for row in result["rows"])


def test_trainer_overhead_benchmark_tables_the_bundle_trainer_the_plain_loops_and_the_switches(
    run_benchmark_in_process,
):
    out, result = run_benchmark_in_process("trainer_overhead", "--bundles", "[isic]", "--num_workers", "[0]",
                                           "--n_images", "64", "--image_size", "[32,32]", "--rounds", "2",
                                           "--switches", "channels_last+bf16", "--threads", "1")
    runs = ("plain, no augmentation", "plain", "bundle", "bundle + channels_last+bf16")
    for run in runs:
        assert f"| isic | resnet10t | 3x32x32 | 32 | 0 | {run} |" in out, run
    assert [row["run"] for row in result["rows"]] == list(runs) and all(r["images_per_s"] > 0 for r in result["rows"])
    assert result["settings"]["profiles"]["isic"]["events_ms"] > 0 and "engine event handlers, ms per iteration" in out


def test_crop_benchmark_times_the_bundle_crop_and_the_plain_one_on_films_and_demo_images(
    tmp_path, run_benchmark_in_process
):
    import cv2
    import numpy as np

    films = tmp_path / "films"
    films.mkdir()
    for i in range(2):  # a breast on a film inside a dark border, with a bright label
        film = np.zeros((300, 300), np.uint8)
        film[:, 40:260] = 8
        cv2.ellipse(film, (40, 150), (150 + 20 * i, 130), 0, -90, 90, 140, -1)
        film[20:50, 200:240] = 250
        cv2.imwrite(str(films / f"film{i}.png"), film)
    out, result = run_benchmark_in_process("crop", "--films", str(films), "--shape", "[256,208]",
                                           "--demo_patients", "2", "--repeats", "1")
    assert "| source | method | images | ms per image | / plain | breast found | median box (of image) |" in out
    rows = {(row["source"], row["method"].split(":")[0]): row for row in result["rows"]}
    assert {source for source, _ in rows} == {"scanned films (films)", "demo digital"}
    film_crop = rows["scanned films (films)", "BreastCrop"]
    assert film_crop["images"] == film_crop["found"] == 2 and 0.2 < film_crop["median_box"] < 0.8
    assert all(row["ms"] > 0 for row in result["rows"]) and rows["demo digital", "plain"]["over_plain"] == 1


def test_tracking_benchmark_times_an_epoch_untracked_with_mlflow_and_with_wandb(run_benchmark):
    pytest.importorskip("mlflow")
    pytest.importorskip("wandb")
    out, result = run_benchmark("tracking", "--epochs", "2", "--n_patients", "6", "--image_size", "[64,32]")
    assert [row["tracking"] for row in result["rows"]] == ["none", "mlflow", "wandb"]
    assert result["rows"][0]["ratio"] == 1 and all(row["seconds"] > 0 and row["epochs"] == 2 for row in result["rows"])
    assert "| mlflow |" in out and "ratio to untracked" in out


def test_evaluation_report_benchmark_times_an_evaluation_with_and_without_its_report(run_benchmark_in_process):
    out, result = run_benchmark_in_process("evaluation_report", "--n_images", "60", "--image_size", "[32,32]",
                                           "--k", "1", "--n_resamples", "50")  # fmt: skip
    assert [row["evaluation"] for row in result["rows"]] == ["without the report", "with the report", "the report alone"]
    assert result["rows"][0]["seconds"] > 0 and result["rows"][1]["seconds"] > result["rows"][0]["seconds"]
    assert "| with the report |" in out


def test_tabular_benchmark_tables_fit_time_memory_and_out_of_fold_auroc_per_fold(run_benchmark_in_process):
    pytest.importorskip("lightgbm")
    out, result = run_benchmark_in_process("tabular", "--n_rows", "3000", "--n_patients", "60", "--n_positive", "30",
                                "--folds", "2", "--boosters", "[lightgbm]", "--threads", "1")
    assert "| booster | fold | training rows | fit s | predict s | peak MB | AUROC | pAUC (TPR > 0.8) |" in out
    assert [row["fold"] for row in result["rows"]] == ["0", "1", "all (out-of-fold)"]
    assert all(row["fit_s"] > 0 and row["peak_mb"] >= 0 for row in result["rows"])
    assert result["rows"][-1]["auroc"] > 0.6 and result["settings"]["table"].endswith(":isic_features")
