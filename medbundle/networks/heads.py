"""Classification heads that turn backbone features into class logits.

A head is chosen by name in bundle configs (``"linear"``, ``"mlp"``, ``"attention"``) and built by
:func:`create_head`, so :class:`~medbundle.networks.TimmClassifier` can swap heads without knowing their
classes. Each head declares through :attr:`ClassificationHead.pooled_input` whether it takes globally pooled
``(B, C)`` features or the unpooled feature map / token sequence, which tells the classifier whether to use
timm's pooling or ``forward_features``.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

__all__ = ["HEADS", "AttentionPoolHead", "ClassificationHead", "LinearHead", "MLPHead", "create_head", "get_head_class"]


class ClassificationHead(nn.Module):
    """Base class of the heads: maps backbone features to ``(B, num_classes)`` logits.

    Attributes:
        pooled_input: True when the head takes globally pooled ``(B, C)`` features, False when it takes the
            unpooled ``(B, C, H, W)`` feature map or ``(B, N, C)`` tokens and pools them itself.
        has_hidden_layer: True when the head's constructor takes a ``hidden`` width.
        has_hidden_dropout: True when the head's constructor takes a ``hidden_drop_rate`` for the dropout after
            its hidden layer.
    """

    pooled_input: ClassVar[bool] = True
    has_hidden_layer: ClassVar[bool] = False
    has_hidden_dropout: ClassVar[bool] = False


class LinearHead(ClassificationHead):
    """Dropout followed by a linear classifier, the timm default head, on pooled features.

    Args:
        in_features: channels ``C`` of the pooled ``(B, C)`` features.
        num_classes: number of output logits.
        drop_rate: dropout probability before the classifier.
    """

    def __init__(self, in_features: int, num_classes: int, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(in_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)`` from pooled features ``(B, C)``."""
        return self.fc(self.drop(x))


class MLPHead(ClassificationHead):
    """LayerNorm → Dropout → Linear → ReLU → Dropout → Linear on pooled features.

    The normalisation puts backbone features of different scales (CNN vs. ViT, frozen vs. fine-tuned) on a
    common footing, and the hidden layer lets a frozen backbone's features be combined non-linearly.

    Args:
        in_features: channels ``C`` of the pooled ``(B, C)`` features.
        num_classes: number of output logits.
        drop_rate: dropout probability before the first linear layer, and before the second one unless
            ``hidden_drop_rate`` is given.
        hidden: width of the hidden layer.
        hidden_drop_rate: dropout probability on the hidden layer's activations, before the last linear layer;
            None for ``drop_rate``. The chest X-ray recipe uses ``drop_rate=0.3, hidden_drop_rate=0.25``.
    """

    has_hidden_layer = True
    has_hidden_dropout = True

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        drop_rate: float = 0.0,
        hidden: int = 128,
        hidden_drop_rate: float | None = None,
    ) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(in_features)
        self.drop1 = nn.Dropout(drop_rate)
        self.fc1 = nn.Linear(in_features, hidden)
        self.act = nn.ReLU()
        self.drop2 = nn.Dropout(drop_rate if hidden_drop_rate is None else hidden_drop_rate)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)`` from pooled features ``(B, C)``."""
        x = self.act(self.fc1(self.drop1(self.norm(x))))
        return self.fc2(self.drop2(x))


class AttentionPoolHead(ClassificationHead):
    """Attention-based pooling over spatial positions or tokens, then a linear classifier.

    Each position gets a score ``Linear(C→hidden) → tanh → Linear(hidden→1)`` (the attention-MIL pooling of
    Ilse et al., 2018); a softmax over positions turns the scores into weights and the weighted sum of the
    features is classified. Unlike average pooling this lets a small lesion dominate the image representation,
    which matters for mammograms and skin images where the finding covers a few positions only.

    Args:
        in_features: channels ``C`` of the feature map ``(B, C, H, W)`` or tokens ``(B, N, C)``.
        num_classes: number of output logits.
        drop_rate: dropout probability before the classifier.
        hidden: width of the attention scoring layer.
    """

    pooled_input = False
    has_hidden_layer = True

    def __init__(self, in_features: int, num_classes: int, drop_rate: float = 0.0, hidden: int = 128) -> None:
        super().__init__()
        # no bias on the last score layer: the softmax over positions would cancel it
        self.attn = nn.Sequential(nn.Linear(in_features, hidden), nn.Tanh(), nn.Linear(hidden, 1, bias=False))
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(in_features, num_classes)

    def attention_pool(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pooled features ``(B, C)`` and attention weights ``(B, N)`` (summing to 1 over ``N``).

        Args:
            x: feature map ``(B, C, H, W)`` (positions flattened row-major, ``N = H * W``) or tokens ``(B, N, C)``.
        """
        if x.ndim == 4:
            x = x.flatten(2).transpose(1, 2)
        weights = torch.softmax(self.attn(x).squeeze(-1), dim=1)
        return torch.bmm(weights.unsqueeze(1), x).squeeze(1), weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)`` from a feature map ``(B, C, H, W)`` or tokens ``(B, N, C)``."""
        pooled, _ = self.attention_pool(x)
        return self.fc(self.drop(pooled))


HEADS: dict[str, type[ClassificationHead]] = {
    "linear": LinearHead,
    "mlp": MLPHead,
    "attention": AttentionPoolHead,
}


def get_head_class(name: str) -> type[ClassificationHead]:
    """The head class registered under ``name`` in :data:`HEADS`.

    Args:
        name: registered head name.

    Raises:
        ValueError: when ``name`` is not registered; the message lists the available names.
    """
    try:
        return HEADS[name]
    except KeyError:
        raise ValueError(f"unknown head {name!r}; available heads: {sorted(HEADS)}") from None


def create_head(
    name: str,
    in_features: int,
    num_classes: int,
    drop_rate: float = 0.0,
    hidden: int = 128,
    hidden_drop_rate: float | None = None,
) -> ClassificationHead:
    """Build a registered head by name, as bundle configs select heads by string.

    Args:
        name: registered head name, one of ``"linear"``, ``"mlp"``, ``"attention"``.
        in_features: feature channels ``C`` produced by the backbone.
        num_classes: number of output logits.
        drop_rate: dropout probability inside the head.
        hidden: hidden width, used by heads with a hidden layer (``"mlp"``, ``"attention"``).
        hidden_drop_rate: dropout probability after the hidden layer, used by heads with a hidden dropout
            (``"mlp"``); None for ``drop_rate``.

    Raises:
        ValueError: when ``name`` is not registered.
    """
    head_cls = get_head_class(name)
    kwargs: dict[str, int | float | None] = {}
    if head_cls.has_hidden_layer:
        kwargs["hidden"] = hidden
    if head_cls.has_hidden_dropout:
        kwargs["hidden_drop_rate"] = hidden_drop_rate
    return head_cls(in_features, num_classes, drop_rate=drop_rate, **kwargs)
