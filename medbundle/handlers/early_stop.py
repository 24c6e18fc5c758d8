"""Early stopping that starts watching only after a given trainer epoch, and says why training ended."""

from __future__ import annotations

import logging
from collections.abc import Callable

from ignite.engine import Engine, Events
from monai.handlers import EarlyStopHandler

from medbundle.metrics.scores import metric_higher_is_better

__all__ = ["EarlyStopAfterHandler", "stopping_fn"]

logger = logging.getLogger(__name__)


def stopping_fn(metric_name: str) -> Callable[[Engine], float]:
    """Score function for early stopping on an evaluator metric, higher meaning better.

    The metric's direction comes from its score name: ``val_loss`` / ``val_log_loss`` (a ``log_loss``)
    is negated, so "stop when the validation loss stops falling" needs no hand-written sign flip; every
    other medbundle score is used as it is.

    Args:
        metric_name: key in the evaluator's ``state.metrics``, e.g. ``"val_loss"`` or ``"val_macro_auroc"``.
    """
    sign = 1.0 if metric_higher_is_better(metric_name) else -1.0
    return lambda engine: sign * float(engine.state.metrics[metric_name])


class EarlyStopAfterHandler(EarlyStopHandler):
    """MONAI's `EarlyStopHandler` that ignores the events of the trainer's first ``start_epoch`` epochs.

    With two-stage fine-tuning the validation loss of the frozen-backbone stage says nothing about when the
    fine-tuning stage stops improving: counting those validations would spend patience before stage 2 starts,
    and a stage-1 best score could stop stage 2 early. Events while ``trainer.state.epoch <= start_epoch``
    neither count toward patience nor set the best score; set ``start_epoch`` to the stage-1 epoch count.
    The same mechanism is the bundles' ``min_epochs``: the first validations of a run from scratch are noise
    (a best-threshold pF1 sits at its all-positive value while the ranking is still poor), and must neither
    stop the run nor become the score later epochs have to beat.
    Everything else is MONAI's: the Ignite `EarlyStopping` in ``_handler`` (its ``state_dict`` is what
    :class:`~medbundle.checkpoints.ValidationState` saves), ``set_trainer``, epoch or iteration level.

    When the trainer completes, one log line says why training ended: stopped early (the watched metric,
    its best value and epoch) or reached its last epoch, with the evaluator's best key metric (the epoch of
    ``model.pt``).

    Args:
        patience: number of events to wait if no improvement and then stop the training.
        score_function: takes the attached engine and returns a score, higher is better (e.g. minus the
            validation loss).
        trainer: trainer engine to stop; if None, call `set_trainer()` before training.
        min_delta: a minimum increase in the score to qualify as an improvement.
        cumulative_delta: if True, `min_delta` defines an increase since the last `patience` reset, otherwise
            after the last event.
        epoch_level: check at every EPOCH_COMPLETED (True) or ITERATION_COMPLETED (False) of the attached engine.
        start_epoch: last trainer epoch whose events are ignored; 0 watches from the start like MONAI's handler.
        metric_name: name of the watched metric, for the log line.

    Raises:
        ValueError: when ``start_epoch`` is negative.
    """

    def __init__(
        self,
        patience: int,
        score_function: Callable,
        trainer: Engine | None = None,
        min_delta: float = 0.0,
        cumulative_delta: bool = False,
        epoch_level: bool = True,
        start_epoch: int = 0,
        metric_name: str = "the early-stopping metric",
    ) -> None:
        if start_epoch < 0:
            raise ValueError(f"start_epoch must be >= 0 (the last trainer epoch to ignore), got {start_epoch}.")
        self.start_epoch = start_epoch
        self.metric_name = metric_name
        self.trainer: Engine | None = None
        self.evaluator: Engine | None = None
        self.best_epoch: int | None = None
        super().__init__(
            patience=patience,
            score_function=score_function,
            trainer=trainer,
            min_delta=min_delta,
            cumulative_delta=cumulative_delta,
            epoch_level=epoch_level,
        )

    def attach(self, engine: Engine) -> None:
        """Watch `engine` (the evaluator) and remember it for the final log line."""
        self.evaluator = engine
        super().attach(engine)

    def set_trainer(self, trainer: Engine) -> None:
        """Set the trainer to stop, and whose epoch decides whether an event counts."""
        self.trainer = trainer
        super().set_trainer(trainer)
        trainer.add_event_handler(Events.COMPLETED, self._log_outcome)

    def __call__(self, engine: Engine) -> None:
        if self.trainer is not None and self.trainer.state.epoch <= self.start_epoch:
            return
        super().__call__(engine)
        if self._handler.counter == 0 and self.trainer is not None:
            self.best_epoch = self.trainer.state.epoch

    def _log_outcome(self, trainer: Engine) -> None:
        epoch = trainer.state.epoch
        last = trainer.state.max_epochs is not None and epoch >= trainer.state.max_epochs
        stopped = self._handler is not None and self._handler.counter >= self.patience and not last
        if stopped:
            best_epoch = self.best_epoch if self.best_epoch is not None else epoch - self._handler.counter
            reason = (
                f"stopped early after epoch {epoch}: {self.metric_name} did not improve for {self.patience} "
                f"validations (best {abs(self._handler.best_score):.4f} at epoch {best_epoch})"
            )
        else:
            reason = f"finished its {epoch} epochs"
        state = getattr(self.evaluator, "state", None)
        best = getattr(state, "best_metric", None)
        if best is not None and getattr(state, "best_metric_epoch", -1) > 0:
            key = getattr(state, "key_metric_name", None) or "key metric"
            reason += f"; the best checkpoint has {key} {best:.4f} (epoch {state.best_metric_epoch})"
        logger.info("training %s", reason)
