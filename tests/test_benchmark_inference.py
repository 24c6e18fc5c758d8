"""The inference benchmark at tiny sizes: the README's command tables every bundle against plain and model only and
profiles each stage when asked, and the plain script feeds the network exactly what the bundle feeds it."""

from __future__ import annotations

import pytest
import torch

from medbundle.benchmarks.export import export_checkpoint
from medbundle.benchmarks.inference import ISIC, PlainImages, bundle_evaluator

STAGES = ("decode + preprocess", "collate", "network", "CSV")


def test_inference_benchmark_tables_bundle_plain_and_model_only_per_bundle(run_benchmark_in_process):
    out, data = run_benchmark_in_process("inference", "--n_images", "5", "--image_size", "[32,32]", "--batch_size",
                                         "4", "--workers", "1", "--repeats", "1", "--rsna_shape", "[256,208]",
                                         "--chest_xray_sides", "[64,96]", "--isic_sides", "[40,60]",
                                         "--profile_below", "1e9")
    assert ("| bundle | model | backbone | input | images | batch | workers | bundle | plain | model only "
            "| bundle/plain | bundle/model only | startup s |") in out
    for bundle, channels in (("rsna", 1), ("chest_xray", 1), ("isic", 3)):
        assert f"| {bundle} | demo | resnet10t | {channels}x32x32 |" in out, bundle
    rows = {row["bundle"]: row for row in data["rows"]}
    assert list(rows) == ["rsna", "chest_xray", "isic"] and rows["isic"]["images"] == 5
    for bundle, row in rows.items():
        assert row["batch"] == 4 and row["workers"] == 1 and row["startup_s"] > 0
        assert min(row["bundle_images_per_s"], row["plain_images_per_s"], row["model_only_images_per_s"]) > 0
        assert row["bundle_over_plain"] == pytest.approx(row["bundle_images_per_s"] / row["plain_images_per_s"])
        assert row["bundle_over_model_only"] == pytest.approx(row["bundle_images_per_s"] / row["model_only_images_per_s"])
        for path, seconds in row["profile_s"].items():  # every stage found in the profile of both paths
            assert all(seconds[stage] > 0 for stage in STAGES), (bundle, path, seconds)
            assert seconds["total"] == pytest.approx(sum(seconds[stage] for stage in (*STAGES, "other")))
        assert any(note.startswith(f"{bundle} demo: bundle ") and "network" in note for note in data["notes"])
    assert any(note.startswith("rsna: ") and "JPEG 2000" in note for note in data["notes"])
    assert data["settings"]["sources"]["rsna"] == [256, 208] and data["machine"]["torch_threads"] >= 1


def test_plain_script_feeds_the_network_the_bundles_preprocessed_images(tmp_path):
    checkpoint = tmp_path / "bundle" / "models" / "fold0" / "model.pt"
    checkpoint.parent.mkdir(parents=True)
    settings = export_checkpoint("isic", True, [32, 32], checkpoint)
    overrides, items = ISIC.write_set(tmp_path / "data", 6, (40, 60))
    parser = bundle_evaluator("isic", tmp_path, {**overrides, "num_workers": 0})[0]
    bundle = parser.get_parsed_content("dataset")
    plain = PlainImages(ISIC.image, [file for file, _ in items], settings)
    assert len(plain) == len(bundle) == 6
    for i in range(len(plain)):
        assert torch.equal(plain[i], torch.as_tensor(bundle[i]["image"]))
