"""The functions behind ``medbundle export`` and ``medbundle package``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from medbundle.export.command import export, package
from medbundle.networks import TimmClassifier

REPO = Path(__file__).resolve().parents[1]


def test_export_writes_the_chosen_format_and_returns_files_and_differences(tmp_path):
    checkpoint = tmp_path / "model.pt"
    config = {"task": "isic", "backbone": "resnet10t", "head": "linear", "in_chans": 3, "num_classes": 1,
              "image_size": [32, 32]}
    network = TimmClassifier("resnet10t", num_classes=1, in_chans=3)
    torch.save({"model": network.state_dict(), "config": config, "thresholds": {"roc_threshold": 0.5}}, checkpoint)
    result = export(str(REPO / "bundles" / "isic"), str(checkpoint), format="onnx", out=str(tmp_path / "out"))
    assert set(result["files"]) == {"onnx", "deploy", "parity"}
    assert set(result["max_abs_diff"]) == {"onnx"} and result["max_abs_diff"]["onnx"]["random"]["4"] < 1e-4


def test_an_unknown_format_lists_the_choices(tmp_path):
    with pytest.raises(ValueError, match=r"--format 'pt': choose one of \['both', 'onnx', 'ts'\]"):
        export("bundles/isic", "model.pt", format="pt", out=str(tmp_path))


def test_package_defaults_to_the_fold0_checkpoint_of_the_bundle(tmp_path):
    bundle = tmp_path / "isic"
    shutil.copytree(REPO / "bundles" / "isic" / "configs", bundle / "configs")
    with pytest.raises(FileNotFoundError, match=f"checkpoint {bundle / 'models' / 'fold0' / 'model.pt'} not found"):
        package(str(bundle), out=str(tmp_path / "dist"))
