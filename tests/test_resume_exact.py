"""Crash safety: a run killed with SIGKILL mid-epoch resumes to exactly the weights of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import torch
from conftest import assert_resumed, assert_same_state, kill_mid_epoch
from ignite.engine import Engine
from monai.handlers import CheckpointLoader

from medbundle.checkpoints import latest_checkpoint
from medbundle.demo import write_rsna_demo

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "bundles" / "rsna" / "configs"
TINY = ["--backbone", "resnet10t", "--head", "linear", "--image_size", "[64,32]", "--num_workers", "0",
        "--pretrained", "False", "--batch_size", "8", "--pos_per_batch", "2", "--n_folds", "3",
        "--learning_rate", "0.001", "--epochs", "3", "--min_epochs", "3", "--progress", "False"]


def command(data: Path, root: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", str(CONFIGS / "train.yaml"),
            "--logging_file", str(CONFIGS / "logging.conf"), "--dataset_dir", str(data), "--bundle_root", str(root),
            *TINY, *extra]  # fmt: skip


def run(cmd: list[str]) -> str:
    result = subprocess.run(cmd, check=False, cwd=REPO, capture_output=True, text=True, timeout=600, env=ENV)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def test_kill_9_mid_epoch_then_resume_continues_bit_for_bit(tmp_path):
    """rsna without DataLoader workers; chest_xray and isic with them in their bundle tests."""
    data = tmp_path / "data"
    write_rsna_demo(data, n_patients=24, positive_rate=0.15, n_test_patients=0, image_shape=(256, 208), seed=2)
    run(command(data, tmp_path / "reference"))

    killed = tmp_path / "killed"
    kill_mid_epoch(command(data, killed), tmp_path / "killed.log", epoch=2, env=ENV)
    checkpoint = latest_checkpoint(killed / "models" / "fold0")
    assert checkpoint is not None and checkpoint.name != "last_checkpoint_epoch=3.pt"

    assert_resumed(run(command(data, killed, "--resume")), checkpoint, epochs=3)
    for name in ("last_checkpoint_epoch=3.pt", "model.pt"):
        reference = torch.load(tmp_path / "reference" / "models" / "fold0" / name, weights_only=True)
        resumed = torch.load(killed / "models" / "fold0" / name, weights_only=True)
        assert_same_state(reference, resumed, name)


KILLED_WHILE_SAVING = """
import os, signal, sys
import torch
from ignite.engine import Engine
from medbundle.handlers import AtomicCheckpointSaver

model = torch.nn.Linear(3, 1)
torch.nn.init.ones_(model.weight)
engine = Engine(lambda e, b: None)
saver = AtomicCheckpointSaver(sys.argv[1], {"model": model, "trainer": engine}, save_interval=1, n_saved=1, file_prefix="last")
saver.attach(engine)
real_save = torch.save


def save_then_die(obj, f, *args, **kwargs):
    if engine.state.epoch == 2:  # half of epoch 2's checkpoint reaches the disk, then SIGKILL
        real_save(obj, f, *args, **kwargs)
        f.flush()
        os.ftruncate(f.fileno(), f.tell() // 2)
        os.kill(os.getpid(), signal.SIGKILL)
    real_save(obj, f, *args, **kwargs)


torch.save = save_then_die
engine.run([0], max_epochs=2)
"""


def test_sigkill_during_a_checkpoint_write_leaves_the_previous_checkpoint_loadable(tmp_path):
    process = subprocess.run([sys.executable, "-c", KILLED_WHILE_SAVING, str(tmp_path)], check=False,
                             capture_output=True, text=True, timeout=300)
    assert process.returncode == -signal.SIGKILL, process.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == ["last_checkpoint_epoch=1.pt"]
    state = torch.load(tmp_path / "last_checkpoint_epoch=1.pt", weights_only=True)
    assert torch.equal(state["model"]["weight"], torch.ones(1, 3)) and state["trainer"]["iteration"] == 1
    restored = torch.nn.Linear(3, 1)
    CheckpointLoader(str(tmp_path / "last_checkpoint_epoch=1.pt"), {"model": restored})(Engine(lambda e, b: None))
    assert torch.equal(restored.weight, torch.ones(1, 3))
