"""Ensembles of trained checkpoints of one task: discovery, per-member preprocessing, strategies and reports.

Members may differ in backbone and image size: each sees the items through its own task bundle's
preprocessing, MONAI's ``EnsembleEvaluator`` runs the members that share it, and a strategy
(:mod:`medbundle.ensemble.strategies`) combines their probabilities. The ``bundles/ensemble`` bundle wires
these functions; :func:`ensemble` predicts image files from the command line.
"""

from __future__ import annotations

from medbundle.ensemble.command import ensemble
from medbundle.ensemble.datalists import (
    image_datalist,
    labelled_datalist,
    unlabelled_datalist,
)
from medbundle.ensemble.members import (
    Member,
    find_checkpoints,
    group_members,
    load_members,
    member_names,
)
from medbundle.ensemble.predictions import (
    MemberCollector,
    MemberPredictions,
    predict_members,
)
from medbundle.ensemble.report import (
    EnsemblePredictions,
    LevelPredictions,
    combine_predictions,
    metrics_table,
    model_table,
    prediction_table,
    write_evaluation,
    write_predictions,
)
from medbundle.ensemble.strategies import (
    BINARY_STRATEGIES,
    MULTICLASS_STRATEGIES,
    Combined,
    combine,
    hard_weighted_vote,
    max_probabilities,
    mean_probabilities,
    soft_vote,
)
from medbundle.ensemble.tasks import (
    EnsembleTask,
    get_task,
    task_bundle_dir,
    task_config,
)

__all__ = [
    "BINARY_STRATEGIES",
    "MULTICLASS_STRATEGIES",
    "Combined",
    "EnsemblePredictions",
    "EnsembleTask",
    "LevelPredictions",
    "Member",
    "MemberCollector",
    "MemberPredictions",
    "combine",
    "combine_predictions",
    "ensemble",
    "find_checkpoints",
    "get_task",
    "group_members",
    "hard_weighted_vote",
    "image_datalist",
    "labelled_datalist",
    "load_members",
    "max_probabilities",
    "mean_probabilities",
    "member_names",
    "metrics_table",
    "model_table",
    "predict_members",
    "prediction_table",
    "soft_vote",
    "task_bundle_dir",
    "task_config",
    "unlabelled_datalist",
    "write_evaluation",
    "write_predictions",
]
