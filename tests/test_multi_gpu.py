"""Distributed validation on 2 CPU processes (gloo): gathered metrics, early stopping and the multi-GPU overlays.

Every validation split here has an odd number of images, so `DistributedSampler(even_divisible=False)` gives
the ranks different numbers of images and iterations. The scores must equal those of one process on the same
split, grouped scores (per breast) included, every rank must stop training at the same epoch, and only rank 0
writes checkpoints, logs and TensorBoard events.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.distributed as dist
from ignite.engine import Engine, Events
from monai.bundle import ConfigParser
from monai.data import DataLoader, DistributedSampler
from monai.engines import SupervisedEvaluator
from monai.handlers import ValidationHandler
from monai.transforms import Activationsd
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tiny_tasks import TASKS

from medbundle.handlers import (
    ClassificationMetric,
    CollectingHandler,
    EarlyStopAfterHandler,
    stopping_fn,
)

REPO = Path(__file__).resolve().parents[1]

# ---- handlers: 9 images of 4 breasts, 5 on rank 0 (3 batches of 2) and 4 on rank 1 (2 batches) ----------------
BREASTS = ["b0", "b0", "b1", "b1", "b1", "b2", "b2", "b3", "b3"]
LABELS = [0, 0, 1, 1, 1, 0, 0, 1, 0]
MAX_EPOCHS = 6


class TableNetwork(torch.nn.Module):
    """Logit of image ``i`` after trainer epoch ``e``: ``table[e - 1, i]``; each image holds its index."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = table
        self.epoch = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.table[self.epoch - 1, x.flatten(1)[:, 0].long()].unsqueeze(1)


class SeenImages(CollectingHandler):
    """Records, per epoch, the image ids of the rows a collecting handler is given."""

    def __init__(self) -> None:
        super().__init__(id_keys=("image_id",))
        self.epochs: list[list[str]] = []

    def epoch_completed(self, engine: Engine, frame: pd.DataFrame) -> None:
        self.epochs.append(sorted(frame["image_id"]))


def validate_every_epoch() -> dict:
    """Validate a new table of logits after each (empty) training epoch, stopping early on per-breast AUROC."""
    table = torch.tensor(np.random.default_rng(3).normal(size=(MAX_EPOCHS, len(BREASTS))), dtype=torch.float32)
    data = [
        {"image": torch.full((1, 1, 1), float(i)), "label": torch.tensor([float(y)]), "breast_id": b, "image_id": str(i)}
        for i, (b, y) in enumerate(zip(BREASTS, LABELS))
    ]
    sampler = DistributedSampler(data, even_divisible=False, shuffle=False) if dist.is_initialized() else None
    network, seen, history = TableNetwork(table), SeenImages(), []
    trainer = Engine(lambda engine, batch: None)
    early_stop = EarlyStopAfterHandler(patience=1, score_function=stopping_fn("val_auroc"), metric_name="val_auroc")
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=DataLoader(data, batch_size=2, sampler=sampler),
        network=network,
        postprocessing=Activationsd(keys="pred", sigmoid=True),
        key_val_metric={"val_auroc": ClassificationMetric("auroc", group_key="breast_id")},
        additional_metrics={
            "val_pf1_best": ClassificationMetric("pfbeta_best", group_key="breast_id"),
            "val_pf1_prob": ClassificationMetric("pfbeta", group_key="breast_id"),
        },
        val_handlers=[seen, early_stop],
    )
    evaluator.add_event_handler(Events.EPOCH_COMPLETED, lambda e: history.append(dict(e.state.metrics)))
    early_stop.set_trainer(trainer)
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: setattr(network, "epoch", e.state.epoch))
    ValidationHandler(interval=1, validator=evaluator).attach(trainer)
    trainer.run(range(1), max_epochs=MAX_EPOCHS)
    return {
        "epochs": trainer.state.epoch,
        "history": history,
        "seen": seen.epochs,
        "best": [evaluator.state.best_metric, evaluator.state.best_metric_epoch],
    }


def run_rank(rank: int, world_size: int, init_file: str, out_dir: str) -> None:
    os.environ["LOCAL_RANK"] = str(rank)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        result = validate_every_epoch()
    finally:
        dist.destroy_process_group()
    Path(out_dir, f"rank{rank}.json").write_text(json.dumps(result))


def test_ranks_gather_every_image_once_and_stop_at_the_same_epoch(tmp_path):
    expected = validate_every_epoch()
    assert expected["epochs"] < MAX_EPOCHS, "choose a table whose per-breast AUROC stops improving"
    torch.multiprocessing.spawn(run_rank, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(2)]
    assert ranks[0] == ranks[1], "the ranks saw different metrics or stopped at different epochs"
    result = ranks[0]
    assert result["seen"] == [sorted(str(i) for i in range(len(BREASTS)))] * expected["epochs"]
    assert result["epochs"] == expected["epochs"]
    assert result["best"] == pytest.approx(expected["best"])
    assert len(result["history"]) == len(expected["history"])
    for got, want in zip(result["history"], expected["history"]):
        assert got == pytest.approx(want, rel=1e-12)


# ---- bundles: torchrun with the multi-GPU overlay, then one process evaluates the saved weights -------------------
def config(task: str, files: list[str], overrides: dict) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config([str(REPO / "bundles" / task / "configs" / name) for name in files])
    parser.update(overrides)
    return parser


def torchrun_training(task: str, overrides: dict) -> str:
    """The multi-GPU training command of `task` on 2 CPU processes; returns its log."""
    configs = REPO / "bundles" / task / "configs"
    files = repr([str(configs / name) for name in ("train.yaml", "multi_gpu_train.yaml")])
    flags = [arg for key, value in overrides.items() for arg in (f"--{key}", str(value))]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "monai.bundle", "run", "training", "--config_file", files,
               "--logging_file", str(configs / "logging.conf"), *flags]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-6000:]
    return log


def tensorboard_scalars(log_dir: Path) -> dict[str, float]:
    events = list(log_dir.glob("events.out.tfevents.*"))
    assert len(events) == 1, f"expected one TensorBoard events file (rank 0), found {events}"
    accumulator = EventAccumulator(str(events[0]))
    accumulator.Reload()
    return {tag: accumulator.Scalars(tag)[-1].value for tag in accumulator.Tags()["scalars"]}


# isic and classify share the binary path that rsna covers in the default suite; they run with -m slow
# rsna in the default suite; chest_xray's two processes run in test_chest_xray_overlay_runs_both_stages_with_two_processes
@pytest.mark.parametrize("task", [pytest.param(t, marks=pytest.mark.slow) if t != "rsna" else t for t in TASKS])
def test_two_processes_write_one_run_whose_metrics_equal_one_process(task, tmp_path):
    spec = TASKS[task]
    spec.write_demo(tmp_path / "data", **spec.demo_args)
    root = tmp_path / "bundle"
    overrides = {"dataset_dir": str(tmp_path / "data"), "bundle_root": str(root), **spec.overrides}
    n_val = len(config(task, ["train.yaml"], overrides).get_parsed_content("validate#datalist"))
    assert n_val % 2 == 1, f"{task}: choose demo sizes with an odd number of validation images, got {n_val}"

    log = torchrun_training(task, overrides)
    ckpt_dir = root / "models" / "fold0"
    assert sorted(p.name for p in ckpt_dir.iterdir()) == ["last_checkpoint_epoch=1.pt", "model.pt"]
    best = torch.load(ckpt_dir / "model.pt", weights_only=True)
    last = torch.load(ckpt_dir / "last_checkpoint_epoch=1.pt", weights_only=True)
    for state in (best, last):
        assert not any(k.startswith("module.") for k in state["model"]), "DDP wrapper leaked into the checkpoint"
    assert all(torch.equal(best["model"][k], last["model"][k]) for k in best["model"])
    for line in (r"Epoch\[1\] Metrics -- ", r"SupervisedTrainer - INFO - Epoch\[1\] Complete", "training finished"):
        assert len(re.findall(line, log)) == 1, f"{line!r} logged {len(re.findall(line, log))} times, not once"
    logged = tensorboard_scalars(root / "outputs" / "fold0" / "tensorboard")
    logged[spec.metrics[0]] = last["validation"]["best_metric"]  # the key metric as computed, not as float32

    single = config(task, ["train.yaml", "evaluate.yaml"], {**overrides, "output_dir": str(tmp_path / "single"),
                                                                   "report": False})  # fmt: skip
    evaluator = single.get_parsed_content("validate#evaluator")
    evaluator.run()
    assert len(evaluator.data_loader.dataset) == n_val
    for name in spec.metrics:
        assert logged[name] == pytest.approx(evaluator.state.metrics[name], rel=1e-6, abs=1e-6), name


def test_chest_xray_overlay_runs_both_stages_with_two_processes(tmp_path):
    """Stage 1 freezes the backbone through the optimizer, as DistributedDataParallel needs; stage 2 trains it."""
    spec = TASKS["chest_xray"]
    spec.write_demo(tmp_path / "data", **spec.demo_args)
    overrides = {"dataset_dir": str(tmp_path / "data"), "bundle_root": str(tmp_path / "bundle"),
                 **spec.overrides, "epochs": 2, "stage2": True}
    log = torchrun_training("chest_xray", overrides)
    state = torch.load(tmp_path / "bundle" / "models" / "fold0" / "last_checkpoint_epoch=2.pt", weights_only=True)
    assert state["finetuning"]["stage"] == 2
    assert not any(k.startswith("module.") for k in state["model"]), "DDP wrapper leaked into the checkpoint"
    assert len(re.findall(r"Epoch\[\d\] Metrics -- ", log)) == 2
