"""The bundles' opt-in speed switches together in a real MONAI SupervisedTrainer on a tiny network:
channels_last (medbundle.networks.channels_last), CPU bfloat16 (medbundle.inferers.AutocastInferer) and
torch.compile (SupervisedTrainer's own ``compile``)."""

from __future__ import annotations

import pytest
import torch
from monai.engines import SupervisedTrainer

from medbundle.inferers import AutocastInferer
from medbundle.networks import channels_last


def _tiny_network() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 1),
    )


def _batches(n: int = 3) -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    return [{"image": torch.rand(4, 3, 16, 16, generator=generator),
             "label": torch.randint(0, 2, (4, 1), generator=generator).float()} for _ in range(n)]


def _train(network: torch.nn.Module, **kwargs) -> SupervisedTrainer:
    trainer = SupervisedTrainer(
        device="cpu", max_epochs=1, train_data_loader=_batches(), network=network,
        optimizer=torch.optim.SGD(network.parameters(), lr=0.1), loss_function=torch.nn.BCEWithLogitsLoss(), **kwargs,
    )
    trainer.run()
    return trainer


@pytest.mark.parametrize("compile_network", [False, True], ids=["eager", "compiled"])
def test_channels_last_and_bfloat16_train_with_finite_loss(compile_network):
    network = channels_last(_tiny_network())
    before = [p.detach().clone() for p in network.parameters()]
    trainer = _train(network, inferer=AutocastInferer(device_type="cpu"), compile=compile_network)
    output = trainer.state.output[0]  # decollated: one dict per image
    assert torch.isfinite(torch.as_tensor(output["loss"]))
    assert output["pred"].dtype == torch.float32
    assert all(not torch.equal(a, b) for a, b in zip(network.parameters(), before))
    assert isinstance(trainer.network, torch._dynamo.eval_frame.OptimizedModule) == compile_network


def test_channels_last_leaves_the_training_trajectory_unchanged():
    plain = _train(_tiny_network()).network
    converted = _train(channels_last(_tiny_network())).network
    for a, b in zip(converted.parameters(), plain.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
