"""Ignite/MONAI handlers and metrics used by the bundles: scores, thresholds, stages, resume, writers, crop reports."""

from medbundle.handlers.atomic_checkpoint_saver import AtomicCheckpointSaver
from medbundle.handlers.checkpoint_entries import StoredConfig, stored_aggregation, stored_config, stored_thresholds
from medbundle.handlers.classification_metric import ClassificationMetric
from medbundle.handlers.crop_report import CropReportHandler
from medbundle.handlers.early_stop import EarlyStopAfterHandler, stopping_fn
from medbundle.handlers.multiclass_report import MulticlassReportHandler, metric_slug
from medbundle.handlers.prediction_collector import CollectingHandler, PredictionCollector, prediction_arrays
from medbundle.handlers.prediction_writer import PredictionWriter, SubmissionWriter, group_predictions
from medbundle.handlers.progress_bar import ProgressBarHandler
from medbundle.handlers.resume import latest_checkpoint, resume_from_latest
from medbundle.handlers.rng_state import RNGState
from medbundle.handlers.roc_threshold import ROCThresholdHandler
from medbundle.handlers.sampler_epoch import SamplerEpochHandler
from medbundle.handlers.two_stage import TwoStageFineTuning
from medbundle.handlers.validation_state import ValidationState

__all__ = [
    "AtomicCheckpointSaver",
    "ClassificationMetric",
    "CollectingHandler",
    "CropReportHandler",
    "EarlyStopAfterHandler",
    "MulticlassReportHandler",
    "PredictionCollector",
    "PredictionWriter",
    "ProgressBarHandler",
    "RNGState",
    "ROCThresholdHandler",
    "SamplerEpochHandler",
    "StoredConfig",
    "SubmissionWriter",
    "TwoStageFineTuning",
    "ValidationState",
    "group_predictions",
    "latest_checkpoint",
    "metric_slug",
    "prediction_arrays",
    "resume_from_latest",
    "stored_aggregation",
    "stored_config",
    "stopping_fn",
    "stored_thresholds",
]
