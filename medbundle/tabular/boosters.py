"""The gradient-boosted tree libraries of the ISIC second stage, as data: settings, fit, predict, save, load.

ISIC 2024's top solutions stacked the image model's out-of-fold score under LightGBM, XGBoost and CatBoost trained
on the lesion metadata. Each library has its own data container, seed key, thread key, file format and importance
call; a :class:`Booster` holds them behind one set of functions, so bagging, benchmarks and the torch-free predictor
name a library instead of branching on it, and a library is added by adding one entry to :data:`BOOSTERS`.

Every function takes and returns plain numpy: a float32 matrix (NaN for a missing cell, which every library routes
down its learned missing-value branch) and its column names. The libraries are optional
(``pip install 'medbundle[tabular]'``) and imported on first use.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any

import numpy as np

__all__ = ["BOOSTERS", "Booster", "available_boosters", "default_threads", "get_booster"]


@dataclass(frozen=True)
class Booster:
    """One tree library: its default settings and how to fit, predict with, save, load and read a model.

    Attributes:
        name: the registry key (``lightgbm``, ``xgboost``, ``catboost``).
        package: the module to import; its absence is reported with the install command.
        params: default settings in the library's own keys, including the number of trees.
        suffix: the model file's suffix (one file per model).
        fit: ``(module, X, y, columns, params, seed, threads) -> model``; `seed` drives every random draw of the
            library (row and column sampling), `threads` its thread pool.
        predict: ``(model, X, threads) -> (N,)`` float64 probabilities of the positive class.
        save: ``(model, path)``, writing one file.
        load: ``(module, path) -> model``, predicting exactly as the saved model did.
        importance: ``(model, columns) -> (n_features,)`` split gains (or the library's analogue), unnormalised.
    """

    name: str
    package: str
    params: Mapping[str, Any]
    suffix: str
    fit: Callable[..., Any]
    predict: Callable[[Any, np.ndarray, int], np.ndarray]
    save: Callable[[Any, Path], None]
    load: Callable[[ModuleType, Path], Any]
    importance: Callable[[Any, Sequence[str]], np.ndarray]

    def module(self) -> ModuleType:
        """The library, imported.

        Raises:
            ImportError: it is not installed; the message gives the install command.
        """
        try:
            return importlib.import_module(self.package)
        except ImportError as error:
            raise ImportError(f"booster {self.name!r} needs the {self.package} package, which is not installed: "
                              f"pip install 'medbundle[tabular]'") from error


def default_threads() -> int:
    """The cores this process may run on (its CPU affinity, which containers and ``taskset`` narrow)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _lightgbm_fit(lgb, X, y, columns, params, seed, threads):
    data = lgb.Dataset(X, label=y, feature_name=list(columns), free_raw_data=True)
    # deterministic + a fixed histogram layout: the same data and seed give the same trees at any thread count
    settings = {**params, "seed": seed, "num_threads": threads, "deterministic": True, "force_col_wise": True}
    return lgb.train(settings, data)


def _lightgbm_load(lgb, path):
    return lgb.Booster(model_file=str(path))


def _xgboost_fit(xgb, X, y, columns, params, seed, threads):
    settings = {**params, "seed": seed, "nthread": threads}
    rounds = settings.pop("n_estimators")
    return xgb.train(settings, xgb.DMatrix(X, label=y, feature_names=list(columns), nthread=threads), rounds)


def _xgboost_predict(model, X, threads):
    import xgboost as xgb

    model.set_param({"nthread": threads})
    return model.predict(xgb.DMatrix(X, feature_names=model.feature_names, nthread=threads))


def _xgboost_load(xgb, path):
    model = xgb.Booster()
    model.load_model(str(path))
    return model


def _xgboost_importance(model, columns):
    gains = model.get_score(importance_type="total_gain")  # features never split on are absent
    return np.array([gains.get(column, 0.0) for column in columns])


def _catboost_fit(cb, X, y, columns, params, seed, threads):
    model = cb.CatBoostClassifier(**params, random_seed=seed, thread_count=threads)
    return model.fit(cb.Pool(X, label=y, feature_names=list(columns)))


def _catboost_load(cb, path):
    return cb.CatBoostClassifier().load_model(str(path), format="cbm")


# Defaults: the settings of the public Kaggle notebook "ISIC 2024 - Only Tabular Data" (Optuna-tuned on the ISIC 2024
# metadata, rounded here), which most top-ranked ISIC 2024 solutions started their tree stage from; 200 trees each.
_LIGHTGBM = {
    "objective": "binary", "num_iterations": 200, "learning_rate": 0.032, "num_leaves": 103, "max_depth": 4,
    "min_data_in_leaf": 85, "lambda_l1": 0.088, "lambda_l2": 0.004, "feature_fraction": 0.83,
    "feature_fraction_bynode": 0.40, "bagging_fraction": 0.77, "bagging_freq": 4, "scale_pos_weight": 2.8,
    "verbosity": -1,
}  # fmt: skip
_XGBOOST = {
    "objective": "binary:logistic", "tree_method": "hist", "n_estimators": 200, "eta": 0.085, "max_depth": 6,
    "lambda": 8.9, "alpha": 0.68, "subsample": 0.60, "colsample_bytree": 0.84, "colsample_bylevel": 0.55,
    "colsample_bynode": 0.99, "scale_pos_weight": 3.3, "verbosity": 0,
}  # fmt: skip
_CATBOOST = {
    "loss_function": "Logloss", "iterations": 200, "learning_rate": 0.069, "depth": 7, "l2_leaf_reg": 6.2,
    "subsample": 0.62, "min_data_in_leaf": 24, "scale_pos_weight": 2.6, "verbose": False,
    "allow_writing_files": False,
}  # fmt: skip

#: Every supported tree library, by name.
BOOSTERS: dict[str, Booster] = {
    "lightgbm": Booster(
        name="lightgbm", package="lightgbm", params=MappingProxyType(_LIGHTGBM), suffix=".txt", fit=_lightgbm_fit,
        predict=lambda model, X, threads: model.predict(X, num_threads=threads),
        save=lambda model, path: model.save_model(str(path)), load=_lightgbm_load,
        importance=lambda model, columns: model.feature_importance(importance_type="gain"),
    ),
    "xgboost": Booster(
        name="xgboost", package="xgboost", params=MappingProxyType(_XGBOOST), suffix=".ubj", fit=_xgboost_fit,
        predict=_xgboost_predict, save=lambda model, path: model.save_model(str(path)), load=_xgboost_load,
        importance=_xgboost_importance,
    ),
    "catboost": Booster(
        name="catboost", package="catboost", params=MappingProxyType(_CATBOOST), suffix=".cbm", fit=_catboost_fit,
        predict=lambda model, X, threads: model.predict_proba(X, thread_count=threads)[:, 1],
        save=lambda model, path: model.save_model(str(path), format="cbm"), load=_catboost_load,
        # CatBoost's gain analogue for trees: how far the predictions move across the feature's splits
        importance=lambda model, columns: model.get_feature_importance(type="PredictionValuesChange"),
    ),
}  # fmt: skip


def get_booster(name: str) -> Booster:
    """The :class:`Booster` registered as `name`.

    Raises:
        ValueError: `name` is not registered; the message lists the names.
    """
    try:
        return BOOSTERS[name]
    except KeyError:
        raise ValueError(f"unknown booster {name!r}; choose one of {sorted(BOOSTERS)}.") from None


def available_boosters() -> list[str]:
    """The registered boosters whose library is installed, in registry order."""
    return [name for name, booster in BOOSTERS.items() if importlib.util.find_spec(booster.package) is not None]
