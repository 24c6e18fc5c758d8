"""Inferers: how a network is applied to a batch at evaluation time."""

from __future__ import annotations

from medbundle.inferers.flip_tta import FlipTTAInferer

__all__ = ["FlipTTAInferer"]
