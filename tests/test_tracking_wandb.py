"""``--tracking tracking/wandb.yaml`` offline (``WANDB_MODE=offline``): the run files W&B writes, read back.

The rsna bundle trains at toy size through ``python -m monai.bundle run``; the ``.wandb`` file (W&B's record log:
LevelDB-style 32 KiB blocks of protobuf ``Record`` s) holds the loss of every iteration, the validation metrics of
every epoch, every top-level key in the run's config, the tags, and model.pt as a ``model`` artifact.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tiny_tasks import TASKS

pytest.importorskip("wandb")

REPO = Path(__file__).resolve().parents[1]
EPOCHS = 2


def wandb_records(path: Path) -> Iterator[object]:
    """The protobuf records of a ``.wandb`` run file (header ``:W&B``, then LevelDB log blocks)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", data[:7]
    position, block, pending = 7, 32768, b""
    while position + 7 <= len(data):
        if block - position % block < 7:  # a block's tail too short for a header is padding
            position += block - position % block
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + 7])
        chunk, position = data[position + 7 : position + 7 + length], position + 7 + length
        if kind in (1, 2):  # full, first
            pending = chunk
        elif kind in (3, 4):  # middle, last
            pending += chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


@pytest.fixture(scope="module")
def run_file(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("wandb")
    spec = TASKS["rsna"]
    spec.write_demo(root / "data", **spec.demo_args)
    overrides = {**spec.overrides, "epochs": EPOCHS, "dataset_dir": root / "data", "bundle_root": root / "b"}
    flags = [arg for key, value in overrides.items() for arg in (f"--{key}", str(value))]
    command = [sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", "bundles/rsna/configs/train.yaml",
               *flags, "--tracking", "tracking/wandb.yaml"]  # fmt: skip
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    files = list((root / "b" / "outputs" / "fold0" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1, files
    return files[0]


def test_the_offline_run_holds_metrics_parameters_tags_and_the_checkpoint(run_file):
    history, config, artifacts, runs = [], {}, [], []
    for record in wandb_records(run_file):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            history.append({item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item})
        elif kind == "config":
            config |= {item.key: json.loads(item.value_json) for item in record.config.update}
        elif kind == "artifact":
            artifacts.append((record.artifact.type, [entry.path for entry in record.artifact.manifest.contents]))
        elif kind == "run":
            runs.append(record.run)
    assert runs[-1].display_name == "fold0-resnet10t" and runs[-1].project == "rsna"
    assert {"task:rsna", "fold:0", "backbone:resnet10t", "stage:train"} <= set(runs[-1].tags)
    losses = [row["train/loss"] for row in history if "train/loss" in row]
    assert len(losses) == config["epoch_length"] * EPOCHS and any("train/lr/group_0" in row for row in history)
    validations = [row for row in history if "validation/val_auroc" in row]
    assert [row["validation/epoch"] for row in validations] == list(range(1, EPOCHS + 1))
    steps = [row["_step"] for row in history]
    assert steps == sorted(steps)  # W&B drops a step that goes back
    for key in ("dataset_dir", "fold", "epochs", "image_size", "batch_size", "backbone", "pretrained", "num_workers",
                "resume", "skip_bad_images", "cache_dir", "bundle_root"):  # fmt: skip
        assert key in config, key
    assert config["epochs"] == str(EPOCHS) and config["backbone"] == "resnet10t"
    assert ("model", ["model.pt"]) in artifacts
