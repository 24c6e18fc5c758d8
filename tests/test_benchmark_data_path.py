"""`scripts/benchmark.py data_path`: loader-only against model-only images/s, and its helpers."""

from __future__ import annotations

import time

import pytest
from monai.data import Dataset
from monai.transforms import Compose, MapTransform
from torch.utils.data import DataLoader

from medbundle.benchmarks.data_path import (
    RepeatedDataset,
    cache_verdict,
    data_path,
    data_path_verdict,
    loader_profile,
    mix_labels,
    model_batch,
)


class Slow(MapTransform):
    def __call__(self, data):
        time.sleep(0.01)
        return data


class Fast(MapTransform):
    def __call__(self, data):
        return data


def test_model_batch_caps_large_inputs_but_keeps_two_images_for_batchnorm():
    assert model_batch(16, [256, 128], megapixels=1.0) == 16  # the demo's batch fits
    assert model_batch(256, [224, 224], megapixels=1.0) == 19
    assert model_batch(8, [1024, 512], megapixels=1.0) == 2  # the rsna default: 1 would fit, BatchNorm needs 2
    assert model_batch(8, [1024, 512], megapixels=3.0) == 5 and model_batch(8, [1024, 512], megapixels=5.0) == 8


def test_verdicts():
    assert data_path_verdict(10.0, 10.0) == "keeps up" and data_path_verdict(9.9, 10.0) == "STARVES"
    assert cache_verdict(True, 20.0) == ">= 20x" and cache_verdict(True, 19.9) == "BELOW 20x"
    assert cache_verdict(False, 100.0) == "no cache"


def test_repeated_dataset_cycles_items_and_labels():
    base = Dataset([{"image": i, "label": i % 2} for i in range(3)])
    repeated = RepeatedDataset(base, 3)
    assert len(repeated) == 9 and len(repeated.data) == 9
    assert [repeated[i]["image"] for i in range(9)] == [0, 1, 2] * 3
    assert repeated.data[4] == base.data[1]


def test_mix_labels_takes_every_class_in_turn():
    data = [{"id": i, "label": [0.0]} for i in range(6)] + [{"id": 6, "label": [1.0]}, {"id": 7, "label": [1.0]}]
    assert [d["id"] for d in mix_labels(data, 5)] == [0, 6, 1, 7, 2]
    assert len(mix_labels(data, 100)) == 8


def test_loader_profile_names_the_costly_transform():
    dataset = Dataset([{"image": i} for i in range(4)], transform=Compose([Fast(keys="image"), Slow(keys="image")]))
    ms, shares = loader_profile(DataLoader(dataset, batch_size=2), dataset.transform)
    assert ms >= 10
    assert next(iter(shares)) == "Slow" and shares["Slow"] > 0.5
    assert {"Fast", "collate"} <= set(shares)


def test_unknown_setting_is_refused():
    with pytest.raises(ValueError, match="--settings: unknown \\['fast'\\]"):
        data_path(settings=("fast",))


def test_data_path_benchmark_tables_loader_and_model_rates(run_benchmark):
    out, result = run_benchmark(
        "data_path", "--bundles", "[rsna,isic]", "--settings", "[demo]", "--n_images", "12",
        "--source_sizes", '{"rsna": [256, 208], "isic": [32, 48]}', "--loader_batches", "2", "--repeats", "1",
        "--model_steps", "1",
    )
    assert "| bundle | setting | backbone | input | source |" in out and "loader / model" in out
    rows = result["rows"]
    assert [(r["bundle"], r["setting"]) for r in rows] == [("rsna", "demo"), ("isic", "demo")]
    assert [key for key, _ in result["columns"]][:2] == ["bundle", "setting"]
    for row in rows:
        for key in ("decode_images_per_s", "cache_fill_s", "fill_peak_rss_mb", "loader_images_per_s",
                    "loader_1worker_images_per_s", "model_images_per_s", "loader_over_model", "cached_over_decode",
                    "cached_over_decode_1worker", "train_peak_rss_mb"):
            assert row[key] > 0, (row["bundle"], key)
        assert row["data_path"] in ("keeps up", "STARVES") and row["images"] == 12 and row["workers"] >= 1
        assert row["model_batch"] <= row["batch"] and "ms/image" in row["profile"]
    rsna, isic = rows
    assert rsna["cache"] == "disk" and rsna["cache_verdict"] in (">= 20x", "BELOW 20x")
    assert rsna["input"] == "1x256x128" and "torch.load" in rsna["profile"]
    assert isic["cache"] == "none" and isic["cache_verdict"] == "no cache" and isic["input"] == "3x64x64"
    assert any(note.startswith("rsna demo: the loader delivers") for note in result["notes"])
    assert result["settings"]["source_sizes"]["rsna"] == [256, 208]
