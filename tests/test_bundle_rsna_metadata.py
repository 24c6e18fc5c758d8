"""The rsna bundle satisfies MONAI's bundle tooling: metadata schema and network I/O."""

from __future__ import annotations

from pathlib import Path

import pytest
from monai.bundle import verify_metadata, verify_net_in_out

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "bundles" / "rsna" / "configs"
SCHEMA = REPO.parent / "shared" / "schema" / "meta_schema_20240725.json"


def test_metadata_validates_against_the_shared_schema():
    if not SCHEMA.is_file():
        pytest.skip(f"{SCHEMA} not present")
    verify_metadata(meta_file=str(CONFIGS / "metadata.json"), filepath=str(SCHEMA))


@pytest.mark.parametrize("config", ["train.yaml", "inference.yaml"])
def test_network_input_output_matches_metadata(config):
    verify_net_in_out(
        net_id="network_def",
        meta_file=str(CONFIGS / "metadata.json"),
        config_file=str(CONFIGS / config),
        device="cpu",
        p=1,
        n=1,
        any=1,
        pretrained=False,
        backbone="resnet10t",
    )
