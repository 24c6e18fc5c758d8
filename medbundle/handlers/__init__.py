"""Ignite/MONAI handlers and metrics used by the bundles: scores, thresholds, stages, writers, crop reports.

What checkpoints hold and how a run resumes from one is :mod:`medbundle.checkpoints`.
"""

from medbundle.handlers.atomic_checkpoint_saver import AtomicCheckpointSaver
from medbundle.handlers.classification_metric import ClassificationMetric
from medbundle.handlers.crop_report import CropReportHandler
from medbundle.handlers.early_stop import EarlyStopAfterHandler, stopping_fn
from medbundle.handlers.multiclass_report import MulticlassReportHandler, metric_slug
from medbundle.handlers.prediction_collector import (
    CollectingHandler,
    PredictionCollector,
    prediction_arrays,
)
from medbundle.handlers.prediction_writer import (
    PredictionWriter,
    SubmissionWriter,
    group_predictions,
)
from medbundle.handlers.progress_bar import ProgressBarHandler
from medbundle.handlers.report_writer import ReportWriter
from medbundle.handlers.roc_threshold import ROCThresholdHandler
from medbundle.handlers.sampler_epoch import SamplerEpochHandler
from medbundle.handlers.two_stage import TwoStageFineTuning

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
    "ROCThresholdHandler",
    "ReportWriter",
    "SamplerEpochHandler",
    "SubmissionWriter",
    "TwoStageFineTuning",
    "group_predictions",
    "metric_slug",
    "prediction_arrays",
    "stopping_fn",
]
