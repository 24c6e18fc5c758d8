"""The ISIC second stage on lesion metadata: gradient-boosted trees (LightGBM, XGBoost, CatBoost), seed-bagged on
negative subsamples, saved in a form the torch-free predictor loads.

Needs the optional extra: ``pip install 'medbundle[tabular]'``; nothing here imports torch.
"""

from __future__ import annotations

from medbundle.tabular.bagging import (
    MANIFEST,
    NEG_PER_POS,
    BaggedModel,
    bag_rows,
    fit_bagged,
)
from medbundle.tabular.boosters import (
    BOOSTERS,
    Booster,
    available_boosters,
    default_threads,
    get_booster,
)

__all__ = [
    "BOOSTERS",
    "MANIFEST",
    "NEG_PER_POS",
    "BaggedModel",
    "Booster",
    "available_boosters",
    "bag_rows",
    "default_threads",
    "fit_bagged",
    "get_booster",
]
