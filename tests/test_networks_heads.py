"""Tests of the classification heads and their name registry."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import pytest
import torch

from medbundle.networks import HEADS, AttentionPoolHead, LinearHead, MLPHead, create_head

B, C = 3, 16


@pytest.mark.parametrize("num_classes", [1, 5])
@pytest.mark.parametrize("name", ["linear", "mlp"])
def test_pooled_heads_output_shape(name: str, num_classes: int) -> None:
    head = create_head(name, C, num_classes, drop_rate=0.2)
    assert head.pooled_input
    assert head(torch.randn(B, C)).shape == (B, num_classes)


@pytest.mark.parametrize("num_classes", [1, 5])
@pytest.mark.parametrize("shape", [(B, C, 4, 5), (B, 7, C)], ids=["feature_map", "tokens"])
def test_attention_head_output_shape(shape: tuple[int, ...], num_classes: int) -> None:
    head = create_head("attention", C, num_classes, drop_rate=0.2)
    assert not head.pooled_input
    assert head(torch.randn(shape)).shape == (B, num_classes)


def test_create_head_builds_registered_classes_with_hidden_width() -> None:
    assert isinstance(create_head("linear", C, 2), LinearHead)
    mlp = create_head("mlp", C, 2, hidden=32)
    attention = create_head("attention", C, 2, hidden=8)
    assert isinstance(mlp, MLPHead) and mlp.fc1.out_features == 32
    assert isinstance(attention, AttentionPoolHead) and attention.attn[0].out_features == 8
    assert set(HEADS) == {"linear", "mlp", "attention"}


def test_create_head_unknown_name_lists_available_heads() -> None:
    with pytest.raises(ValueError, match="unknown head 'gem'.*attention"):
        create_head("gem", C, 1)


def test_mlp_head_layer_order() -> None:
    head = MLPHead(C, 2, drop_rate=0.0, hidden=8).eval()
    x = torch.randn(B, C)
    expected = head.fc2(torch.relu(head.fc1(torch.nn.functional.layer_norm(x, (C,)))))
    torch.testing.assert_close(head(x), expected)


def test_attention_pool_uniform_scores_give_mean_pooling() -> None:
    head = AttentionPoolHead(C, 2, hidden=4).eval()
    torch.nn.init.zeros_(head.attn[2].weight)
    x = torch.randn(B, C, 3, 4)
    pooled, weights = head.attention_pool(x)
    torch.testing.assert_close(pooled, x.mean(dim=(2, 3)))
    torch.testing.assert_close(weights, torch.full((B, 12), 1 / 12))


def test_attention_pool_feature_map_matches_tokens_and_ignores_order() -> None:
    head = AttentionPoolHead(C, 2, hidden=4).eval()
    x = torch.randn(B, C, 3, 4)
    tokens = x.flatten(2).transpose(1, 2)
    pooled, weights = head.attention_pool(x)
    torch.testing.assert_close(head.attention_pool(tokens)[0], pooled)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(B))
    permuted = tokens[:, torch.randperm(tokens.shape[1])]
    torch.testing.assert_close(head.attention_pool(permuted)[0], pooled)


def test_attention_pool_concentrates_on_high_scoring_position() -> None:
    head = AttentionPoolHead(C, 1, hidden=1).eval()
    with torch.no_grad():
        head.attn[0].weight.zero_()
        head.attn[0].weight[0, 0] = 1.0  # score follows channel 0
        head.attn[0].bias.zero_()
        head.attn[2].weight.fill_(50.0)
    tokens = torch.zeros(1, 6, C)
    tokens[0, 4, 0] = 1.0
    _, weights = head.attention_pool(tokens)
    assert weights[0].argmax() == 4 and weights[0, 4] > 0.99


@pytest.mark.parametrize("name, shape", [("linear", (B, C)), ("mlp", (B, C)), ("attention", (B, C, 2, 2))])
def test_head_gradients_reach_every_parameter(name: str, shape: tuple[int, ...]) -> None:
    head = create_head(name, C, 3)
    x = torch.randn(shape, requires_grad=True)
    head(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())


def test_mlp_head_hidden_dropout_defaults_to_drop_rate_and_can_differ() -> None:
    assert MLPHead(C, 2, drop_rate=0.3).drop2.p == 0.3
    head = create_head("mlp", C, 5, drop_rate=0.3, hidden=128, hidden_drop_rate=0.25)
    assert (head.drop1.p, head.drop2.p) == (0.3, 0.25)
    assert isinstance(create_head("linear", C, 2, drop_rate=0.3, hidden_drop_rate=0.25), LinearHead)
    assert isinstance(create_head("attention", C, 2, hidden_drop_rate=0.25), AttentionPoolHead)
