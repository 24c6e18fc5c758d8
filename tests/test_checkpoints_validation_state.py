from __future__ import annotations

import pytest
import torch
from conftest import make_evaluator
from ignite.engine import Engine
from monai.handlers import CheckpointSaver, EarlyStopHandler, stopping_fn_from_metric

from medbundle.checkpoints import (
    ValidationState,
    latest_checkpoint,
    resume_from_latest,
    stored_thresholds,
)
from medbundle.handlers import ClassificationMetric

PROBS, LABELS, BREASTS = [0.9, 0.2, 0.4, 0.7], [1, 0, 0, 1], ["1_L", "1_R", "2_L", "2_R"]


def _wired(tmp_path):
    saver = CheckpointSaver(str(tmp_path), {"model": torch.nn.Linear(1, 1)}, save_key_metric=True, key_metric_filename="model.pt")
    stop = EarlyStopHandler(patience=3, score_function=stopping_fn_from_metric("auc"), trainer=Engine(lambda e, b: None))
    evaluator = make_evaluator(PROBS, LABELS, BREASTS, key_metric={"auc": ClassificationMetric(score="auroc", group_key="breast_id")}, handlers=[saver, stop])
    return evaluator, stop, saver


def test_state_round_trip_restores_best_metric_patience_and_ranking(tmp_path):
    evaluator, stop, saver = _wired(tmp_path)
    evaluator.run()
    stop._handler.counter = 2  # as if two validations without improvement had followed
    state = ValidationState(evaluator, stop, saver).state_dict()
    torch.save({"validation": state}, tmp_path / "state.pt")
    loaded = torch.load(tmp_path / "state.pt", weights_only=True)["validation"]

    fresh_evaluator, fresh_stop, fresh_saver = _wired(tmp_path / "fresh")
    ValidationState(fresh_evaluator, fresh_stop, fresh_saver).load_state_dict(loaded)
    assert fresh_evaluator.state.best_metric == 1.0 and fresh_evaluator.state.best_metric_epoch == 1
    assert fresh_stop._handler.counter == 2 and fresh_stop._handler.best_score == 1.0
    ranking = [tuple(x) for x in saver._key_metric_checkpoint.state_dict()["_saved"]]
    assert len(ranking) == 1 and ranking[0][0] == 1.0
    assert [tuple(x) for x in fresh_saver._key_metric_checkpoint.state_dict()["_saved"]] == ranking


def test_latest_checkpoint_picks_highest_epoch(tmp_path):
    assert latest_checkpoint(tmp_path) is None
    for epoch in (2, 10, 9):
        (tmp_path / f"last_checkpoint_epoch={epoch}.pt").write_bytes(b"")
    assert latest_checkpoint(tmp_path).name == "last_checkpoint_epoch=10.pt"


def test_stored_thresholds_errors_say_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="train the bundle first"):
        stored_thresholds(tmp_path / "missing.pt")
    torch.save({"model": {}}, tmp_path / "m.pt")
    with pytest.raises(KeyError, match="thresholds"):
        stored_thresholds(tmp_path / "m.pt")
    torch.save({"thresholds": {"pf1_threshold": 0.25}}, tmp_path / "t.pt")
    assert stored_thresholds(tmp_path / "t.pt") == {"pf1_threshold": 0.25}


def test_resume_without_checkpoint_starts_fresh_and_with_one_restores(tmp_path, caplog):
    net = torch.nn.Linear(2, 1)
    with caplog.at_level("WARNING"):
        assert resume_from_latest(Engine(lambda e, b: None), tmp_path, {"model": net}) is None
    assert "starting from scratch" in caplog.text

    saved = torch.nn.Linear(2, 1)
    torch.save({"model": saved.state_dict()}, tmp_path / "last_checkpoint_epoch=4.pt")
    engine = Engine(lambda e, b: None)
    assert resume_from_latest(engine, tmp_path, {"model": net}).name == "last_checkpoint_epoch=4.pt"
    engine.run([0], max_epochs=1)
    assert torch.equal(net.weight, saved.weight)
