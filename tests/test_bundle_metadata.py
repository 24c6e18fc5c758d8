"""Every bundle satisfies MONAI's bundle tooling: metadata schema and network I/O."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from monai.bundle import ConfigWorkflow, verify_metadata, verify_net_in_out
from monai.bundle.properties import InferProperties, MetaProperties

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


@pytest.mark.parametrize("bundle", [*BUNDLES, "ensemble"])
def test_changelog_holds_the_version(bundle):
    """The model zoo's verify_bundle refuses a version without a changelog entry."""
    metadata = json.loads((REPO / "bundles" / bundle / "configs" / "metadata.json").read_text())
    assert metadata["version"] in metadata["changelog"]


# the ensemble ensembles the task bundles' checkpoints: each member's network_def, dataset and inferer are its task
# bundle's, run by one EnsembleEvaluator per group of members at run time (bundles/ensemble/docs/README.md)
ENSEMBLE_HAS_NO = {"network_def", "inferer", "dataset", "evaluator"}


@pytest.mark.parametrize("config", ["inference.yaml", "evaluate.yaml"])
def test_ensemble_has_the_workflow_properties_that_apply_to_it(config, tmp_path):
    configs = REPO / "bundles" / "ensemble" / "configs"
    workflow = ConfigWorkflow(config_file=str(configs / config), meta_file=str(configs / "metadata.json"),
                              logging_file=False, workflow_type="inference", bundle_root=str(tmp_path))
    workflow.initialize()
    assert ENSEMBLE_HAS_NO <= {name for name, p in InferProperties.items() if p["required"]}  # what MONAI asks for
    # evaluate.yaml's evaluator is a one-step engine (medbundle.tracking.TrackedStep) for --tracking to attach to
    has_no = ENSEMBLE_HAS_NO - ({"evaluator"} if config == "evaluate.yaml" else set())
    workflow.properties = {**MetaProperties, **{n: p for n, p in InferProperties.items() if n not in has_no}}
    assert workflow.check_properties() == []
    assert all(name not in workflow.parser for name in has_no)  # none half-defined


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
