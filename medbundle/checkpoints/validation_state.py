"""The validation-driven state a resumed training run has to continue from."""

from __future__ import annotations

from typing import Any

from monai.handlers import CheckpointSaver, EarlyStopHandler

__all__ = ["ValidationState"]


class ValidationState:
    """Bundle the evaluator's best metric, early-stopping counters and best-checkpoint ranking.

    Ignite's `Checkpoint` restores objects that have `state_dict` / `load_state_dict`. The trainer,
    network, optimizer and scheduler have them, but three things a resumed run needs do not expose
    one: the evaluator's `best_metric` / `best_metric_epoch`, MONAI `EarlyStopHandler`'s patience
    counter, and MONAI `CheckpointSaver`'s ranking of saved key-metric checkpoints (without it, the
    first validation after a resume would overwrite a better `model.pt`). Put this object in the
    "last" checkpoint's `save_dict` and in the resume `load_dict`.

    MONAI keeps the Ignite objects behind the last two in private attributes (`_handler`,
    `_key_metric_checkpoint`); the tests pin that, so a MONAI upgrade that moves them fails loudly.

    Args:
        evaluator: the validation engine whose key metric is tracked.
        early_stop: the EarlyStopHandler attached to the evaluator, if any.
        best_saver: the key-metric CheckpointSaver attached to the evaluator, if any.
    """

    def __init__(
        self, evaluator: Any, early_stop: EarlyStopHandler | None = None, best_saver: CheckpointSaver | None = None
    ) -> None:
        self.evaluator = evaluator
        self.early_stop = early_stop
        self.best_saver = best_saver

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "best_metric": float(self.evaluator.state.best_metric),
            "best_metric_epoch": int(self.evaluator.state.best_metric_epoch),
        }
        if self.early_stop is not None and self.early_stop._handler is not None:
            state["early_stop"] = dict(self.early_stop._handler.state_dict())
        if self.best_saver is not None and self.best_saver._key_metric_checkpoint is not None:
            saved = self.best_saver._key_metric_checkpoint.state_dict()["_saved"]
            state["best_checkpoints"] = [(float(priority), str(name)) for priority, name in saved]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.evaluator.state.best_metric = state_dict["best_metric"]
        self.evaluator.state.best_metric_epoch = state_dict["best_metric_epoch"]
        if "early_stop" in state_dict and self.early_stop is not None and self.early_stop._handler is not None:
            self.early_stop._handler.load_state_dict(state_dict["early_stop"])
        if "best_checkpoints" in state_dict and self.best_saver is not None:
            self.best_saver.load_state_dict({"_saved": [tuple(item) for item in state_dict["best_checkpoints"]]})
