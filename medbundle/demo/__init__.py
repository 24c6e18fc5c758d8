"""Synthetic demo data sets for trying bundles and testing the toolkit without downloads."""

from __future__ import annotations

from medbundle.demo.rsna import write_rsna_demo

__all__ = ["write_rsna_demo"]
