"""channels_last memory format: a convolutional network's weights and inputs stored pixel by pixel (NHWC).

oneDNN on the CPU and cuDNN on tensor-core GPUs run convolutions natively on NHWC data; on PyTorch's default
NCHW layout they reorder every activation first. `scripts/benchmark.py trainer_overhead` measures the gain
on the bundles' trainers.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["channels_last"]


def _inputs_channels_last(module: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(
        a.contiguous(memory_format=torch.channels_last) if isinstance(a, torch.Tensor) and a.dim() == 4 else a
        for a in args
    )


def channels_last(network: torch.nn.Module, enabled: bool = True) -> torch.nn.Module:
    """Convert `network`'s 4-D weights to channels_last, and every 4-D tensor it is called with, in place.

    Tensor shapes do not change, only their strides: the outputs are the same up to float rounding, and the
    state dict (a checkpoint) loads into a network in the default layout, as evaluation and export build it.
    A bundle wires it behind a flag::

        network: "$medbundle.networks.channels_last(@network_def, @channels_last).to(@device)"

    Args:
        network: the model, converted in place (as by ``Module.to``).
        enabled: False returns `network` untouched.

    Returns:
        `network`.
    """
    if enabled:
        network.to(memory_format=torch.channels_last)
        network.register_forward_pre_hook(_inputs_channels_last)
    return network
