"""Smoke tests of the README's benchmark commands at tiny sizes, so they cannot rot unseen."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from medbundle.demo import write_rsna_demo

REPO = Path(__file__).resolve().parents[1]


def benchmark(*args: str) -> str:
    command = [sys.executable, str(REPO / "scripts" / "benchmark.py"), *args]
    result = subprocess.run(command, check=False, cwd=REPO, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", "PAGER": "cat"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_dicom_benchmark_reports_images_per_second(tmp_path):
    write_rsna_demo(tmp_path / "data", n_patients=2, image_shape=(256, 208), n_test_patients=0, seed=1)
    folder = tmp_path / "dicoms"
    folder.mkdir()
    for path in list((tmp_path / "data" / "train_images").rglob("*.dcm"))[:3]:
        (folder / path.name).write_bytes(path.read_bytes())
    out = benchmark("dicom", "--folder", str(folder), "--image_size", "[128,64]")
    assert "decode_plus_preprocess_images_per_s_per_worker" in out and "unreadable_skipped:" in out


def test_dicom_reduce_benchmark_tables_reduced_full_and_plain_decoding(tmp_path):
    out = benchmark("dicom_reduce", "--folder", str(tmp_path), "--image_size", "[64,32]", "--demo_shape", "[256,208]",
                    "--demo_patients", "2", "--repeats", "1")
    assert "| source | transfer syntax | files | MP | reduce level | on | off | plain | on/plain |" in out
    assert "| demo 256x208 | JPEG 2000 Image Compression (Lossless Only) |" in out and "PSNR on vs off" in out


def test_training_benchmark_compares_the_bundle_with_a_plain_loop():
    out = benchmark("training", "--image_size", "[64,32]", "--source_shape", "[256,208]", "--n_patients", "40",
                    "--num_workers", "0", "--batch_size", "8")
    assert "bundle_over_plain" in out and "epoch2_s (cached)" in out


def test_isic_benchmark_compares_no_cache_disk_cache_and_plain_loading():
    out = benchmark("isic", "--n_images", "40", "--image_size", "[64,64]", "--workers", "1", "--repeats", "1")
    for key in ("nocache_images_per_s_0_workers:", "cached_images_per_s_1_workers:", "plain_images_per_s_1_workers:",
                "cache_fill_s (1 workers):", "bundle_over_plain_0_workers:", "cached_over_uncached_1_workers:"):
        assert key in out, key
    assert "cache_gb_for_400k_crops:" in out and ("no cache" in out or "disk cache" in out)


def test_isic_training_benchmark_reports_images_per_second_per_worker_count():
    out = benchmark("isic_training", "--n_images", "64", "--epochs", "1", "--num_workers", "[0,1]")
    for key in ("train_images_per_epoch", "train_images_per_s_0_workers:", "train_images_per_s_1_workers:",
                "train_images_per_s_0_workers_disk_cache:", "train_images_per_s_1_workers_disk_cache:"):
        assert key in out, key


def test_export_benchmark_tables_eager_torchscript_and_onnxruntime():
    out = benchmark("export", "--bundles", "[isic]", "--models", "[demo]", "--image_size", "[32,32]", "--repeats", "1",
                    "--batch_sizes", "[1,2]")
    assert "| bundle | model | backbone | input | batch | eager | TorchScript | onnxruntime |" in out
    assert "| isic | demo | resnet10t | 3x32x32 | 1 |" in out and "| isic | demo | resnet10t | 3x32x32 | 2 |" in out


def test_trainer_overhead_benchmark_tables_the_bundle_trainer_the_plain_loops_and_the_switches(tmp_path):
    out = benchmark("trainer_overhead", "--bundles", "[isic]", "--num_workers", "[0]", "--n_images", "64",
                    "--image_size", "[32,32]", "--rounds", "2", "--switches", "channels_last+bf16", "--threads", "1",
                    "--out", str(tmp_path / "overhead.json"))
    runs = ("plain, no augmentation", "plain", "bundle", "bundle + channels_last+bf16")
    for run in runs:
        assert f"| isic | resnet10t | 3x32x32 | 32 | 0 | {run} |" in out, run
    result = json.loads((tmp_path / "overhead.json").read_text())
    assert [row["run"] for row in result["rows"]] == list(runs) and all(row["images_per_s"] > 0 for row in result["rows"])
    assert result["profiles"]["isic"]["events_ms"] > 0 and "engine event handlers, ms per iteration" in out
