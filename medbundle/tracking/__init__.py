"""Experiment tracking (MLflow, Weights & Biases) and the MLflow model registry for every bundle and sweep.

``python -m monai.bundle run ... --tracking mlflow`` patches MONAI's ``MLFlowHandler`` into a bundle (see
``monai.bundle.utils.DEFAULT_MLFLOW_SETTINGS``); this package adds what a team expects of a tracked run on
top of it, and never stands in training's way when the tracker is missing or unreachable.
"""

from medbundle.tracking.availability import server_reachable, tracking_disabled
from medbundle.tracking.params import git_commit, run_params, run_tags
from medbundle.tracking.recorder import PARENT_RUN_ENV, TrackingRecorder, flat_numbers
from medbundle.tracking.step import TrackedStep
from medbundle.tracking.store import bundle_store_uri

__all__ = [
    "PARENT_RUN_ENV",
    "TrackedStep",
    "TrackingRecorder",
    "bundle_store_uri",
    "flat_numbers",
    "git_commit",
    "run_params",
    "run_tags",
    "server_reachable",
    "tracking_disabled",
]
