"""``--tracking mlflow`` against a real ``mlflow server`` (127.0.0.1, SQLite backend), through ``python -m monai.bundle``.

Each task bundle trains at toy size against the server; the runs are read back with ``MlflowClient``: every shared
top-level key as a parameter, the tags, the loss per iteration and the validation metrics per epoch, the config
as run and ``model.pt``. rsna's evaluation, inference and ensemble evaluation are runs of their own with
``metrics.json``'s numbers and files; a chest_xray checkpoint registered through ``medbundle register`` predicts like
the bundle's inference. A closed port: training ends normally after one warning naming the URI.

Training and evaluation run the real commands; inference, the ensemble and the closed port's training call what the
command calls (``monai.bundle.run``, tracking argument included) in this process.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from conftest import run_in_process
from tiny_tasks import TASKS

mlflow = pytest.importorskip("mlflow")

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore:parsing config_file:UserWarning"}
ENV.pop("MLFLOW_TRACKING_URI", None)
#: the top-level keys every bundle shares (the product card): each one a parameter of a tracked run
SHARED_KEYS = ("dataset_dir", "fold", "epochs", "image_size", "batch_size", "backbone", "pretrained", "pretrained_file",
               "num_workers", "resume", "skip_bad_images", "cache_dir", "bundle_root")  # fmt: skip
EPOCHS = {"rsna": 2, "chest_xray": 1, "isic": 2}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bundle_run(run_id: str, configs: list[Path], overrides: dict, *extra: str) -> str:
    flags = [arg for key, value in overrides.items() for arg in (f"--{key}", str(value))]
    command = [sys.executable, "-m", "monai.bundle", "run", run_id, "--config_file", repr([str(c) for c in configs]),
               *flags, *extra]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def bundle_run_here(run_id: str, configs: list[Path], overrides: dict, **tracking) -> str:
    """`bundle_run` in this process (conftest's run_in_process); what it printed."""
    return run_in_process(configs, run_id, **{key: str(value) if isinstance(value, Path) else value
                                              for key, value in overrides.items()}, **tracking)


def configs(task: str, *names: str) -> list[Path]:
    return [REPO / "bundles" / task / "configs" / name for name in names]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``mlflow server`` on a free local port with a SQLite store and served artifacts."""
    root = tmp_path_factory.mktemp("mlflow_server")
    port = free_port()
    log = (root / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{root}/mlflow.db", "--artifacts-destination", str(root / "artifacts")],
        stdout=log, stderr=subprocess.STDOUT, env=ENV,
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, (root / "server.log").read_text()[-2000:]
        time.sleep(0.5)
    yield uri
    process.terminate()
    process.wait(timeout=30)


_TRAINED: dict[str, tuple] = {}


@pytest.fixture
def trained(server, tmp_path_factory):
    """train(task): the task trained at toy size with --tracking mlflow against the server, once per module."""

    def train(task: str) -> tuple[Path, dict, str]:
        if task not in _TRAINED:
            spec, root = TASKS[task], tmp_path_factory.mktemp(f"tracked_{task}")
            spec.write_demo(root / "data", **spec.demo_args)
            overrides = {**spec.overrides, "epochs": EPOCHS[task], "dataset_dir": root / "data", "bundle_root": root / "b"}
            log = bundle_run("training", configs(task, "train.yaml"), overrides, "--tracking", "mlflow",
                             "--tracking_uri", server)  # fmt: skip
            _TRAINED[task] = (root, overrides, log)
        return _TRAINED[task]

    return train


@pytest.fixture
def evaluated(trained, server) -> Path:
    """rsna trained, then evaluated with --tracking mlflow (once per module); its root folder."""
    root, overrides, _ = trained("rsna")
    if not (root / "b" / "outputs" / "fold0" / "predictions_image.csv").is_file():
        bundle_run("evaluating", configs("rsna", "train.yaml", "evaluate.yaml"),
                   {k: v for k, v in overrides.items() if k != "epochs"}, "--tracking", "mlflow", "--tracking_uri", server)  # fmt: skip
    return root


def only_run(client, experiment: str, name: str):
    found = client.get_experiment_by_name(experiment)
    assert found is not None, [e.name for e in client.search_experiments()]
    runs = [r for r in client.search_runs([found.experiment_id]) if r.info.run_name == name]
    assert len(runs) == 1, [r.info.run_name for r in client.search_runs([found.experiment_id])]
    return runs[0]


def artifacts(client, run_id: str, path: str | None = None) -> set[str]:
    found = set()
    for item in client.list_artifacts(run_id, path):
        found |= artifacts(client, run_id, item.path) if item.is_dir else {item.path}
    return found


# rsna in the default suite; chest_xray (per-class metrics) and isic with -m slow
@pytest.mark.parametrize("task", ["rsna", pytest.param("chest_xray", marks=pytest.mark.slow),
                                  pytest.param("isic", marks=pytest.mark.slow)])  # fmt: skip
def test_a_training_run_records_parameters_tags_metrics_and_files(task, trained, server):
    client = mlflow.MlflowClient(server)
    _, overrides, _ = trained(task)
    run = only_run(client, task, "fold0-resnet10t")
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert set(SHARED_KEYS) <= set(params), sorted(set(SHARED_KEYS) - set(params))
    assert params["epochs"] == str(EPOCHS[task]) and params["backbone"] == "resnet10t"
    assert params["image_size"] == str(overrides["image_size"]) and params["batch_size"] == str(overrides["batch_size"])
    assert params["bundle_root"] == str(overrides["bundle_root"])
    tags = run.data.tags
    assert (tags["task"], tags["fold"], tags["backbone"], tags["stage"]) == (task, "0", "resnet10t", "train")
    assert len(tags.get("mlflow.source.git.commit", "")) == 40 or not (REPO / ".git").exists()
    losses = client.get_metric_history(run.info.run_id, "train_loss")
    assert len(losses) == int(params["epoch_length"]) * EPOCHS[task]  # one per iteration
    key = {"rsna": "val_pf1_best", "chest_xray": "val_accuracy", "isic": "val_pauc"}[task]
    assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == list(range(1, EPOCHS[task] + 1))
    if task == "chest_xray":  # per-class scores too
        assert any(name.startswith("val_auroc_") for name in run.data.metrics), sorted(run.data.metrics)
    files = artifacts(client, run.info.run_id)
    assert "model/model.pt" in files and any(f.startswith("config_") and f.endswith(".json") for f in files)


def test_evaluation_inference_and_the_ensemble_are_runs_with_their_numbers_and_files(evaluated, server):
    root = evaluated
    bundle_run_here("inferring", configs("rsna", "inference.yaml"),
                    {"dataset_dir": root / "data", "bundle_root": root / "b", "num_workers": 0}, tracking="mlflow",
                    tracking_uri=server)  # fmt: skip
    bundle_run_here("evaluating", [REPO / "bundles" / "ensemble" / "configs" / "evaluate.yaml"],
                    {"task": "rsna", "checkpoints": root / "b" / "models", "dataset_dir": root / "data",
                     "bundle_root": root / "ensemble", "num_workers": 0},
                    tracking="mlflow", tracking_uri=server)  # fmt: skip
    client = mlflow.MlflowClient(server)
    evaluation = only_run(client, "rsna", "fold0-resnet10t-evaluate")
    assert evaluation.data.tags["stage"] == "evaluate" and evaluation.info.status == "FINISHED"
    assert {"breast/auroc", "breast/pf1_at_threshold", "image/auroc"} <= set(evaluation.data.metrics)
    files = artifacts(client, evaluation.info.run_id)
    assert {"metrics.json", "predictions_image.csv", "predictions_breast.csv", "roc_curve_breast.png"} <= files
    inference = only_run(client, "rsna", "fold0-resnet10t-inference")
    assert "submission.csv" in artifacts(client, inference.info.run_id) and inference.info.status == "FINISHED"
    ensemble = only_run(client, "rsna", "ensemble-soft")
    assert "breast/auroc" in ensemble.data.metrics
    assert {"metrics.json", "members.csv", "predictions_breast.csv"} <= artifacts(client, ensemble.info.run_id)


def test_a_registered_version_predicts_like_the_bundle(evaluated, server):
    """rsna's best checkpoint registered on the server predicts the validation images as its evaluation did."""
    from medbundle.tracking import register

    root = evaluated
    expected = pd.read_csv(root / "b" / "outputs" / "fold0" / "predictions_image.csv", dtype=str)
    images = [str(root / "data" / "train_images" / p / f"{i}.dcm") for p, i in zip(expected["patient_id"], expected["image_id"])]
    registered = register("bundles/rsna", root / "b" / "models" / "fold0" / "model.pt", "rsna_server", tracking_uri=server)
    assert registered["model_uri"] == "models:/rsna_server/1"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(server)
    try:
        got = mlflow.pyfunc.load_model("models:/rsna_server/1").predict(images)
    finally:
        mlflow.set_tracking_uri(previous)
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    assert list(got["image_id"].astype(str)) == list(expected["image_id"]) and len(images) > 0
    assert (got["probability"].astype(float) - expected["pred"].astype(float)).abs().max() < 1e-4


def test_a_closed_port_warns_once_and_training_goes_on(tmp_path):
    spec = TASKS["rsna"]
    spec.write_demo(tmp_path / "data", **spec.demo_args)
    dead = f"http://127.0.0.1:{free_port()}"
    log = bundle_run_here("training", configs("rsna", "train.yaml"),
                          {**spec.overrides, "dataset_dir": tmp_path / "data", "bundle_root": tmp_path / "b"},
                          tracking="mlflow", tracking_uri=dead)  # fmt: skip
    assert log.count(f"the MLflow tracking server {dead} does not answer") == 1, log[-3000:]
    assert (tmp_path / "b" / "models" / "fold0" / "model.pt").is_file()
