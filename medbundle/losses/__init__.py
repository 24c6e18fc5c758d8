"""Classification losses with class balancing derived from the training labels."""

from __future__ import annotations

from medbundle.losses.classification import LOSSES, class_weights, classification_loss, positive_weight

__all__ = ["LOSSES", "class_weights", "classification_loss", "positive_weight"]
