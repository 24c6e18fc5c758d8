"""Experiment tracking (MLflow, Weights & Biases) and the MLflow model registry for every bundle and sweep.

``python -m monai.bundle run ... --tracking mlflow`` patches MONAI's ``MLFlowHandler`` into a bundle (see
``monai.bundle.utils.DEFAULT_MLFLOW_SETTINGS``); this package adds what a team expects of a tracked run on
top of it, and never stands in training's way when the tracker is missing or unreachable.
"""
