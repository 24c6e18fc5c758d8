"""medbundle.tracking's parts without a tracker: parameters from the config as run, the switch that keeps a missing
package or a dead server out of training's way, the one-step engine, and the arguments of a tracked sweep's runs."""

from __future__ import annotations

import json
import logging
import socket

import pytest
from ignite.engine import Events

from medbundle.sweep.tracking import run_tracking
from medbundle.tracking import (
    PARENT_RUN_ENV,
    TrackedStep,
    availability,
    flat_numbers,
    run_params,
    run_tags,
    tracking_disabled,
)


def test_parameters_are_the_literal_keys_as_run_and_the_resolved_expressions(tmp_path):
    config = {
        "epochs": 3, "image_size": [64, 32], "backbone": "$@preset['backbone']", "dataset_dir": "/data/x",
        "network": {"_target_": "X"}, "imports": ["$import os"], "validate#handlers": ["@a"], "pretrained_file": None,
        "ckpt_dir": "$@bundle_root + '/models'",
    }  # fmt: skip
    path = tmp_path / "config_run.json"
    path.write_text(json.dumps(config))
    params = run_params(path, {"backbone": "resnet10t", "ckpt_dir": tmp_path / "models"})
    assert params == {"epochs": "3", "image_size": "[64, 32]", "dataset_dir": "/data/x", "pretrained_file": "null",
                      "backbone": "resnet10t", "ckpt_dir": str(tmp_path / "models")}  # fmt: skip
    assert run_params(True, {"fold": 0}) == {"fold": "0"}  # no --tracking: no config as run
    assert len(run_params(None, {"long": "x" * 7000})["long"]) == 6000  # MLflow's limit


def test_tags_name_the_stage_the_commit_and_a_sweeps_parent():
    tags = run_tags({"task": "rsna", "fold": 0, "backbone": None}, "evaluate", parent_run_id="abc")
    assert tags["task"] == "rsna" and tags["fold"] == "0" and "backbone" not in tags
    assert tags["stage"] == "evaluate" and tags["mlflow.parentRunId"] == "abc"


def test_evaluation_numbers_are_the_finite_leaves_of_metrics_json():
    assert flat_numbers({"image": {"auroc": 0.9, "n": 3, "nan": float("nan")}, "strategy": "soft", "ok": True}) == {
        "image/auroc": 0.9,
        "image/n": 3.0,
    }


def test_a_missing_package_or_a_closed_port_disables_tracking_with_one_warning(monkeypatch, caplog):
    caplog.set_level(logging.WARNING)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the socket is
    assert tracking_disabled(f"http://127.0.0.1:{port}")
    assert f"http://127.0.0.1:{port} does not answer" in caplog.text
    assert not tracking_disabled("sqlite:////tmp/x/mlruns.db")  # local: nothing to reach
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    assert tracking_disabled("sqlite:////tmp/x/mlruns.db")  # the environment wins, as in MLFlowHandler
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    caplog.clear()
    monkeypatch.setattr(availability.importlib.util, "find_spec", lambda name: None)
    assert tracking_disabled("sqlite:////tmp/x/mlruns.db", tracker="wandb")
    assert "wandb is not installed" in caplog.text and "pip install 'medbundle[tracking]'" in caplog.text
    with pytest.raises(ValueError, match="unknown tracker"):
        tracking_disabled(tracker="neptune")


def test_the_one_step_engine_runs_its_step_once_with_its_handlers():
    seen = []

    class Handler:
        def attach(self, engine):
            engine.add_event_handler(Events.COMPLETED, lambda e: seen.append(e.state.output))

    engine = TrackedStep([Handler()])
    calls = []
    state = engine.run(lambda: calls.append(1) or {"auroc": 0.5})
    assert calls == [1] and seen == [{"auroc": 0.5}] and state.output == {"auroc": 0.5}


def test_a_tracked_sweeps_run_is_a_child_of_the_sweep_run():
    tracking = {"tracking": "mlflow", "tracking_uri": "http://h:5000", "experiment": "isic", "parent_run_id": "p1"}
    args, env = run_tracking(tracking, "effnet", 2, {"epochs": 3})
    assert args == ["--tracking", "mlflow", "--run_name", "effnet-fold2", "--tracking_uri", "http://h:5000",
                    "--experiment_name", "isic"]  # fmt: skip
    assert env == {PARENT_RUN_ENV: "p1"}
    args, _ = run_tracking(tracking, "effnet", 2, {"tracking_uri": "http://other:5000"})
    assert "http://h:5000" not in args  # the sweep's own override is passed already
    assert run_tracking({"tracking": "tracking/wandb.yaml"}, "m", 0, {}) == (
        ["--tracking", "tracking/wandb.yaml", "--run_name", "m-fold0"],
        {},
    )
    assert run_tracking(None, "m", 0, {}) == ([], {})
