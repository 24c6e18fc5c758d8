"""Synthetic demo data sets for trying bundles and testing the toolkit without downloads.

Names are imported on first use (PEP 562): :mod:`medbundle.tabular` reads the ISIC column facts of
:mod:`medbundle.demo.isic` without the torch and MONAI that the chest X-ray writer imports.
"""

from __future__ import annotations

from medbundle.lazy import lazy_exports

_EXPORTS = {
    "write_chest_xray_demo": "chest_xray",
    "write_classify_demo": "classify",
    "write_isic_demo": "isic",
    "write_rsna_demo": "rsna",
}

__all__ = ["write_chest_xray_demo", "write_classify_demo", "write_isic_demo", "write_rsna_demo"]


__getattr__, __dir__ = lazy_exports(__name__, {name: f"{__name__}.{module}" for name, module in _EXPORTS.items()})
