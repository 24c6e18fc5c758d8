"""isic's second stage: gradient-boosted trees on the lesion metadata and the image model's out-of-fold score.

- :mod:`~medbundle.tabular.features`: the documented feature list (test-time metadata columns, engineered ratios,
  per-patient z-scores and ranks, one-hot categories, the image score) as a :class:`FeatureSpec`;
- :mod:`~medbundle.tabular.boosters` / :mod:`~medbundle.tabular.bagging`: LightGBM, XGBoost and CatBoost, seed-bagged
  on negative subsamples, saved in a form the torch-free predictor loads;
- :mod:`~medbundle.tabular.training`: ``medbundle tabular``, cross-validated on the image model's folds, with the
  out-of-fold report; :mod:`~medbundle.tabular.model`: a trained folder that scores new lesions;
  :mod:`~medbundle.tabular.stacked`: both stages without torch, from an export folder.

Needs the optional extra ``pip install 'medbundle[tabular]'``; nothing here imports torch, and names are imported
on first use, so the deploy runtime loads only what it scores with.
"""

from __future__ import annotations

from medbundle.lazy import lazy_exports

_EXPORTS = {
    "BOOSTERS": "medbundle.tabular.boosters",
    "Booster": "medbundle.tabular.boosters",
    "available_boosters": "medbundle.tabular.boosters",
    "default_threads": "medbundle.tabular.boosters",
    "get_booster": "medbundle.tabular.boosters",
    "MANIFEST": "medbundle.tabular.bagging",
    "NEG_PER_POS": "medbundle.tabular.bagging",
    "BaggedModel": "medbundle.tabular.bagging",
    "bag_rows": "medbundle.tabular.bagging",
    "fit_bagged": "medbundle.tabular.bagging",
    "CATEGORICAL_COLUMNS": "medbundle.tabular.features",
    "ENGINEERED": "medbundle.tabular.features",
    "NUMERIC_COLUMNS": "medbundle.tabular.features",
    "Engineered": "medbundle.tabular.features",
    "FeatureSpec": "medbundle.tabular.features",
    "feature_table_markdown": "medbundle.tabular.features",
    "fit_features": "medbundle.tabular.features",
    "make_features": "medbundle.tabular.features",
    "synthetic_isic_table": "medbundle.tabular.synthetic",
    "oof_image_scores": "medbundle.tabular.image_scores",
    "image_scores_of_test": "medbundle.tabular.image_scores",
    "train_tabular": "medbundle.tabular.training",
    "TabularModel": "medbundle.tabular.model",
    "blend_scores": "medbundle.tabular.model",
    "StackedPredictor": "medbundle.tabular.stacked",
    "add_tabular_stage": "medbundle.tabular.stacked",
}
__all__ = [
    "BOOSTERS",
    "CATEGORICAL_COLUMNS",
    "ENGINEERED",
    "MANIFEST",
    "NEG_PER_POS",
    "NUMERIC_COLUMNS",
    "BaggedModel",
    "Booster",
    "Engineered",
    "FeatureSpec",
    "StackedPredictor",
    "TabularModel",
    "add_tabular_stage",
    "available_boosters",
    "bag_rows",
    "blend_scores",
    "default_threads",
    "feature_table_markdown",
    "fit_bagged",
    "fit_features",
    "get_booster",
    "image_scores_of_test",
    "make_features",
    "oof_image_scores",
    "synthetic_isic_table",
    "train_tabular",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
