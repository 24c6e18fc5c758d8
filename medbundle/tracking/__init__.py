"""Experiment tracking (MLflow, Weights & Biases) and the MLflow model registry for every bundle and sweep.

``python -m monai.bundle run ... --tracking mlflow`` patches MONAI's ``MLFlowHandler`` into a bundle (see
``monai.bundle.utils.DEFAULT_MLFLOW_SETTINGS``); this package adds what a team expects of a tracked run on
top of it, and never stands in training's way when the tracker is missing or unreachable.

Names are imported on first use (PEP 562): the registered model (:mod:`medbundle.tracking.predictor_model`)
loads this package where no torch is installed, while the recorder needs Ignite (and so torch).
"""

from __future__ import annotations

from medbundle.lazy import lazy_exports

_EXPORTS = {
    "PARENT_RUN_ENV": "recorder",
    "TrackingRecorder": "recorder",
    "flat_numbers": "recorder",
    "TrackedStep": "step",
    "WandBHandler": "wandb_handler",
    "bundle_store_uri": "store",
    "git_commit": "params",
    "run_params": "params",
    "run_tags": "params",
    "server_reachable": "availability",
    "tracking_disabled": "availability",
    "default_tracking_uri": "registry",
    "register": "registry",
}

__all__ = [
    "PARENT_RUN_ENV",
    "TrackedStep",
    "TrackingRecorder",
    "WandBHandler",
    "bundle_store_uri",
    "default_tracking_uri",
    "flat_numbers",
    "git_commit",
    "register",
    "run_params",
    "run_tags",
    "server_reachable",
    "tracking_disabled",
]


__getattr__, __dir__ = lazy_exports(__name__, {name: f"{__name__}.{module}" for name, module in _EXPORTS.items()})
