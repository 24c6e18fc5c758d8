"""The monai.bundle command lines of a sweep: model key per bundle, single process / torchrun, resume, evaluation."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest
from fire.parser import DefaultParseValue

from medbundle.sweep.commands import (
    bundle_n_folds,
    evaluation_command,
    format_override,
    model_key,
    shared_cache,
    shell_line,
    training_command,
)
from medbundle.sweep.layout import RunDir

REPO = Path(__file__).resolve().parents[1]
BUNDLES = REPO / "bundles"


@pytest.mark.parametrize(("bundle", "key"), [("isic", "model"), ("chest_xray", "model"), ("classify", "model"), ("rsna", "backbone")])
def test_model_names_set_model_where_train_yaml_has_presets_else_backbone(bundle, key):
    assert model_key(BUNDLES / bundle) == key


def test_n_folds_from_override_or_train_yaml():
    assert bundle_n_folds(BUNDLES / "isic", {}) == 5
    assert bundle_n_folds(BUNDLES / "isic", {"n_folds": 2}) == 2


def test_missing_bundle_is_named():
    with pytest.raises(FileNotFoundError, match="nowhere/configs/train.yaml"):
        model_key("nowhere")


def test_training_command_one_process_and_resume():
    run = RunDir(Path("runs/cv"), "resnet10t", 1)
    command = training_command("bundles/isic", run, "model", {"epochs": 3, "image_size": [64, 64]}, resume=True)
    assert command[:7] == [sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", "bundles/isic/configs/train.yaml"]
    assert command[7:] == ["--model", "resnet10t", "--fold", "1", "--bundle_root", "runs/cv/resnet10t/fold_1",
                           "--config_dir", "bundles/isic/configs", "--epochs", "3", "--image_size", "[64, 64]",
                           "--resume", "True"]  # fmt: skip


def test_a_model_name_that_is_no_preset_trains_as_a_backbone():
    run = RunDir(Path("runs/cv"), "tf_efficientnet_lite0", 0)
    command = training_command("bundles/isic", run, "model", {"pretrained_file": "lite0.pth"})
    assert command[command.index("--backbone") + 1] == "tf_efficientnet_lite0" and "--model" not in command


def test_training_command_with_nproc_uses_torchrun_and_the_multi_gpu_overlay():
    run = RunDir(Path("runs/cv"), "efficientnet_b3", 0)
    command = training_command("bundles/rsna", run, "backbone", {}, nproc=4)
    assert command[:6] == [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=4", "-m"]
    configs = command[command.index("--config_file") + 1]
    assert DefaultParseValue(configs) == [
        "bundles/rsna/configs/train.yaml", "bundles/rsna/configs/multi_gpu_train.yaml"
    ]
    assert shell_line([configs]) == """'["bundles/rsna/configs/train.yaml","bundles/rsna/configs/multi_gpu_train.yaml"]'"""
    assert command[command.index("--backbone") + 1] == "efficientnet_b3" and "--resume" not in command


def test_evaluation_command_scores_the_whole_validation_fold():
    run = RunDir(Path("runs/cv"), "resnet10t", 1)
    command = evaluation_command("bundles/isic", run, {"dataset_dir": "d", "val_data_fraction": 0.1})
    assert command[2:5] == ["monai.bundle", "run", "evaluating"]
    assert "evaluate.yaml" in command[command.index("--config_file") + 1]
    assert command[-8:] == ["--fold", "1", "--bundle_root", "runs/cv/resnet10t/fold_1", "--config_dir",
                            "bundles/isic/configs", "--dataset_dir", "d"]  # fmt: skip


@pytest.mark.parametrize("value", [3, 1e-3, False, None, [64, 64], ["a", "b"], "demo_data/isic"])
def test_overrides_parse_back_to_the_same_value(value):
    assert DefaultParseValue(format_override(value)) == value


def test_shell_line_quotes_and_prefixes_the_environment():
    line = shell_line(["python", "-c", "print('a b')"], {"CUDA_VISIBLE_DEVICES": "0,1"})
    assert line == "CUDA_VISIBLE_DEVICES=0,1 python -c 'print('\"'\"'a b'\"'\"')'"
    assert shlex.split(line)[1:] == ["python", "-c", "print('a b')"]


def test_runs_share_one_cache_where_the_bundle_caches_below_bundle_root():
    assert shared_cache(BUNDLES / "rsna", "runs/cv", {}) == {"cache_dir": "runs/cv/cache"}
    assert shared_cache(BUNDLES / "chest_xray", "runs/cv", {}) == {"cache_dir": "runs/cv/cache"}
    assert shared_cache(BUNDLES / "rsna", "runs/cv", {"cache_dir": "/fast/cache"}) == {}
    assert shared_cache(BUNDLES / "isic", "runs/cv", {}) == {}  # no cache by default
