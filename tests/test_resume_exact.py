"""Crash safety: a run killed with SIGKILL mid-epoch resumes to exactly the weights of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from ignite.engine import Engine
from monai.handlers import CheckpointLoader

from medbundle.demo import write_rsna_demo

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "bundles" / "rsna" / "configs"
TINY = ["--backbone", "resnet10t", "--head", "linear", "--image_size", "[64,32]", "--num_workers", "0",
        "--pretrained", "False", "--batch_size", "8", "--pos_per_batch", "2", "--n_folds", "3",
        "--learning_rate", "0.001", "--epochs", "4", "--min_epochs", "4", "--progress", "False"]


def command(data: Path, root: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", str(CONFIGS / "train.yaml"),
            "--dataset_dir", str(data), "--bundle_root", str(root), *TINY, *extra]


def run(cmd: list[str]) -> None:
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600, env=ENV)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def test_kill_9_mid_epoch_then_resume_continues_bit_for_bit(tmp_path):
    data = tmp_path / "data"
    write_rsna_demo(data, n_patients=24, positive_rate=0.15, n_test_patients=0, image_shape=(256, 208), seed=2)
    run(command(data, tmp_path / "reference"))

    killed = tmp_path / "killed"
    first = killed / "models" / "fold0" / "last_checkpoint_epoch=1.pt"
    process = subprocess.Popen(command(data, killed), cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not first.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # into epoch 2
    assert process.poll() is None, "the run ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (killed / "models" / "fold0" / "last_checkpoint_epoch=4.pt").exists()

    run(command(data, killed, "--resume"))
    reference = torch.load(tmp_path / "reference" / "models" / "fold0" / "last_checkpoint_epoch=4.pt", weights_only=True)
    resumed = torch.load(killed / "models" / "fold0" / "last_checkpoint_epoch=4.pt", weights_only=True)
    assert reference["model"].keys() == resumed["model"].keys()
    different = [k for k in reference["model"] if not torch.equal(reference["model"][k], resumed["model"][k])]
    assert not different, f"resumed weights differ from the uninterrupted run in {different[:5]}"
    assert reference["validation"] == resumed["validation"] and reference["thresholds"] == resumed["thresholds"]
    assert torch.equal(reference["rng"]["torch"], resumed["rng"]["torch"])


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
    process = subprocess.run([sys.executable, "-c", KILLED_WHILE_SAVING, str(tmp_path)], capture_output=True, text=True,
                             timeout=300)
    assert process.returncode == -signal.SIGKILL, process.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == ["last_checkpoint_epoch=1.pt"]
    state = torch.load(tmp_path / "last_checkpoint_epoch=1.pt", weights_only=True)
    assert torch.equal(state["model"]["weight"], torch.ones(1, 3)) and state["trainer"]["iteration"] == 1
    restored = torch.nn.Linear(3, 1)
    CheckpointLoader(str(tmp_path / "last_checkpoint_epoch=1.pt"), {"model": restored})(Engine(lambda e, b: None))
    assert torch.equal(restored.weight, torch.ones(1, 3))
