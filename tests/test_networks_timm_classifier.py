"""Tests of TimmClassifier: shapes, in-model normalisation, offline pretrained weights, freezing, optimizer groups."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import warnings
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file
from torch import nn

from medbundle.networks import AttentionPoolHead, LinearHead, MLPHead, TimmClassifier

SIZE = 64
# timm's tiny test ViT (64-dim tokens), built for 64x64 images
VIT = {"img_size": SIZE}
# a tiny Swin, whose forward_features returns a channels-last (B, H, W, C) map
TINY_SWIN = dict(img_size=SIZE, window_size=4, embed_dim=16, depths=(1, 1), num_heads=(1, 2))


def _images(in_chans: int, batch: int = 2) -> torch.Tensor:
    return torch.rand(batch, in_chans, SIZE, SIZE, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def resnet_state_dict_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    """A timm-format resnet10t checkpoint with its 1000-class classifier, as downloaded weights would be."""
    torch.manual_seed(1)
    state_dict = timm.create_model("resnet10t", num_classes=1000).state_dict()
    path = tmp_path_factory.mktemp("weights") / "resnet10t.pth"
    torch.save(state_dict, path)
    return path, state_dict


@pytest.mark.parametrize(
    "model_name, kwargs, head, in_chans, num_classes",
    [
        ("resnet10t", {}, "linear", 1, 1),
        ("resnet10t", {}, "mlp", 3, 5),
        ("resnet10t", {}, "attention", 1, 5),
        ("resnet10t", {}, "attention", 3, 1),
        ("test_vit", VIT, "linear", 3, 5),
        ("test_vit", VIT, "mlp", 1, 1),
        ("test_vit", VIT, "attention", 1, 5),
        ("test_vit", VIT, "attention", 3, 1),
    ],
)
def test_forward_shape(model_name: str, kwargs: dict, head: str, in_chans: int, num_classes: int) -> None:
    net = TimmClassifier(model_name, num_classes=num_classes, in_chans=in_chans, head=head, drop_rate=0.1, **kwargs)
    assert net(_images(in_chans)).shape == (2, num_classes)


def test_attention_head_on_channels_last_features() -> None:
    net = TimmClassifier("swin_tiny_patch4_window7_224", num_classes=5, in_chans=1, head="attention", **TINY_SWIN)
    assert net.forward_features(_images(1)).shape == (2, (SIZE // 8) ** 2, net.backbone.num_features)
    assert net(_images(1)).shape == (2, 5)


def test_efficientnet_binary_grayscale() -> None:
    net = TimmClassifier("efficientnet_b0", num_classes=1, in_chans=1, head="mlp").eval()
    assert net(_images(1)).shape == (2, 1)
    assert net.head.norm.normalized_shape == (net.backbone.num_features,)


def test_head_input_matches_head_kind() -> None:
    pooled = TimmClassifier("resnet10t", head="linear")
    attention = TimmClassifier("resnet10t", head="attention")
    tokens = TimmClassifier("test_vit", head="attention", **VIT)
    assert isinstance(pooled.head, LinearHead)
    assert isinstance(attention.head, AttentionPoolHead)
    assert isinstance(TimmClassifier("resnet10t", head="mlp").head, MLPHead)
    assert pooled.forward_features(_images(3)).shape == (2, 512)
    assert attention.forward_features(_images(3)).shape == (2, 512, 2, 2)
    assert tokens.forward_features(_images(3)).shape == (2, 1 + (SIZE // 16) ** 2, 64)  # class token + patches


def test_unknown_head_raises() -> None:
    with pytest.raises(ValueError, match="unknown head 'gem'"):
        TimmClassifier("resnet10t", head="gem")


@pytest.mark.parametrize("model_name, kwargs", [("resnet10t", {}), ("test_vit", VIT)])
def test_normalisation_uses_pretrained_statistics(model_name: str, kwargs: dict) -> None:
    net = TimmClassifier(model_name, num_classes=2, **kwargs).eval()
    pretrained_cfg = net.backbone.pretrained_cfg
    assert net.data_config["mean"] == pytest.approx(pretrained_cfg["mean"])
    assert net.data_config["std"] == pytest.approx(pretrained_cfg["std"])
    mean = torch.tensor(pretrained_cfg["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(pretrained_cfg["std"]).view(1, 3, 1, 1)
    x = _images(3)
    with torch.no_grad():
        torch.testing.assert_close(net(x), net.head(net.backbone((x - mean) / std)))
    assert "input_mean" not in net.state_dict() and "input_std" not in net.state_dict()


def test_grayscale_normalisation_uses_channel_mean_statistics() -> None:
    net = TimmClassifier("resnet10t", in_chans=1).eval()
    mean = sum(net.backbone.pretrained_cfg["mean"]) / 3
    std = sum(net.backbone.pretrained_cfg["std"]) / 3
    assert net.data_config["input_size"][0] == 1
    assert net.data_config["mean"] == pytest.approx((mean,)) and net.data_config["std"] == pytest.approx((std,))
    x = _images(1)
    with torch.no_grad():
        torch.testing.assert_close(net(x), net.head(net.backbone((x - mean) / std)))


def test_normalize_false_passes_input_unchanged() -> None:
    net = TimmClassifier("resnet10t", normalize=False).eval()
    x = _images(3)
    with torch.no_grad():
        torch.testing.assert_close(net(x), net.head(net.backbone(x)))


def test_pretrained_file_loads_backbone_and_drops_classifier(resnet_state_dict_file) -> None:
    path, state_dict = resnet_state_dict_file
    net = TimmClassifier("resnet10t", num_classes=1, pretrained_file=str(path))
    backbone = net.backbone.state_dict()
    torch.testing.assert_close(backbone["conv1.0.weight"], state_dict["conv1.0.weight"])
    torch.testing.assert_close(backbone["layer4.0.conv2.weight"], state_dict["layer4.0.conv2.weight"])
    torch.testing.assert_close(backbone["bn1.running_mean"], state_dict["bn1.running_mean"])
    assert "fc.weight" not in backbone
    assert net.head.fc.weight.shape == (1, 512)


def test_pretrained_file_is_read_once_and_not_kept(resnet_state_dict_file, caplog) -> None:
    """timm's file loading and the layout check each read the file: two 'Loaded  from checkpoint' lines."""
    path, _ = resnet_state_dict_file
    with caplog.at_level("INFO"):
        net = TimmClassifier("resnet10t", pretrained_file=path)
    assert caplog.text.count(str(path)) == 1, caplog.text
    assert net.backbone.pretrained_cfg["file"] == str(path) and "state_dict" not in net.backbone.pretrained_cfg


def test_pretrained_file_grayscale_stem_sums_rgb_filters(resnet_state_dict_file) -> None:
    path, state_dict = resnet_state_dict_file
    net = TimmClassifier("resnet10t", num_classes=5, in_chans=1, pretrained_file=path, head="attention")
    stem = net.backbone.conv1[0].weight
    assert stem.shape[1] == 1
    torch.testing.assert_close(stem, state_dict["conv1.0.weight"].sum(dim=1, keepdim=True))
    torch.testing.assert_close(net.backbone.layer1[0].conv1.weight, state_dict["layer1.0.conv1.weight"])


def test_pretrained_file_safetensors(resnet_state_dict_file, tmp_path: Path) -> None:
    _, state_dict = resnet_state_dict_file
    path = tmp_path / "resnet10t.safetensors"
    save_file(state_dict, str(path))
    net = TimmClassifier("resnet10t", pretrained_file=path)
    torch.testing.assert_close(net.backbone.conv1[0].weight, state_dict["conv1.0.weight"])


def test_missing_pretrained_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_weights.pth"
    with pytest.raises(FileNotFoundError, match="no_such_weights.pth"):
        TimmClassifier("resnet10t", pretrained_file=str(missing))


def test_pretrained_file_of_another_layout_raises(tmp_path: Path) -> None:
    path = tmp_path / "medbundle_checkpoint.pth"
    torch.save(TimmClassifier("resnet10t").state_dict(), path)  # keys prefixed with "backbone."
    with pytest.raises(ValueError, match="holds none of the backbone's parameters"):
        TimmClassifier("resnet10t", pretrained_file=path)


def test_freeze_backbone_trains_only_the_head_and_keeps_batchnorm_statistics() -> None:
    net = TimmClassifier("resnet10t", num_classes=1, head="mlp").freeze_backbone()
    assert not any(p.requires_grad for p in net.backbone.parameters())
    assert all(p.requires_grad for p in net.head.parameters())
    net.train()
    batchnorms = [m for m in net.backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    assert batchnorms and not any(m.training for m in batchnorms)
    assert net.head.training
    running_mean = net.backbone.bn1.running_mean.clone()
    net(_images(3, batch=4)).sum().backward()
    torch.testing.assert_close(net.backbone.bn1.running_mean, running_mean)
    assert all(p.grad is None for p in net.backbone.parameters())
    assert all(p.grad is not None for p in net.head.parameters())

    net.unfreeze_backbone()
    assert all(p.requires_grad for p in net.parameters())
    assert all(m.training for m in batchnorms)


@pytest.mark.parametrize("frozen", [False, True])
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_parameter_groups_cover_trainable_parameters_once(frozen: bool, weight_decay: float) -> None:
    net = TimmClassifier("resnet10t", num_classes=5, head="mlp")
    if frozen:
        net.freeze_backbone()
    groups = net.parameter_groups(lr=1e-3, backbone_lr_mult=0.1, weight_decay=weight_decay)
    grouped = [id(p) for g in groups for p in g["params"]]
    trainable = {id(p) for p in net.parameters() if p.requires_grad}
    assert len(grouped) == len(set(grouped)) and set(grouped) == trainable
    head_ids = {id(p) for p in net.head.parameters()}
    for group in groups:
        in_head = {id(p) in head_ids for p in group["params"]}
        assert len(in_head) == 1  # a group never mixes head and backbone
        assert group["lr"] == pytest.approx(1e-3 if in_head.pop() else 1e-4)
        decays = {p.ndim > 1 for p in group["params"]}
        assert group["weight_decay"] == (weight_decay if decays == {True} else 0.0)
    torch.optim.AdamW(groups)  # accepted as-is by an optimizer


def test_parameter_groups_respect_backbone_no_weight_decay() -> None:
    net = TimmClassifier("test_vit", head="attention", **VIT)
    groups = net.parameter_groups(lr=1e-3, weight_decay=0.05)
    no_decay = {id(p) for g in groups if g["weight_decay"] == 0.0 for p in g["params"]}
    assert id(net.backbone.pos_embed) in no_decay and id(net.backbone.cls_token) in no_decay
    assert id(net.backbone.patch_embed.proj.weight) not in no_decay


@pytest.mark.parametrize(
    "model_name, kwargs, head",
    [("resnet10t", {}, "attention"), ("test_vit", VIT, "linear"), ("test_vit", VIT, "attention")],
)
def test_gradient_reaches_every_parameter(model_name: str, kwargs: dict, head: str) -> None:
    net = TimmClassifier(model_name, num_classes=2, in_chans=1, head=head, **kwargs)
    net(_images(1)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    assert net.backbone.get_submodule(net.backbone.pretrained_cfg["first_conv"]).weight.grad.abs().sum() > 0


@pytest.mark.parametrize("head", ["linear", "attention"])
def test_torchscript_export_keeps_normalisation(head: str) -> None:
    net = TimmClassifier("resnet10t", num_classes=1, in_chans=1, head=head).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated but used by MONAI's ckpt_export
        scripted = torch.jit.script(net)
    x = _images(1)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), net(x))


def test_grayscale_batch_is_repeated_for_an_rgb_stem():
    net = TimmClassifier("resnet10t", num_classes=1, in_chans=3).eval()
    gray = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        assert torch.allclose(net(gray), net(gray.repeat(1, 3, 1, 1)), atol=1e-6)


def test_chest_xray_head_has_two_dropout_rates() -> None:
    net = TimmClassifier("resnet10t", num_classes=5, in_chans=1, head="mlp", drop_rate=0.3, head_hidden_drop_rate=0.25)
    assert (net.head.drop1.p, net.head.drop2.p, net.head.fc1.out_features) == (0.3, 0.25, 128)


@pytest.mark.parametrize(
    "in_chans, mean, std", [(1, [0.5], [0.25]), (3, [0.5], [0.25]), (3, [0.4, 0.5, 0.6], [0.2, 0.25, 0.3])]
)
def test_dataset_statistics_replace_pretrained_normalisation(in_chans: int, mean: list, std: list) -> None:
    net = TimmClassifier("resnet10t", in_chans=in_chans, mean=mean, std=std).eval()
    expected_mean, expected_std = tuple(mean) * (in_chans // len(mean)), tuple(std) * (in_chans // len(std))
    assert net.data_config["mean"] == pytest.approx(expected_mean)
    assert net.data_config["std"] == pytest.approx(expected_std)
    x = _images(in_chans)
    m, s = torch.tensor(expected_mean).view(1, -1, 1, 1), torch.tensor(expected_std).view(1, -1, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(net(x), net.head(net.backbone((x - m) / s)))
    only_mean = TimmClassifier("resnet10t", mean=[0.5])
    assert only_mean.data_config["std"] == pytest.approx(only_mean.backbone.pretrained_cfg["std"])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"in_chans": 3, "mean": [0.1, 0.2]}, "mean has 2 values; give 1 value or in_chans=3"),
        ({"in_chans": 1, "std": [0.0]}, "std must be positive"),
        ({"mean": [0.5], "normalize": False}, "only with normalize=True"),
    ],
)
def test_bad_statistics_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TimmClassifier("resnet10t", **kwargs)


def test_freeze_keeping_requires_grad_only_freezes_batchnorm() -> None:
    net = TimmClassifier("resnet10t", head="mlp").freeze_backbone(keep_requires_grad=True).train()
    assert all(p.requires_grad for p in net.parameters())
    assert not any(m.training for m in net.backbone.modules() if isinstance(m, nn.BatchNorm2d))


def test_parameter_groups_are_named_and_take_an_absolute_backbone_lr() -> None:
    net = TimmClassifier("resnet10t", head="mlp")
    groups = net.parameter_groups(lr=3e-5, weight_decay=0.01, backbone_lr=5e-6)
    head_ids = {id(p) for p in net.head.parameters()}
    for group in groups:
        assert group["name"] == ("head" if id(group["params"][0]) in head_ids else "backbone")
        assert group["lr"] == (3e-5 if group["name"] == "head" else 5e-6)
    assert [g["name"] for g in groups] == ["backbone", "backbone", "head", "head"]


def test_freeze_batchnorm_keeps_batchnorm_in_eval_mode_while_everything_trains():
    net = TimmClassifier("resnet10t", num_classes=2, pretrained=False)
    batchnorms = [m for m in net.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    net.freeze_batchnorm().train()
    assert batchnorms and not any(m.training for m in batchnorms)
    assert all(p.requires_grad for p in net.parameters()) and net.head.training
    net.freeze_batchnorm(False)
    assert all(m.training for m in batchnorms)
