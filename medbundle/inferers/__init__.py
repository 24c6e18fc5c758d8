"""Inferers: how a network is applied to a batch (flip test-time augmentation, autocast)."""

from __future__ import annotations

from medbundle.inferers.autocast import AutocastInferer
from medbundle.inferers.flip_tta import FlipTTAInferer

__all__ = ["AutocastInferer", "FlipTTAInferer"]
