"""The tabular stage of ISIC 2024: features of the lesion metadata and the image score for gradient-boosted trees.

:mod:`medbundle.tabular.features` builds the feature matrix (:func:`fit_features` on training rows,
:func:`make_features` on any frame with the stored :class:`FeatureSpec`); :mod:`medbundle.tabular.synthetic` makes a
training table of the real one's size for benchmarks.
"""

from __future__ import annotations

from medbundle.tabular.features import (
    CATEGORICAL_COLUMNS,
    ENGINEERED,
    NUMERIC_COLUMNS,
    Engineered,
    FeatureSpec,
    feature_table_markdown,
    fit_features,
    make_features,
)
from medbundle.tabular.synthetic import synthetic_isic_table

__all__ = [
    "CATEGORICAL_COLUMNS",
    "ENGINEERED",
    "NUMERIC_COLUMNS",
    "Engineered",
    "FeatureSpec",
    "feature_table_markdown",
    "fit_features",
    "make_features",
    "synthetic_isic_table",
]
