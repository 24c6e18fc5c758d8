"""What a checkpoint holds besides weights, and how a run continues from one.

Not handlers: these are the objects Ignite's ``Checkpoint`` saves and restores (random-number states, the
validation state, the settings stored in ``model.pt``), the functions that find and load a checkpoint, and the
calibration stored into one.
The handlers that write checkpoints stay in :mod:`medbundle.handlers`.
"""

from medbundle.checkpoints.calibration import (
    rescaled_threshold,
    store_temperature,
    stored_bias,
    stored_temperature,
)
from medbundle.checkpoints.resume import latest_checkpoint, resume_from_latest
from medbundle.checkpoints.rng_state import RNGState
from medbundle.checkpoints.stored import (
    StoredConfig,
    stored_aggregation,
    stored_config,
    stored_thresholds,
)
from medbundle.checkpoints.validation_state import ValidationState

__all__ = [
    "RNGState",
    "StoredConfig",
    "ValidationState",
    "latest_checkpoint",
    "rescaled_threshold",
    "resume_from_latest",
    "store_temperature",
    "stored_aggregation",
    "stored_bias",
    "stored_config",
    "stored_temperature",
    "stored_thresholds",
]
