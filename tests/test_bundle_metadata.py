"""Every bundle satisfies MONAI's bundle tooling: metadata schema and network I/O."""

from __future__ import annotations

from pathlib import Path

import pytest
from monai.bundle import verify_metadata, verify_net_in_out

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO.parent / "shared" / "schema" / "meta_schema_20240725.json"
BUNDLES = ["rsna", "chest_xray", "isic", "classify"]
# a small backbone, no download, no dataset statistics file: what verify_net_in_out can build anywhere
OFFLINE = {
    "rsna": {"backbone": "resnet10t"},
    "chest_xray": {"backbone": "resnet10t", "norm_stats": None},
    "isic": {"backbone": "resnet10t"},
    "classify": {"backbone": "resnet10t", "class_names": ["negative", "positive"]},  # no data set to read classes from
}


@pytest.mark.parametrize("bundle", [*BUNDLES, "ensemble"])  # the ensemble has no single network to verify
def test_metadata_validates_against_the_shared_schema(bundle):
    if not SCHEMA.is_file():
        pytest.skip(f"{SCHEMA} not present")
    verify_metadata(meta_file=str(REPO / "bundles" / bundle / "configs" / "metadata.json"), filepath=str(SCHEMA))


@pytest.mark.parametrize("bundle", BUNDLES)
@pytest.mark.parametrize("config", ["train.yaml", "inference.yaml"])
def test_network_input_output_matches_metadata(bundle, config):
    configs = REPO / "bundles" / bundle / "configs"
    verify_net_in_out(
        net_id="network_def",
        meta_file=str(configs / "metadata.json"),
        config_file=str(configs / config),
        device="cpu",
        p=1,
        n=1,
        any=1,
        pretrained=False,
        **OFFLINE[bundle],
    )
