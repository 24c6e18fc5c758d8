from __future__ import annotations

import logging
from pathlib import Path

from medbundle.overrides import unknown_overrides, warn_unknown_overrides

CONFIGS = Path(__file__).resolve().parents[1] / "bundles"


def command(*overrides: str, bundle: str = "rsna") -> list[str]:
    files = repr([str(CONFIGS / bundle / "configs" / "train.yaml"), str(CONFIGS / bundle / "configs" / "evaluate.yaml")])
    return ["monai.bundle", "run", "evaluating", "--config_file", files, "--logging_file", "logging.conf", *overrides]


def test_known_keys_runner_arguments_and_nested_ids_pass():
    argv = command("--epochs", "3", "--fold=1", "--resume", "--train#trainer#max_epochs", "2", "--ckpt_path", "m.pt")
    assert unknown_overrides(argv) == []


def test_typos_are_reported_with_the_closest_key(caplog):
    argv = command("--epoch", "3", "--validate#dataloader#batchsize", "4", "--zzz", "1", bundle="chest_xray")
    with caplog.at_level(logging.WARNING):
        found = warn_unknown_overrides(argv)
    assert found == [("epoch", "epochs"), ("validate#dataloader#batchsize", "validate#dataloader#batch_size"), ("zzz", None)]
    assert "did you mean --epochs?" in caplog.text


def test_without_config_files_nothing_is_checked():
    assert unknown_overrides(["pytest", "-q", "--epoch", "3"]) == []
