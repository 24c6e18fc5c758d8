"""Parity of exported models with the eager network: the largest absolute logit difference per format and batch.

An exported model is only worth shipping if it computes what the trained network computes. The check runs the
eager network and every exported model (TorchScript, onnxruntime) on the same batches: uniform random images,
and real images of the task's format preprocessed by the bundle's own chain, at batch sizes 1 and 4 (an export
traced at one batch size must still be right at another, and batched kernels differ from single-image ones).

The default tolerance, 1e-4 on logits, sits about ten times above the float32 noise of reordered arithmetic
(ONNX Runtime folds BatchNorm into convolutions and fuses operators; different convolution algorithms sum in
another order: ~1e-6 to 1e-5 on logits of order 1-10), and far below what could change a decision: the
sigmoid's slope is at most 1/4, so a probability moves by at most 2.5e-5, two orders of magnitude below the
resolution of validation-chosen thresholds. A wrong export (other weights, baked batch size, missing
normalisation) is off by far more.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.utils import convert_to_tensor
from torch import nn

__all__ = ["BATCH_SIZES", "DEFAULT_TOLERANCE", "PARITY_FILE", "ParityError", "check_parity", "image_batch", "runners"]

DEFAULT_TOLERANCE = 1e-4
BATCH_SIZES = (1, 4)
PARITY_FILE = "parity.json"

Runner = Callable[[torch.Tensor], np.ndarray]


class ParityError(RuntimeError):
    """An exported model's logits differ from the eager network's by more than the tolerance."""


def runners(files: Mapping[str, str | Path], threads: int | None = None) -> dict[str, Runner]:
    """Callables ``(N, C, H, W) tensor -> logits array`` for exported model files.

    Args:
        files: format (``"ts"`` or ``"onnx"``) -> file.
        threads: onnxruntime intra-op threads; default ``torch.get_num_threads()``, so both run alike.
    """
    made: dict[str, Runner] = {}
    for name, file in files.items():
        if name == "ts":
            module = torch.jit.load(str(file), map_location="cpu").eval()

            def run_ts(x: torch.Tensor, module: torch.jit.ScriptModule = module) -> np.ndarray:
                with torch.no_grad():
                    return module(x).numpy()

            made[name] = run_ts
        elif name == "onnx":
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads or torch.get_num_threads()
            session = onnxruntime.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
            input_name = session.get_inputs()[0].name
            made[name] = lambda x, session=session, input_name=input_name: session.run(None, {input_name: x.numpy()})[0]
        else:
            raise ValueError(f"unknown export format {name!r}; expected 'ts' or 'onnx'.")
    return made


def image_batch(preprocessing: Callable[[dict], dict], images: Sequence[str | Path], batch_size: int) -> torch.Tensor:
    """The first `batch_size` of `images` (repeated when fewer) through the bundle's preprocessing, stacked.

    Args:
        preprocessing: the bundle's parsed dictionary chain, taking ``{"image": path}``.
        images: image paths in the task's format (for HDF5 images ``"<file>::<key>"``).
        batch_size: images in the batch.
    """
    if not images:
        raise ValueError("no parity images given.")
    chosen = [images[i % len(images)] for i in range(batch_size)]
    return torch.stack(
        [convert_to_tensor(preprocessing({"image": str(path)})["image"], dtype=torch.float32, track_meta=False) for path in chosen]
    )


def check_parity(
    network: nn.Module,
    exported: Mapping[str, Runner],
    batches: Mapping[str, Mapping[int, torch.Tensor]],
    tolerance: float = DEFAULT_TOLERANCE,
    out: str | Path | None = None,
) -> dict[str, Any]:
    """Compare exported models with the eager network; write and return the maxima, raise when above tolerance.

    Args:
        network: the eager network, in eval mode on the CPU.
        exported: format -> runner (see :func:`runners`).
        batches: input kind (``"random"``, ``"images"``) -> batch size -> ``(N, C, H, W)`` batch.
        tolerance: largest allowed absolute logit difference.
        out: folder for ``parity.json``; written before raising, so a failed export can be inspected.

    Returns:
        ``{"tolerance", "passed", "max_abs_diff": {format: {kind: {str(batch_size): difference}}}}``.

    Raises:
        ParityError: a difference exceeds `tolerance` (or is not finite); the message lists which.
    """
    network.eval()
    differences: dict[str, dict[str, dict[str, float]]] = {name: {} for name in exported}
    for kind, by_size in batches.items():
        for batch_size, batch in by_size.items():
            with torch.no_grad():
                expected = network(batch).numpy()
            for name, run in exported.items():
                actual = run(batch)
                if actual.shape != expected.shape:
                    raise ParityError(f"{name} returned logits of shape {actual.shape}, eager {expected.shape} ({kind}, batch {batch_size}).")
                difference = float(np.max(np.abs(actual.astype(np.float64) - expected)))
                differences[name].setdefault(kind, {})[str(batch_size)] = difference
    failed = [
        f"{name} {kind} batch {size}: {value:.3g}"
        for name, kinds in differences.items()
        for kind, sizes in kinds.items()
        for size, value in sizes.items()
        if not value <= tolerance
    ]
    report = {"tolerance": tolerance, "passed": not failed, "max_abs_diff": differences}
    if out is not None:
        Path(out, PARITY_FILE).write_text(json.dumps(report, indent=2) + "\n")
    if failed:
        raise ParityError(
            f"exported logits differ from the eager network's by more than {tolerance:g}: {'; '.join(failed)}. "
            "Do not deploy these files; check the export warnings (e.g. a traced branch that depends on the input)."
        )
    return report
