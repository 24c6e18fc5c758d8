from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from medbundle import cli
from medbundle.cli import demo, demo_data, norm_stats
from medbundle.data import CHEST_XRAY_CLASSES, norm_stats_path, read_norm_stats
from medbundle.demo import write_chest_xray_demo

PAGER = {**os.environ, "PAGER": "cat"}  # fire pages --help through $PAGER


def medbundle_here(monkeypatch, *args: str) -> None:
    """``medbundle <args>`` in this process: the console script's main() on that command line, for tests whose
    subject is the command, not a new interpreter (each costs ~7 s)."""
    monkeypatch.setattr(sys, "argv", ["medbundle", *args])
    cli.main()


def test_demo_data_console_command_writes_the_kaggle_layout(tmp_path):
    out = tmp_path / "rsna"
    command = [sys.executable, "-m", "medbundle", "demo_data", "--task", "rsna",
               "--out", str(out), "--n_patients", "4", "--image_shape", "[128,104]", "--n_test_patients", "1"]
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=300, env=PAGER)
    assert result.returncode == 0, result.stderr[-2000:]
    train = pd.read_csv(out / "train.csv")
    assert train["patient_id"].nunique() == 4
    first = train.iloc[0]
    assert (out / "train_images" / str(first.patient_id) / f"{first.image_id}.dcm").is_file()
    assert (out / "test.csv").is_file() and (out / "sample_submission.csv").is_file()


@pytest.mark.parametrize("command", sorted(set(cli.__all__) - {"main"}))
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_every_command_prints_its_help_and_exits_0(command, flag, tmp_path, monkeypatch, capsys):
    """fire passed --help into the commands that take **options: demo_data crashed and demo trained a model."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["medbundle", command, flag])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 0
    shown = capsys.readouterr()
    assert f"NAME\n    medbundle {command}" in shown.out + shown.err  # fire writes help to stderr when not a terminal
    assert not any(tmp_path.iterdir())  # help only: nothing written


def test_unknown_task_names_the_choices(tmp_path):
    with pytest.raises(ValueError, match="choose one of"):
        demo_data(task="mri", out=str(tmp_path))


def test_tasks_console_command_lists_the_registered_tasks():
    command = [sys.executable, "-c", "from medbundle.cli import main; main()", "tasks"]
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=300, env=PAGER)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["task", "bundle", "from"]
    assert [line.split()[:3] for line in lines[1:4]] == [
        [task, f"bundles/{task}", f"medbundle.tasks.{task}"] for task in ("rsna", "chest_xray", "isic")]


def test_demo_outside_the_repository_says_where_to_run(tmp_path, monkeypatch):
    demo_data(task="rsna", out=str(tmp_path / "data"), n_patients=2, image_shape=(128, 104), n_test_patients=0)
    with pytest.raises(FileNotFoundError, match="repository root or pass --bundle_dir"):
        demo(task="rsna", out=str(tmp_path / "data"), bundle_dir=str(tmp_path / "nowhere"))


REPO = Path(__file__).resolve().parents[1]


def test_chest_xray_demo_data_console_command_writes_class_folders(tmp_path):
    out = tmp_path / "chest"
    command = [sys.executable, "-m", "medbundle.cli", "demo_data", "--task", "chest_xray",
               "--out", str(out), "--n_train", "2", "--n_val", "1", "--n_test", "1", "--size_range", "[64,96]"]
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=300, env=PAGER)
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.name for p in (out / "train").iterdir()) == sorted(CHEST_XRAY_CLASSES)
    assert (out / "patients.csv").is_file()


def test_isic_demo_data_console_command_writes_the_kaggle_hdf5_layout(tmp_path):
    out = tmp_path / "isic"
    command = [sys.executable, "-c", "from medbundle.cli import main; main()", "demo_data", "--task", "isic",
               "--out", str(out), "--n_patients", "6", "--positive_rate", "0.1", "--n_test", "2"]
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=300, env=PAGER)
    assert result.returncode == 0, result.stderr[-2000:]
    names = {"train-metadata.csv", "train-image.hdf5", "test-metadata.csv", "test-image.hdf5"}
    assert names <= {p.name for p in out.iterdir()}


def test_isic_demo_trains_from_the_hdf5_file(tmp_path):
    from medbundle.demo import write_isic_demo

    write_isic_demo(tmp_path / "data", n_patients=24, positive_rate=0.1, n_test=2, size_range=(40, 60), seed=1)
    demo(task="isic", out=str(tmp_path / "data"), bundle_dir=str(REPO / "bundles" / "isic"),
         bundle_root=str(tmp_path / "run"), epochs=1, n_folds=3, image_size=[32, 32], num_workers=0, progress=False)
    best = torch.load(tmp_path / "run" / "models" / "fold0" / "model.pt", weights_only=True)
    assert "roc_threshold" in best["thresholds"]


def test_chest_xray_demo_trains_both_stages(tmp_path):
    demo(task="chest_xray", out=str(tmp_path / "data"), bundle_dir=str(REPO / "bundles" / "chest_xray"),
         bundle_root=str(tmp_path / "run"), epochs=2, stage1_epochs=1, image_size=[32, 32], num_workers=0, progress=False)
    state = torch.load(tmp_path / "run" / "models" / "fold0" / "last_checkpoint_epoch=2.pt", weights_only=True)
    assert state["finetuning"]["stage"] == 2


def test_norm_stats_measures_the_training_split_after_the_bundle_resize(tmp_path):
    data = tmp_path / "data"
    write_chest_xray_demo(data, n_train=2, n_val=1, n_test=0, size_range=(64, 96), seed=3)
    stats = norm_stats(str(data), 32, bundle=str(REPO / "bundles" / "chest_xray"), num_workers=0, model="resnet10t")
    assert stats["n_images"] == 2 * len(CHEST_XRAY_CLASSES) and stats["image_shape"] == [32, 32]
    assert read_norm_stats(norm_stats_path(data, [32, 32])) == stats
    assert 0.0 < stats["mean"][0] < 1.0 and stats["std"][0] > 0.0
    with_clahe = norm_stats(str(data), 32, bundle=str(REPO / "bundles" / "chest_xray"), num_workers=0, clahe=True)
    assert read_norm_stats(norm_stats_path(data, [32, 32], clahe=True)) == with_clahe != stats
    assert read_norm_stats(norm_stats_path(data, [32, 32])) == stats  # the plain statistics are kept


def test_download_without_network_prints_what_to_do_without_traceback(tmp_path):
    fake = tmp_path / "fake_site" / "kagglehub"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "def dataset_download(handle):\n    raise ConnectionError(\"Failed to resolve 'www.kaggle.com'\")\n"
    )
    command = [sys.executable, "-c", "from medbundle.cli import main; main()", "download", "--task", "chest_xray",
               "--out", str(tmp_path / "lungs")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake.parent), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 1
    assert "kaggle.com/datasets/khaleddev/lungs-disease-dataset-broken" in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.strip().splitlines()[-1].startswith("medbundle download:")


def test_bundle_normalises_with_the_written_statistics(tmp_path):
    from monai.bundle import ConfigParser

    data = tmp_path / "data"
    write_chest_xray_demo(data, n_train=2, n_val=1, n_test=0, size_range=(64, 96), seed=3)
    stats = norm_stats(str(data), 32, bundle=str(REPO / "bundles" / "chest_xray"), num_workers=0, model="resnet10t")
    parser = ConfigParser()
    parser.read_config(str(REPO / "bundles" / "chest_xray" / "configs" / "train.yaml"))
    parser.update({"dataset_dir": str(data), "model": "resnet10t", "image_size": [32, 32], "pretrained": False})
    network = parser.get_parsed_content("network_def")
    assert network.input_mean.flatten().tolist() == pytest.approx([stats["mean"][0]] * 3)
    assert network.input_std.flatten().tolist() == pytest.approx([stats["std"][0]] * 3)
    assert parser.get_parsed_content("stored_config").values["norm_stats"] == stats


def test_validate_console_command_reports_and_gates_on_leakage(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    write_chest_xray_demo(data, n_train=2, n_val=1, n_test=1, size_range=(64, 96), seed=3)
    base = [sys.executable, "-c", "from medbundle.cli import main; main()", "validate", "--task", "chest_xray",
            "--dataset_dir", str(data), "--num_workers", "0"]
    clean = subprocess.run(base, check=False, capture_output=True, text=True, timeout=300, env=PAGER)
    assert clean.returncode == 0, clean.stderr[-2000:]
    assert (data / "data_check" / "data_check.md").is_file() and clean.stdout.strip()
    leaked = next((data / "train" / "Normal").iterdir())
    (data / "val" / "Normal" / f"copy{leaked.suffix}").write_bytes(leaked.read_bytes())
    capsys.readouterr()
    with pytest.raises(SystemExit) as dirty:  # the same command in this process: it exits 1
        medbundle_here(monkeypatch, *base[3:])
    assert dirty.value.code == 1 and "duplicate" in capsys.readouterr().out.lower()


def test_isic_download_without_network_says_to_accept_the_rules(tmp_path, monkeypatch, capsys):
    """In this process (the command's interpreter is tested with chest_xray above): a kagglehub without network."""
    import types

    def competition_download(name):
        raise ConnectionError("Failed to resolve 'www.kaggle.com'")

    monkeypatch.setitem(sys.modules, "kagglehub", types.SimpleNamespace(competition_download=competition_download))
    with pytest.raises(SystemExit) as exit_:  # an uncaught error would propagate here instead, traceback and all
        medbundle_here(monkeypatch, "download", "--task", "isic", "--out", str(tmp_path / "isic"))
    printed = capsys.readouterr().err
    assert exit_.value.code == 1 and "Traceback" not in printed
    assert "kaggle.com/competitions/isic-2024-challenge/rules" in printed.strip().splitlines()[-1]


@pytest.mark.parametrize("task", ["rsna", "chest_xray", "isic", "classify"])
def test_preview_writes_a_captioned_montage_of_preprocessed_images(tmp_path, monkeypatch, task):
    import cv2

    data = tmp_path / "data"
    if task == "rsna":
        demo_data(task="rsna", out=str(data), n_patients=4, image_shape=(128, 104), n_test_patients=0)
        size = "[64,32]"
    elif task == "isic":
        demo_data(task="isic", out=str(data), n_patients=8, positive_rate=0.2, n_test=0)
        size = "[64,64]"
    elif task == "classify":
        demo_data(task="classify", out=str(data), n_patients=8, n_classes=2, n_test=0, size_range=(64, 96))
        size = "[48,48]"
    else:
        write_chest_xray_demo(data, n_train=2, n_val=1, n_test=0, size_range=(64, 96), seed=3)
        size = "[48,48]"
    out = tmp_path / "preview.png"
    args = ["preview", "--bundle", str(REPO / "bundles" / task), "--dataset_dir", str(data), "--n", "6", "--out",
            str(out), "--image_size", size, "--n_folds", "2", *(["--before", "True"] if task == "rsna" else [])]
    if task == "rsna":  # the real command once; the other bundles' previews in this process
        command = [sys.executable, "-c", "from medbundle.cli import main; main()", *args]
        result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=300, env=PAGER)
        assert result.returncode == 0, result.stderr[-2000:]
    else:
        medbundle_here(monkeypatch, *args)
    picture = cv2.imread(str(out))
    assert picture is not None and picture.shape[0] > 2 * 256 and picture.shape[1] > 4 * 64


def test_rsna_demo_trains_through_its_overlay(tmp_path):
    data = tmp_path / "data"
    demo_data(task="rsna", out=str(data), n_patients=30, positive_rate=0.25, image_shape=(256, 208), n_test_patients=0)
    demo(task="rsna", out=str(data), bundle_dir=str(REPO / "bundles" / "rsna"), bundle_root=str(tmp_path / "run"),
         epochs=1, image_size=[64, 32], num_workers=0, progress=False)
    state = torch.load(tmp_path / "run" / "models" / "fold0" / "last_checkpoint_epoch=1.pt", weights_only=True)
    assert state["trainer"]["iteration"] > 0
