"""Each bundle declares its deterministic preprocessing once, in inference.yaml, and validation runs exactly it.

The stored thresholds and the best model are chosen on validation predictions, so inference must preprocess
exactly as validation does: train.yaml's validation (and cached training) chain is inference.yaml's
``deterministic_transforms``, parsed with train.yaml's settings (:mod:`medbundle.config_component`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser

REPO = Path(__file__).resolve().parents[1]
BUNDLES = REPO / "bundles"
#: where each bundle's train.yaml lists labelled items without a K-fold split of a tiny demo set
LABELLED = {"rsna": "datalist", "chest_xray": "validate#datalist", "isic": "datalist", "classify": "validate#datalist"}
#: the same top-level overrides for both configs, as `--key value` on both command lines
CASES = [
    ("rsna", {"image_size": [64, 48], "reduced_decode": True}),
    ("rsna", {"image_size": [96, 64], "reduced_decode": False}),  # JPEG 2000 decoded in full
    ("chest_xray", {"image_size": [24, 32], "reduced_decode": True, "clahe": False}),  # JPEGs decoded at 1/2
    ("chest_xray", {"image_size": [48, 48], "reduced_decode": False, "clahe": True}),
    ("isic", {"image_size": [48, 40]}),
    ("classify", {"image_size": [40, 48], "reduced_decode": True, "rgb": False}),  # a JPEG to reduce
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> dict[str, Path]:
    """Tiny demo data sets in the real Kaggle layouts."""
    from medbundle.demo import (
        write_chest_xray_demo,
        write_classify_demo,
        write_isic_demo,
        write_rsna_demo,
    )

    root = tmp_path_factory.mktemp("shared_preprocessing")
    write_rsna_demo(root / "rsna", n_patients=4, n_test_patients=1, image_shape=(600, 480))  # RLE and JPEG 2000
    write_chest_xray_demo(root / "chest_xray", n_train=2, n_val=3, n_test=1, size_range=(160, 240))  # a JPEG to reduce
    write_isic_demo(root / "isic", n_patients=3, n_test=2, lesions_per_patient=(1, 2), size_range=(40, 70))
    write_classify_demo(root / "classify", n_patients=25, n_classes=3, n_test=0, size_range=(100, 200))
    return {task: root / task for task in ("rsna", "chest_xray", "isic", "classify")}


def parse(task: str, name: str, overrides: dict) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config(str(BUNDLES / task / "configs" / name))
    parser.update(overrides)
    return parser


@pytest.mark.parametrize("task, settings", CASES)
def test_validation_preprocesses_exactly_as_inference(demo, tmp_path, monkeypatch, task, settings):
    """Same overrides, same images: validation's tensors are inference's, whatever the training cache's dtype."""
    monkeypatch.chdir(tmp_path)  # from any working directory, with config_dir pointing at the bundle
    configs = {"config_dir": str(BUNDLES / task / "configs")}
    train = parse(task, "train.yaml", {**configs, **settings, "dataset_dir": str(demo[task])})
    inference = parse(task, "inference.yaml", settings).get_parsed_content("preprocessing")
    validation = train.get_parsed_content("validate#preprocessing")
    items = train.get_parsed_content(LABELLED[task])
    assert len(items) >= 5
    for item in items:
        expected = torch.as_tensor(np.asarray(inference({"image": item["image"]})["image"]))
        assert expected.dtype == torch.float32 and list(expected.shape[1:]) == settings["image_size"]
        assert torch.equal(validation(dict(item))["image"], expected), item["image"]


def targets(config) -> list[str]:
    """Every ``_target_`` in a raw config, in order."""
    if isinstance(config, dict):
        own = [config["_target_"]] if "_target_" in config else []
        return own + [t for value in config.values() for t in targets(value)]
    if isinstance(config, list):
        return [t for value in config for t in targets(value)]
    return []


@pytest.mark.parametrize("task", ["rsna", "chest_xray", "isic", "classify"])
def test_the_deterministic_chain_is_declared_once_in_inference_yaml(task):
    configs = BUNDLES / task / "configs"
    inference = ConfigParser.load_config_file(configs / "inference.yaml")
    chain = targets(inference["deterministic_transforms"])
    assert chain[0] == "LoadImaged" and targets(inference).count("LoadImaged") == 1
    assert "@deterministic_transforms" in str(inference["preprocessing"]["transforms"])
    train = ConfigParser.load_config_file(configs / "train.yaml")
    shared = train["deterministic_transforms"]
    assert shared["_target_"] == "medbundle.config_component.config_component"
    assert (shared["config_file"], shared["id"]) == ("$@config_dir + '/inference.yaml'", "deterministic_transforms")
    assert shared["settings"] == {key: f"@{key}" for key in shared["settings"]}  # train.yaml's own top-level keys
    assert train["cached_transforms"].startswith("$@deterministic_transforms + ")
    assert Path(train["config_dir"]) == configs.relative_to(REPO)  # the default, from the repository root
    # no training-side config declares a transform of the chain (EnsureTyped also casts labels and caches)
    chain_only = set(chain) - {"EnsureTyped"}
    for name in ("train.yaml", "evaluate.yaml", "multi_gpu_train.yaml", "demo.yaml"):
        assert not chain_only & set(targets(ConfigParser.load_config_file(configs / name))), name


def test_the_ensemble_parses_a_task_bundle_from_any_working_directory(tmp_path, monkeypatch):
    """task_config points config_dir at the bundle it reads, as the product command does from the repository root."""
    from medbundle.ensemble.tasks import task_config

    monkeypatch.chdir(tmp_path)
    parser = task_config(BUNDLES / "isic", ("train.yaml",), image_size=[32, 32])
    assert type(parser.get_parsed_content("deterministic_transforms")[0]).__name__ == "LoadImaged"
