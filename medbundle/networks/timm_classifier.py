"""A timm backbone with a medbundle head that takes images in ``[0, 1]`` and returns class logits.

The backbone is built by :func:`timm.create_model` without its classifier (``num_classes=0``); the head is
chosen by name from :mod:`medbundle.networks.heads`. Input normalisation with the backbone's pretrained mean
and std (or dataset statistics given as ``mean``/``std``) happens inside :meth:`TimmClassifier.forward`, so
bundle transforms only scale intensities to ``[0, 1]``, configs never hard-code ImageNet statistics, and an
exported model carries its own normalisation.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import timm
import torch
from timm.data import resolve_data_config
from timm.models import load_state_dict
from timm.optim import param_groups_weight_decay
from torch import nn

from medbundle.networks.heads import create_head, get_head_class

__all__ = ["TimmClassifier"]


def _per_channel(values: Sequence[float], in_chans: int) -> tuple[float, ...]:
    """``values`` unchanged when it has ``in_chans`` entries, else their mean repeated ``in_chans`` times.

    For ``in_chans=1`` timm sums the RGB stem weights, so a grey image normalised with the channel-mean
    statistics feeds the summed stem like a grey RGB image normalised per channel (up to the spread of the
    per-channel statistics).
    """
    if len(values) == in_chans:
        return tuple(float(v) for v in values)
    return (sum(values) / len(values),) * in_chans


def _statistics(
    name: str, values: Sequence[float] | None, default: tuple[float, ...], in_chans: int
) -> tuple[float, ...]:
    """``values`` (one value or ``in_chans`` values) as an ``in_chans`` tuple, or ``default`` when None.

    Raises:
        ValueError: when ``values`` has another length, or ``name`` is ``"std"`` and a value is not positive.
    """
    if values is None:
        return default
    values = tuple(float(v) for v in values)
    if len(values) not in (1, in_chans):
        raise ValueError(f"{name} has {len(values)} values; give 1 value or in_chans={in_chans} values.")
    if name == "std" and min(values) <= 0:
        raise ValueError(f"std must be positive, got {values}.")
    return values * (in_chans // len(values))


def _check_pretrained_file_matches(
    backbone: nn.Module, file_keys: set[str], pretrained_file: str | os.PathLike[str]
) -> None:
    """Raise when ``pretrained_file`` (its state dict keys `file_keys`) shares no parameter name with ``backbone``.

    timm loads a headless backbone with ``strict=False`` (it dropped the classifier), so a file of another
    layout, e.g. a medbundle checkpoint whose keys start with ``backbone.``, would otherwise load nothing and
    leave a randomly initialised backbone behind a mere log warning.
    """
    if file_keys.isdisjoint(name for name, _ in backbone.named_parameters()):
        raise ValueError(
            f"pretrained_file {os.fspath(pretrained_file)!r} holds none of the backbone's parameters "
            f"(file keys start with {sorted(file_keys)[:3]}); expected a timm-format state dict of this model, "
            "without a 'backbone.' prefix."
        )


def _default_calibration(module, state_dict, prefix, *args) -> None:
    """A checkpoint from before calibration (no ``temperature`` / ``logit_bias`` entry) loads as uncalibrated."""
    state_dict.setdefault(prefix + "temperature", torch.ones(()))
    state_dict.setdefault(prefix + "logit_bias", torch.zeros(()))


class TimmClassifier(nn.Module):
    """Image classifier from a timm backbone and a named head, taking images scaled to ``[0, 1]``.

    Pretrained weights come from the hub (``pretrained=True``) or, offline, from a local timm-format state dict
    (``pretrained_file``) that still holds the original classifier: timm drops the classifier because the
    backbone is built with ``num_classes=0``, and adapts the stem to ``in_chans`` (for one channel it sums the
    RGB filters).

    Example::

        net = TimmClassifier("resnet10t", num_classes=1, in_chans=1, pretrained_file="resnet10t.pth", head="mlp")
        logits = net(images)  # images (B, 1, H, W) in [0, 1] -> logits (B, 1)

    Args:
        model_name: timm model name, e.g. ``"resnet10t"``, ``"efficientnet_b0"``, ``"vit_tiny_patch16_224"``.
        num_classes: number of output logits; 1 for a binary task with a sigmoid loss.
        in_chans: image channels, 1 for grayscale (mammography, chest X-ray), 3 for RGB (skin).
        pretrained: load timm's pretrained weights (from the Hugging Face hub unless ``pretrained_file``).
        pretrained_file: local timm-format state dict (``.pth``, ``.bin`` or ``.safetensors``) to load instead
            of downloading; implies ``pretrained``.
        head: head name from :data:`medbundle.networks.heads.HEADS`: ``"linear"``, ``"mlp"`` or ``"attention"``.
        drop_rate: dropout probability inside the head (timm applies its own ``drop_rate`` only in the
            classifier this module replaces).
        head_hidden: hidden width of the ``"mlp"`` and ``"attention"`` heads.
        head_hidden_drop_rate: dropout probability after the hidden layer of the ``"mlp"`` head; None for
            ``drop_rate``.
        normalize: normalise inside ``forward`` with the pretrained mean/std; when False the input is passed to
            the backbone unchanged.
        mean, std: normalisation statistics replacing the pretrained ones, one value or ``in_chans`` values on
            the ``[0, 1]`` scale, e.g. statistics of the grayscale training images measured after resizing;
            None keeps the pretrained statistics. Only with ``normalize``.
        timm_kwargs: further :func:`timm.create_model` arguments, e.g. ``img_size`` or ``drop_path_rate``.

    Attributes:
        data_config: timm's resolved data config (``input_size``, ``interpolation``, ``mean``, ``std``,
            ``crop_pct``, ...) with ``input_size`` and ``mean``/``std`` adapted to ``in_chans`` (channel mean for
            one channel): the statistics ``forward`` normalises with when ``normalize``. The spatial
            ``input_size`` is the pretrained resolution, not an ``img_size`` passed to timm.
        input_mean, input_std: ``(1, in_chans, 1, 1)`` non-persistent buffers applied in ``forward``; 0 and 1
            when ``normalize=False``, so checkpoints never carry them and ``forward`` has a single code path.
        temperature: a persistent scalar buffer dividing the logits (temperature scaling); 1 until
            :func:`medbundle.checkpoints.store_temperature` stores the one fitted on the validation split.
        logit_bias: a persistent scalar buffer added after the temperature (Platt's bias, correcting a binary
            model's prior shift); 0 until stored with the temperature.

    Raises:
        FileNotFoundError: when ``pretrained_file`` is given but is not a file.
        ValueError: when ``head`` is not a registered head name, ``pretrained_file`` holds none of the
            backbone's parameters, ``mean``/``std`` have neither 1 nor ``in_chans`` values, a ``std`` is not
            positive, or ``mean``/``std`` are given with ``normalize=False``.
    """

    def __init__(
        self,
        model_name: str,
        num_classes: int = 1,
        in_chans: int = 3,
        pretrained: bool = False,
        pretrained_file: str | os.PathLike[str] | None = None,
        head: str = "linear",
        drop_rate: float = 0.0,
        head_hidden: int = 128,
        head_hidden_drop_rate: float | None = None,
        normalize: bool = True,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        **timm_kwargs: Any,
    ) -> None:
        super().__init__()
        if not normalize and (mean is not None or std is not None):
            raise ValueError("mean/std are the statistics forward normalises with: give them only with normalize=True.")
        if pretrained_file is not None and not Path(pretrained_file).is_file():
            # timm would only log the path and raise a bare FileNotFoundError()
            raise FileNotFoundError(
                f"pretrained_file {os.fspath(pretrained_file)!r} does not exist or is not a file; "
                "expected a timm-format state dict (.pth, .bin or .safetensors)."
            )
        self.pooled_features: bool = get_head_class(head).pooled_input
        # A head that pools by itself gets no timm pooling, so no unused pooling parameters (e.g. a ViT 'map'
        # attention pool) end up in the optimizer.
        pool_kwargs = {} if self.pooled_features else {"global_pool": ""}
        # The file is read once, by timm's reader, and handed to timm as a state dict: timm's own file loading plus
        # the check below read (and logged) it twice. timm adapts the dict (classifier dropped, stem summed).
        file_state = load_state_dict(os.fspath(pretrained_file)) if pretrained_file is not None else None
        file_keys = set(file_state or ())
        self.backbone = timm.create_model(
            model_name,
            pretrained=pretrained or file_state is not None,
            pretrained_cfg_overlay={"state_dict": file_state} if file_state is not None else None,
            num_classes=0,
            in_chans=in_chans,
            **pool_kwargs,
            **timm_kwargs,
        )
        if pretrained_file is not None:
            # timm keeps its overlay in pretrained_cfg: record the file there, not its tensors for the model's lifetime
            self.backbone.pretrained_cfg.pop("state_dict")
            self.backbone.pretrained_cfg["file"] = os.fspath(pretrained_file)
            _check_pretrained_file_matches(self.backbone, file_keys, pretrained_file)
        # Some backbones (Swin, MambaOut, ...) return channels-last (B, H, W, C) feature maps.
        self.features_nhwc: bool = getattr(self.backbone, "output_fmt", "NCHW") == "NHWC"
        in_features = (
            getattr(self.backbone, "head_hidden_size", self.backbone.num_features)
            if self.pooled_features
            else self.backbone.num_features
        )
        self.head = create_head(
            head,
            in_features,
            num_classes,
            drop_rate=drop_rate,
            hidden=head_hidden,
            hidden_drop_rate=head_hidden_drop_rate,
        )

        config = resolve_data_config({}, model=self.backbone)
        config["input_size"] = (in_chans, *config["input_size"][1:])
        config["mean"] = _statistics("mean", mean, _per_channel(config["mean"], in_chans), in_chans)
        config["std"] = _statistics("std", std, _per_channel(config["std"], in_chans), in_chans)
        self.data_config = config  # a plain attribute rather than a property, which TorchScript would compile
        mean, std = (config["mean"], config["std"]) if normalize else ((0.0,) * in_chans, (1.0,) * in_chans)
        self.register_buffer("input_mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("input_std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        # temperature (Guo et al. 2017) and, for binary models, Platt's bias: forward returns logits / temperature +
        # logit_bias. Persistent, so the calibration fitted on validation (medbundle.checkpoints.store_temperature)
        # travels in model.pt to inference, the ensemble and the export alike; 1 and 0 until fitted, and for
        # checkpoints written before they existed
        self.register_buffer("temperature", torch.ones(()))
        self.register_buffer("logit_bias", torch.zeros(()))
        self.register_load_state_dict_pre_hook(_default_calibration)
        self._backbone_frozen = False
        self._batchnorm_frozen = False

    def freeze_batchnorm(self, frozen: bool = True) -> TimmClassifier:
        """Keep the backbone's BatchNorm layers in eval mode (normalising with their running statistics, which stay
        as they are) while the rest of the network trains; their affine weights still learn.

        Fine-tuning with small batches of another domain would otherwise switch them to batch statistics and drift
        their running statistics, so the features a head learned on change under it (see
        :class:`~medbundle.handlers.TwoStageFineTuning`).

        Args:
            frozen: True to keep them in eval mode, False to let them follow the module's mode again.

        Returns:
            This module, for chaining in configs.
        """
        self._batchnorm_frozen = frozen
        return self.train(self.training)

    def freeze_backbone(self, keep_requires_grad: bool = False) -> TimmClassifier:
        """Stop training the backbone: no gradients for its parameters, its BatchNorm layers kept in eval mode.

        BatchNorm layers are kept in eval mode in :meth:`train` too, because in train mode they would still
        update their running statistics and normalise with batch statistics, so a "frozen" backbone would keep
        changing — and drift from its pretrained statistics with the small, class-imbalanced batches of
        medical datasets.

        Args:
            keep_requires_grad: leave ``requires_grad`` of the backbone parameters alone and only keep BatchNorm
                in eval mode; the caller then keeps the backbone out of the optimizer. For
                ``DistributedDataParallel``, which fixes the parameters it synchronises when it is built.

        Returns:
            This module, for chaining in configs.
        """
        if not keep_requires_grad:
            self.backbone.requires_grad_(False)
        self._backbone_frozen = True
        return self.train(self.training)

    def unfreeze_backbone(self) -> TimmClassifier:
        """Train the backbone again: gradients for all its parameters, BatchNorm following the module's mode.

        Returns:
            This module, for chaining in configs.
        """
        self.backbone.requires_grad_(True)
        self._backbone_frozen = False
        return self.train(self.training)

    def train(self, mode: bool = True) -> TimmClassifier:
        """Set train/eval mode, keeping a frozen backbone's BatchNorm layers in eval mode.

        Args:
            mode: True for training mode, False for evaluation mode.
        """
        super().train(mode)
        if self._backbone_frozen or self._batchnorm_frozen:
            for module in self.backbone.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    def parameter_groups(
        self, lr: float, backbone_lr_mult: float = 0.1, weight_decay: float = 0.0, backbone_lr: float | None = None
    ) -> list[dict[str, Any]]:
        """Optimizer parameter groups: head at ``lr``, backbone at ``lr * backbone_lr_mult`` (or ``backbone_lr``).

        Weight decay follows timm's convention (:func:`timm.optim.param_groups_weight_decay`): none on biases,
        normalisation weights and other 1-D parameters, nor on parameters the backbone lists in
        ``no_weight_decay()`` (e.g. a ViT's position embedding and class token). Frozen parameters are left
        out, so the groups can be passed straight to an optimizer.

        Args:
            lr: learning rate of the head.
            backbone_lr_mult: backbone learning rate as a fraction of ``lr``; a small value keeps fine-tuning
                from destroying the pretrained features while the new head is still random.
            weight_decay: weight decay of the decayed parameters.
            backbone_lr: backbone learning rate in absolute terms, replacing ``lr * backbone_lr_mult``.

        Returns:
            A list of ``{"params", "weight_decay", "lr", "name"}`` dicts, ``name`` being ``"backbone"`` or
            ``"head"`` (optimizers keep the extra key, so handlers can tell the groups apart).
        """
        no_weight_decay = getattr(self.backbone, "no_weight_decay", set)()
        parts = (
            ("backbone", self.backbone, lr * backbone_lr_mult if backbone_lr is None else backbone_lr, no_weight_decay),
            ("head", self.head, lr, ()),
        )
        return [
            {**group, "lr": part_lr, "name": name}
            for name, module, part_lr, exclude in parts
            for group in param_groups_weight_decay(module, weight_decay, no_weight_decay_list=exclude)
        ]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features of images in ``[0, 1]``, in the form the head takes.

        Args:
            x: images ``(B, in_chans, H, W)`` scaled to ``[0, 1]`` (already normalised when ``normalize=False``);
                a one-channel batch is repeated to ``in_chans`` so grayscale data can use an RGB stem
                without storing three copies of every cached image.

        Returns:
            Pooled ``(B, C)`` features for a pooled-input head, else the feature map ``(B, C, H', W')`` or
            tokens ``(B, N, C)``.
        """
        if x.shape[1] == 1:
            x = x.expand(-1, self.input_mean.shape[1], -1, -1)
        x = (x - self.input_mean) / self.input_std
        if self.pooled_features:
            return self.backbone(x)
        features = self.backbone.forward_features(x)
        if self.features_nhwc:
            features = features.flatten(1, 2)
        return features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)`` of images ``(B, in_chans, H, W)`` scaled to ``[0, 1]``, divided by the
        stored ``temperature`` and shifted by the stored ``logit_bias`` (1 and 0 unless calibrated)."""
        return self.head(self.forward_features(x)) / self.temperature + self.logit_bias
