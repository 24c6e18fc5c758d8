"""Bad input, through the real commands a user runs: the last line printed names the file, column or key and says
what to do, or, with skip_bad_images, the item is skipped, counted and listed in skipped.csv.

The real command (a new interpreter, ~7 s) runs where the command line is the subject: a bad image and a bad CSV
stopping it with medbundle's last line, and a mistyped override. The other cases run the same training in this
process (``run_in_process``) and check the root cause that the command prints last (medbundle.excepthook)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from conftest import run_in_process

from medbundle.demo import write_rsna_demo
from medbundle.excepthook import root_cause
from medbundle.transforms import breast_crop

REPO = Path(__file__).resolve().parents[1]
RSNA = REPO / "bundles" / "rsna" / "configs"
TINY = ["--backbone", "resnet10t", "--head", "linear", "--image_size", "[64,32]", "--num_workers", "0",
        "--pretrained", "False", "--batch_size", "8", "--pos_per_batch", "2", "--n_folds", "3", "--epochs", "1",
        "--progress", "False"]
TINY_KWARGS = {"backbone": "resnet10t", "head": "linear", "image_size": [64, 32], "num_workers": 0, "pretrained": False,
               "batch_size": 8, "pos_per_batch": 2, "n_folds": 3, "epochs": 1, "progress": False}


def train(data: Path, root: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", str(RSNA / "train.yaml"),
               "--logging_file", str(RSNA / "logging.conf"), "--dataset_dir", str(data), "--bundle_root", str(root),
               *TINY, *extra]
    return subprocess.run(command, check=False, cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})


def last_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, "the run should have stopped"
    return result.stderr.strip().splitlines()[-1]


def train_here(data: Path, root: Path, **extra) -> str:
    """The training of `train`, in this process; what it printed."""
    return run_in_process(RSNA / "train.yaml", "training", dataset_dir=str(data), bundle_root=str(root),
                          **{**TINY_KWARGS, **extra})


def stop_here(data: Path, root: Path, **extra) -> str:
    """The training of `train`, in this process, which must stop: the root cause the command prints last."""
    with pytest.raises(Exception) as stopped:
        train_here(data, root, **extra)
    cause = root_cause(stopped.value)
    return f"{type(cause).__name__}: {cause}"


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("bad") / "data"
    write_rsna_demo(data, n_patients=24, positive_rate=0.15, n_test_patients=0, image_shape=(128, 104), seed=5)
    return data


@pytest.fixture
def data(clean, tmp_path) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(clean, copy)
    return copy


def first_image(data: Path) -> Path:
    row = pd.read_csv(data / "train.csv").iloc[0]
    return data / "train_images" / str(row.patient_id) / f"{row.image_id}.dcm"


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:2000])


def strip_pixels(path: Path) -> None:
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(path)


def not_dicom(path: Path) -> None:
    path.write_text("patient_id,image_id\n1,2\n")


def empty(path: Path) -> None:
    path.write_bytes(b"")


FILE_CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated DICOM": (truncate, "the file is truncated"),
    "DICOM without pixel data": (strip_pixels, "has no Pixel Data"),
    "not a DICOM file": (not_dicom, "not a DICOM file"),
    "zero-byte file": (empty, "the file is empty"),
}


# one damage end to end in the default suite (the stop, the skip and skipped.csv take the same path for each); the
# reader's message per damage is unit-tested in test_io_dicom, the other three end to end with -m slow
@pytest.mark.parametrize("case", [c if c == "truncated DICOM" else pytest.param(c, marks=pytest.mark.slow) for c in FILE_CASES])
def test_a_bad_image_stops_the_run_naming_it_or_is_skipped_and_listed(data, tmp_path, case):
    damage, reason = FILE_CASES[case]
    victim = first_image(data)
    damage(victim)
    stopped = train(data, tmp_path / "stop")
    line = last_line(stopped)
    assert victim.name in line and reason in line and "skip_bad_images" in line
    assert "medbundle: error:" in "\n".join(stopped.stderr.splitlines()[-8:])  # the root cause follows MONAI's chain
    log = train_here(data, tmp_path / "skip", skip_bad_images=True)  # the same training: not the command line
    assert "skipped 1 of" in log
    skipped = pd.read_csv(tmp_path / "skip" / "outputs" / "fold0" / "skipped.csv")
    assert len(skipped) == 1 and skipped["image"].iloc[0].endswith(victim.name) and reason in skipped["reason"].iloc[0]


def edit_csv(data: Path, change: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    frame = pd.read_csv(data / "train.csv", dtype={"patient_id": str, "image_id": str})
    change(frame).to_csv(data / "train.csv", index=False)


def duplicate_row(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([frame, frame.iloc[[0]]], ignore_index=True)


def second_patient(frame: pd.DataFrame) -> pd.DataFrame:
    other = frame.iloc[[0]].copy()
    other["patient_id"] = frame["patient_id"].iloc[-1]
    return pd.concat([frame, other], ignore_index=True)


def set_cell(column: str, value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame[column] = frame[column].astype(object)
        frame.loc[1, column] = value
        return frame

    return change


CSV_CASES: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame], list[str]]] = {
    "missing column": (lambda f: f.drop(columns="cancer"), ["train.csv", "'cancer'", "rename its columns"]),
    "NaN label": (set_cell("cancer", np.nan), ["train.csv", "empty cells", "line(s) [3]"]),
    "label not 0/1": (set_cell("cancer", 2), ["train.csv", "must be 0 or 1", "line(s) [3]"]),
    "duplicated image id": (duplicate_row, ["train.csv", "more than one row", "Drop the duplicate rows"]),
    "image of two patients": (second_patient, ["train.csv", "more than one patient", "fix its patient_id"]),
}


@pytest.mark.parametrize("case", CSV_CASES)
def test_a_bad_csv_is_named_with_its_lines_and_the_fix(data, tmp_path, case):
    change, words = CSV_CASES[case]
    edit_csv(data, change)
    if case == "missing column":  # one case through the command: medbundle's line is the last one printed
        line = last_line(train(data, tmp_path / "run"))
        assert line.startswith("medbundle: error:"), line
    else:
        line = stop_here(data, tmp_path / "run")
    assert all(word in line for word in words), line


def test_a_missing_image_file_names_its_path_and_the_bundle_key(data, tmp_path):
    victim = first_image(data)
    victim.unlink()
    line = stop_here(data, tmp_path / "run")
    assert str(victim) in line and "missing_images: skip" in line
    assert "whose image file is missing" in train_here(data, tmp_path / "skip", missing_images="skip")


def test_a_fold_without_positives_names_the_fold_and_the_counts(data, tmp_path):
    frame = pd.read_csv(data / "train.csv")
    keep = frame.loc[frame.cancer == 1, "patient_id"].unique()[:1]
    edit_csv(data, lambda f: f.assign(cancer=f.patient_id.astype(int).isin(keep.astype(int)).astype(int)))
    line = stop_here(data, tmp_path / "run")
    assert "fold 0 of 3" in line and "0 items with label 1" in line and "add data with label 1" in line


def test_a_dataset_dir_that_does_not_exist_says_so(tmp_path):
    line = stop_here(tmp_path / "nowhere", tmp_path / "run")
    assert "nowhere does not exist" in line and "set dataset_dir" in line


def test_an_all_black_image_falls_back_to_the_whole_image_and_says_so_once(data, tmp_path, monkeypatch):
    monkeypatch.setattr(breast_crop, "_fallback_logged", False)  # once per process: as in a new one
    for victim in list((data / "train_images").rglob("*.dcm"))[:3]:
        ds = pydicom.dcmread(victim)
        ds.decompress() if ds.file_meta.TransferSyntaxUID.is_compressed else None
        ds.PixelData = np.zeros_like(ds.pixel_array).tobytes()
        ds.save_as(victim)
    assert train_here(data, tmp_path / "run").count("the whole image is kept") == 1


def test_an_image_far_larger_than_usual_is_read_like_the_others(data, tmp_path):
    victim = first_image(data)
    ds = pydicom.dcmread(victim)
    ds.decompress() if ds.file_meta.TransferSyntaxUID.is_compressed else None
    large = np.kron(ds.pixel_array, np.ones((24, 24), ds.pixel_array.dtype))  # 3072 x 2496
    ds.Rows, ds.Columns = large.shape
    ds.PixelData = large.tobytes()
    ds.save_as(victim)
    assert "Epoch[1] Complete" in train_here(data, tmp_path / "run")


def test_a_mistyped_override_is_warned_with_the_closest_key(clean, tmp_path):
    result = train(clean, tmp_path / "run", "--epoch", "1", "--train#trainer#max_epochs", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "override --epoch matches no key" in result.stdout + result.stderr and "did you mean --epochs?" in result.stdout


def test_a_transfer_syntax_without_an_installed_decoder_names_the_package(clean, tmp_path, monkeypatch):
    """As on a machine without pylibjpeg-openjpeg: pydicom's JPEG 2000 decoder has no plugins."""
    from pydicom.pixels import get_decoder
    from pydicom.uid import JPEG2000Lossless

    monkeypatch.setattr(get_decoder(JPEG2000Lossless), "_available", {})
    line = stop_here(clean, tmp_path / "run")
    assert "no decoder is installed for its transfer syntax JPEG 2000" in line
    assert "pip install pylibjpeg pylibjpeg-openjpeg" in line and ".dcm'" in line
