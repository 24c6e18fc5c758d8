"""FlipTTAInferer: the mean of the network's outputs over the flipped views."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Events
from monai.engines import SupervisedEvaluator

from medbundle.inferers import FlipTTAInferer


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 5, 2))


def test_mean_of_the_four_flips():
    net, x = _net(), torch.rand(2, 3, 4, 5)
    views = [x, x.flip(3), x.flip(2), x.flip(2, 3)]
    expected = torch.stack([net(v) for v in views]).mean(0)
    assert torch.allclose(FlipTTAInferer()(x, net), expected, atol=1e-6)


def test_single_identity_view_is_the_plain_output():
    net, x = _net(), torch.rand(2, 3, 4, 5)
    assert torch.equal(FlipTTAInferer([[]])(x, net), net(x))


def test_flip_invariant_network_is_unchanged():
    pooled = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    x = torch.rand(2, 3, 4, 5)
    assert torch.allclose(FlipTTAInferer()(x, pooled), pooled(x), atol=1e-6)


def test_no_view_is_an_error():
    with pytest.raises(ValueError, match="at least one view"):
        FlipTTAInferer([])


def test_in_a_monai_evaluator():
    net = _net()
    data = [{"image": torch.rand(3, 4, 5), "label": torch.tensor(1)} for _ in range(4)]
    loader = torch.utils.data.DataLoader(data, batch_size=2)
    evaluator = SupervisedEvaluator(torch.device("cpu"), loader, net, inferer=FlipTTAInferer([[], [1]]))
    outputs = []
    evaluator.add_event_handler(Events.ITERATION_COMPLETED, lambda e: outputs.append(e.state.output[0]["pred"]))
    evaluator.run()
    x = data[0]["image"][None]
    assert torch.allclose(outputs[0], (net(x) + net(x.flip(3)))[0] / 2, atol=1e-6)
