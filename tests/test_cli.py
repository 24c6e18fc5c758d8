from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest

from medbundle.cli import demo, demo_data


def test_demo_data_console_command_writes_the_kaggle_layout(tmp_path):
    out = tmp_path / "rsna"
    command = [sys.executable, "-c", "from medbundle.cli import main; main()", "demo_data", "--task", "rsna",
               "--out", str(out), "--n_patients", "4", "--image_shape", "[128,104]", "--n_test_patients", "1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, "PAGER": "cat"})
    assert result.returncode == 0, result.stderr[-2000:]
    train = pd.read_csv(out / "train.csv")
    assert train["patient_id"].nunique() == 4
    first = train.iloc[0]
    assert (out / "train_images" / str(first.patient_id) / f"{first.image_id}.dcm").is_file()
    assert (out / "test.csv").is_file() and (out / "sample_submission.csv").is_file()


def test_unknown_task_names_the_choices(tmp_path):
    with pytest.raises(ValueError, match="choose one of"):
        demo_data(task="mri", out=str(tmp_path))


def test_demo_outside_the_repository_says_where_to_run(tmp_path, monkeypatch):
    demo_data(task="rsna", out=str(tmp_path / "data"), n_patients=2, image_shape=(128, 104), n_test_patients=0)
    with pytest.raises(FileNotFoundError, match="repository root or pass --bundle_dir"):
        demo(task="rsna", out=str(tmp_path / "data"), bundle_dir=str(tmp_path / "nowhere"))
