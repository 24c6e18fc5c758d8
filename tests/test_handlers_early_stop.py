"""Tests of EarlyStopAfterHandler on an Ignite trainer/evaluator pair."""

from __future__ import annotations

import pytest
from ignite.engine import Engine, Events
from monai.handlers import EarlyStopHandler

from medbundle.handlers.early_stop import EarlyStopAfterHandler

# validation scores by trainer epoch: stage 1 (epochs 1-2) scores high, stage 2 starts lower and then stalls
SCORES = {1: 10.0, 2: 10.0, 3: 1.0, 4: 2.0, 5: 1.5, 6: 1.5, 7: 1.5, 8: 1.5}


def _run(start_epoch: int, set_later: bool = False, max_epochs: int = len(SCORES)) -> tuple[Engine, EarlyStopAfterHandler]:
    trainer = Engine(lambda engine, batch: None)
    evaluator = Engine(lambda engine, batch: None)
    stop = EarlyStopAfterHandler(
        patience=2,
        score_function=lambda engine: SCORES[trainer.state.epoch],
        trainer=None if set_later else trainer,
        start_epoch=start_epoch,
    )
    if set_later:
        stop.set_trainer(trainer)
    stop.attach(evaluator)
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda _: evaluator.run([0]))
    trainer.run([0], max_epochs=max_epochs)
    return trainer, stop


def test_validations_up_to_start_epoch_neither_count_nor_set_the_best_score() -> None:
    trainer, stop = _run(start_epoch=2)
    assert trainer.state.epoch == 6  # best 2.0 at epoch 4, no improvement at 5 and 6
    assert stop._handler.state_dict()["best_score"] == 2.0


def test_start_epoch_zero_behaves_like_monai() -> None:
    trainer, stop = _run(start_epoch=0)
    assert trainer.state.epoch == 3  # the stage-1 score of 10 is never beaten
    assert stop._handler.state_dict()["best_score"] == 10.0
    assert isinstance(stop, EarlyStopHandler)


def test_set_trainer_after_construction() -> None:
    trainer, stop = _run(start_epoch=2, set_later=True)
    assert trainer.state.epoch == 6 and stop.trainer is trainer


def test_no_trainer_and_negative_start_epoch_raise() -> None:
    stop = EarlyStopAfterHandler(patience=1, score_function=lambda engine: 0.0, start_epoch=1)
    with pytest.raises(RuntimeError, match="set trainer"):
        stop(Engine(lambda engine, batch: None))
    with pytest.raises(ValueError, match="start_epoch must be >= 0"):
        EarlyStopAfterHandler(patience=1, score_function=lambda engine: 0.0, start_epoch=-1)


@pytest.mark.parametrize(("name", "sign"), [("val_loss", -1), ("val_log_loss", -1), ("val_macro_f1", 1), ("val_auroc", 1), ("custom", 1)])
def test_stopping_fn_negates_losses_only(name, sign):
    from types import SimpleNamespace

    from medbundle.handlers.early_stop import stopping_fn

    engine = SimpleNamespace(state=SimpleNamespace(metrics={name: 0.25}))
    assert stopping_fn(name)(engine) == sign * 0.25


def test_a_lower_is_better_key_metric_is_refused_with_what_to_use():
    from medbundle.metrics import check_key_metric

    check_key_metric("val_accuracy")
    check_key_metric("val_pf1_best")
    with pytest.raises(ValueError, match="early_stop_metric 'val_loss'"):
        check_key_metric("val_loss")


def test_the_outcome_says_stopped_early_only_before_the_last_epoch(caplog) -> None:
    with caplog.at_level("INFO", logger="medbundle.handlers.early_stop"):
        _run(start_epoch=2)
        assert "training stopped early after epoch 6" in caplog.text
        caplog.clear()
        _run(start_epoch=2, max_epochs=6)  # patience runs out at the last epoch: the run ended anyway
    assert "training finished its 6 epochs" in caplog.text and "stopped early" not in caplog.text
