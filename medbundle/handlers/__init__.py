"""Ignite/MONAI handlers and metrics used by the bundles: thresholds, grouped scores, resume, writers."""

from medbundle.handlers.binary_metric import SCORES, BinaryMetric
from medbundle.handlers.prediction_collector import PredictionCollector
from medbundle.handlers.prediction_writer import PredictionWriter, SubmissionWriter, group_predictions
from medbundle.handlers.progress_bar import ProgressBarHandler
from medbundle.handlers.resume import latest_checkpoint, resume_from_latest, stored_thresholds
from medbundle.handlers.roc_threshold import ROCThresholdHandler
from medbundle.handlers.sampler_epoch import SamplerEpochHandler
from medbundle.handlers.validation_state import ValidationState

__all__ = [
    "SCORES",
    "BinaryMetric",
    "PredictionCollector",
    "PredictionWriter",
    "ProgressBarHandler",
    "ROCThresholdHandler",
    "SamplerEpochHandler",
    "SubmissionWriter",
    "ValidationState",
    "group_predictions",
    "latest_checkpoint",
    "resume_from_latest",
    "stored_thresholds",
]
