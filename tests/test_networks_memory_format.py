"""Tests of channels_last: weights and inputs in NHWC, same outputs and gradients, checkpoints that load anywhere."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import copy

import torch

from medbundle.networks import TimmClassifier, channels_last


def _network() -> TimmClassifier:
    torch.manual_seed(0)
    return TimmClassifier("resnet10t", num_classes=2, in_chans=3, pretrained=False, head="linear").eval()


def _images() -> torch.Tensor:
    return torch.rand(2, 3, 64, 48, generator=torch.Generator().manual_seed(1))


def test_weights_and_the_first_convolution_input_are_channels_last():
    network = channels_last(_network())
    convolution = next(m for m in network.modules() if isinstance(m, torch.nn.Conv2d))
    assert convolution.weight.is_contiguous(memory_format=torch.channels_last)
    assert not convolution.weight.is_contiguous()
    seen = []
    convolution.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    network(_images())  # an NCHW batch, as a DataLoader collates it
    assert seen[0].is_contiguous(memory_format=torch.channels_last)


def test_outputs_and_gradients_match_the_default_layout():
    reference = _network()
    converted = channels_last(copy.deepcopy(reference))
    images = _images()
    expected, actual = reference(images), converted(images)
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)
    expected.square().sum().backward()
    actual.square().sum().backward()
    for (name, a), b in zip(converted.named_parameters(), reference.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-3, atol=1e-5, msg=name)


def test_checkpoint_loads_into_a_network_in_the_default_layout(tmp_path):
    converted = channels_last(_network())
    torch.save(converted.state_dict(), tmp_path / "model.pt")
    plain = TimmClassifier("resnet10t", num_classes=2, in_chans=3, pretrained=False, head="linear").eval()
    plain.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    torch.testing.assert_close(plain(_images()), converted(_images()), rtol=1e-4, atol=1e-5)


def test_disabled_leaves_the_network_untouched():
    network = _network()
    assert channels_last(network, enabled=False) is network
    assert all(p.is_contiguous() for p in network.parameters())
    assert not network._forward_pre_hooks
