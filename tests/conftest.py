"""Shared test fixtures: offline timm, the shared real DICOM folder, a tiny real MONAI evaluator, a fake TensorBoard writer,
the benchmark command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_DICOM = REPO.parent / "shared" / "data" / "dicom"


class LogitOf(torch.nn.Module):
    """A 'network' whose logit is the image mean: lets a test choose each prediction exactly."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1).mean(1, keepdim=True)


def make_evaluator(
    probabilities: Sequence[float],
    labels: Sequence[float] | None,
    breast_ids: Sequence[str],
    key_metric: dict | None = None,
    additional_metrics: dict | None = None,
    handlers: Sequence | None = None,
    batch_size: int = 3,
):
    """A real MONAI SupervisedEvaluator whose sigmoid predictions equal `probabilities`."""
    from monai.data import DataLoader
    from monai.engines import SupervisedEvaluator
    from monai.transforms import Activationsd

    logits = torch.logit(torch.tensor(probabilities, dtype=torch.float64).clamp(1e-6, 1 - 1e-6)).float()
    data = []
    for i, (logit, breast) in enumerate(zip(logits, breast_ids)):
        item = {"image": torch.full((1, 2, 2), float(logit)), "breast_id": breast, "image_id": str(i)}
        if labels is not None:
            item["label"] = torch.tensor([float(labels[i])])
        data.append(item)
    return SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=DataLoader(data, batch_size=batch_size),
        network=LogitOf(),
        postprocessing=Activationsd(keys="pred", sigmoid=True),
        key_val_metric=key_metric,
        additional_metrics=additional_metrics,
        val_handlers=list(handlers or []),
    )


class FakeWriter:
    """A TensorBoard ``SummaryWriter`` stand-in that keeps the images added to it by tag."""

    def __init__(self):
        self.images = {}

    def add_image(self, tag, image, step):
        self.images[tag] = (image, step)

    def flush(self):
        pass


@pytest.fixture
def shared_dicom_dir() -> Path:
    if not SHARED_DICOM.is_dir():
        pytest.skip(f"{SHARED_DICOM} not present")
    return SHARED_DICOM


@pytest.fixture
def run_benchmark(tmp_path):
    """Run ``scripts/benchmark.py <args>`` as the README does; (its stdout, the JSON it wrote as a dict)."""

    def run(*args: str) -> tuple[str, dict]:
        out = tmp_path / f"benchmark_{args[0]}.json"
        command = [sys.executable, str(REPO / "scripts" / "benchmark.py"), *args, "--out", str(out)]
        result = subprocess.run(command, check=False, cwd=REPO, capture_output=True, text=True, timeout=900,
                                env={**os.environ, "HF_HUB_OFFLINE": "1", "PAGER": "cat"})
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result.stdout, json.loads(out.read_text())

    return run
