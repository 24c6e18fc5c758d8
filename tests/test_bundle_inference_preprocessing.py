"""inference.yaml preprocesses exactly like train.yaml's validation chain, on which the best model and the stored
thresholds were chosen: per bundle, both chains parsed with ``monai.bundle.ConfigParser`` (inference reading its
settings from a model.pt as training stores them) give identical tensors on the same demo images."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from monai.bundle import ConfigParser

from medbundle.demo import write_chest_xray_demo, write_isic_demo, write_rsna_demo

REPO = Path(__file__).resolve().parents[1]
DEMOS = {
    "rsna": lambda root: write_rsna_demo(root, n_patients=8, positive_rate=0.3, n_test_patients=0,
                                         image_shape=(256, 208), seed=3),
    "chest_xray": lambda root: write_chest_xray_demo(root, n_train=3, n_val=2, n_test=0, size_range=(64, 96), seed=3),
    "isic": lambda root: write_isic_demo(root, n_patients=9, positive_rate=0.2, n_test=0, size_range=(40, 72), seed=3),
}  # fmt: skip
NETWORK = {"rsna": {"backbone": "resnet10t", "head": "linear", "image_size": [64, 32]},
           "chest_xray": {"model": "resnet10t", "image_size": [48, 48]},
           "isic": {"model": "resnet10t", "image_size": [48, 40]}}  # fmt: skip


@pytest.mark.parametrize(
    ("task", "settings"),
    [("rsna", {}), ("rsna", {"reduced_decode": False}), ("chest_xray", {}), ("chest_xray", {"clahe": True}),
     ("isic", {}), ("isic", {"cache_dir": "cache"})],
)  # fmt: skip
def test_inference_preprocessing_equals_the_validation_chain(task, settings, tmp_path):
    configs = REPO / "bundles" / task / "configs"
    data = tmp_path / "data"
    DEMOS[task](data)
    paths = {"dataset_dir": str(data), "bundle_root": str(tmp_path / "bundle")}
    train = ConfigParser()
    train.read_config(str(configs / "train.yaml"))
    overrides = {key: str(tmp_path / value) if key == "cache_dir" else value for key, value in settings.items()}
    train.update({**paths, **NETWORK[task], **overrides, "pretrained": False, "n_folds": 2, "num_workers": 0})
    checkpoint = tmp_path / "model.pt"
    torch.save({"config": train.get_parsed_content("stored_config").state_dict()}, checkpoint)
    inference = ConfigParser()
    inference.read_config(str(configs / "inference.yaml"))
    inference.update({**paths, "ckpt_path": str(checkpoint)})

    validation = train.get_parsed_content("validate#preprocessing")
    deployed = inference.get_parsed_content("preprocessing")
    items = train.get_parsed_content("validate#datalist")[:4]
    assert items
    for item in items:
        expected, actual = validation(dict(item))["image"], deployed(dict(item))["image"]
        assert actual.dtype == expected.dtype == torch.float32, item["image"]
        assert actual.shape == expected.shape, item["image"]
        difference = (torch.as_tensor(actual) - torch.as_tensor(expected)).abs().max().item()
        assert difference == 0.0, f"{item['image']}: inference differs from validation by up to {difference:.3g}"
