"""Tests of AutocastInferer: bfloat16 really runs on the CPU, outputs return as float32, training steps stay finite."""

from __future__ import annotations

import torch
from monai.inferers import SimpleInferer

from medbundle.inferers import AutocastInferer, FlipTTAInferer


class _Recorder(torch.nn.Module):
    """A convolution and a linear layer that record the dtype their inputs reach them in."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3)
        self.linear = torch.nn.Linear(4, 1)
        self.dtypes: list[torch.dtype] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        self.dtypes.append(y.dtype)
        return self.linear(y.mean((2, 3)))


def test_bfloat16_is_active_inside_and_the_output_is_float32():
    network = _Recorder()
    output = AutocastInferer(device_type="cpu")(torch.rand(2, 1, 8, 8), network)
    assert network.dtypes == [torch.bfloat16]
    assert output.dtype == torch.float32


def test_disabled_runs_in_float32_and_matches_the_wrapped_inferer():
    network = _Recorder()
    images = torch.rand(2, 1, 8, 8)
    output = AutocastInferer(enabled=False)(images, network)
    assert network.dtypes == [torch.float32]
    torch.testing.assert_close(output, SimpleInferer()(images, network))


def test_wraps_another_inferer_within_bfloat16_precision():
    network = _Recorder()
    images = torch.rand(2, 1, 8, 8)
    tta = FlipTTAInferer()
    torch.testing.assert_close(AutocastInferer(tta)(images, network), tta(images, network), rtol=0.05, atol=0.02)


def test_a_training_step_under_autocast_gives_a_finite_loss_and_float32_gradients():
    torch.manual_seed(0)
    network = _Recorder()
    loss = torch.nn.functional.binary_cross_entropy_with_logits(
        AutocastInferer()(torch.rand(4, 1, 8, 8), network), torch.tensor([[0.0], [1.0], [1.0], [0.0]])
    )
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all() for p in network.parameters())
