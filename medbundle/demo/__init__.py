"""Synthetic demo data sets for trying bundles and testing the toolkit without downloads."""

from __future__ import annotations

from medbundle.demo.chest_xray import write_chest_xray_demo
from medbundle.demo.classify import write_classify_demo
from medbundle.demo.isic import write_isic_demo
from medbundle.demo.rsna import write_rsna_demo

__all__ = ["write_chest_xray_demo", "write_classify_demo", "write_isic_demo", "write_rsna_demo"]
