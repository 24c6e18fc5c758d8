"""Tests of the Kaggle download and arrangement, offline: a fake ``kagglehub`` stands in for the real one."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import pytest

from medbundle.data import download as download_module
from medbundle.data.download import DownloadError, download_dataset
from medbundle.tasks import get_task

CLASSES = ["Bacterial Pneumonia", "Corona Virus Disease", "Normal", "Tuberculosis", "Viral Pneumonia"]
HANDLE = get_task("chest_xray").download.handle


def kaggle_tree(root: Path, split_names=("train", "val", "test"), inner="Lung Disease Dataset") -> Path:
    """Write the dataset as Kaggle ships it: splits under an inner folder, with macOS and README clutter."""
    for split in split_names:
        for name in CLASSES:
            folder = root / inner / split / name
            folder.mkdir(parents=True)
            for i in range(2):
                (folder / f"{split}_{i}.jpg").write_bytes(f"{split}/{name}/{i}".encode())
            (folder / ".DS_Store").write_bytes(b"finder")
    (root / inner / "README.md").write_text("Lungs disease dataset")
    macos = root / "__MACOSX" / inner / split_names[0] / CLASSES[0]
    macos.mkdir(parents=True)
    (macos / f"._{split_names[0]}_0.jpg").write_bytes(b"resource fork")
    return root


def fake_kagglehub(monkeypatch, download) -> list[str]:
    """Install a fake kagglehub whose dataset_download runs `download(handle)`; returns the handles asked for."""
    calls: list[str] = []

    def dataset_download(handle: str) -> str:
        calls.append(handle)
        return str(download(handle))

    monkeypatch.setitem(sys.modules, "kagglehub", types.SimpleNamespace(dataset_download=dataset_download))
    return calls


def raising(exc: BaseException):
    def download(handle: str):
        raise exc

    return download


def test_download_is_arranged_by_split_and_class_with_hard_links(tmp_path, monkeypatch):
    source = kaggle_tree(tmp_path / "cache" / "versions" / "1")
    calls = fake_kagglehub(monkeypatch, lambda handle: source)
    out = download_dataset("chest_xray", tmp_path / "data")
    assert out == tmp_path / "data" and calls == [HANDLE]
    assert sorted(p.name for p in out.iterdir()) == ["test", "train", "val"]
    for split in ("train", "val", "test"):
        assert sorted(p.name for p in (out / split).iterdir()) == CLASSES
    arranged = out / "val" / "Normal" / "val_1.jpg"
    original = source / "Lung Disease Dataset" / "val" / "Normal" / "val_1.jpg"
    assert arranged.read_bytes() == b"val/Normal/1"
    assert os.path.samefile(arranged, original)
    assert sorted(p.name for p in (out / "train" / "Bacterial Pneumonia").iterdir()) == ["train_0.jpg", "train_1.jpg"]


def test_files_are_copied_where_hard_links_fail(tmp_path, monkeypatch):
    source = kaggle_tree(tmp_path / "cache")
    fake_kagglehub(monkeypatch, lambda handle: source)

    def cross_device(src, dst):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(download_module.os, "link", cross_device)
    out = download_dataset("chest_xray", tmp_path / "data")
    arranged = out / "test" / "Tuberculosis" / "test_0.jpg"
    assert arranged.read_bytes() == b"test/Tuberculosis/0"
    assert not os.path.samefile(arranged, source / "Lung Disease Dataset" / "test" / "Tuberculosis" / "test_0.jpg")


@pytest.mark.parametrize("names", [("TRAIN", "Validation", "Test"), ("train", "valid")])
def test_split_folder_names_vary_and_the_shallowest_copy_wins(tmp_path, monkeypatch, names):
    source = kaggle_tree(tmp_path / "cache", split_names=names)
    kaggle_tree(source / "Lung Disease Dataset" / "duplicate", split_names=names)
    fake_kagglehub(monkeypatch, lambda handle: source)
    out = download_dataset("chest_xray", tmp_path / "data")
    expected = ["test", "train", "val"] if len(names) == 3 else ["train", "val"]
    assert sorted(p.name for p in out.iterdir()) == expected
    assert (out / "val" / "Normal" / f"{names[1]}_0.jpg").read_bytes() == f"{names[1]}/Normal/0".encode()
    assert not (out / "train" / "duplicate").exists()


def test_existing_output_is_kept_unless_forced(tmp_path, monkeypatch):
    out = tmp_path / "data"
    for split in ("train", "val"):
        (out / split / "Normal").mkdir(parents=True)
    (out / "train" / "Normal" / "stale.jpg").write_bytes(b"old")
    calls = fake_kagglehub(monkeypatch, lambda handle: kaggle_tree(tmp_path / "cache"))
    assert download_dataset("chest_xray", out) == out
    assert calls == []
    download_dataset("chest_xray", out, force=True)
    assert calls == [HANDLE]
    assert not (out / "train" / "Normal" / "stale.jpg").exists()
    assert (out / "train" / "Normal" / "train_0.jpg").is_file()


def test_interrupted_arrangement_is_not_taken_for_a_finished_one(tmp_path, monkeypatch):
    source = kaggle_tree(tmp_path / "cache")
    fake_kagglehub(monkeypatch, lambda handle: source)
    place = download_module._place
    placed = []

    def failing_place(src, dst, link):
        if len(placed) == 20:
            raise OSError(28, "No space left on device")
        placed.append(dst)
        return place(src, dst, link)

    monkeypatch.setattr(download_module, "_place", failing_place)
    with pytest.raises(OSError, match="No space left"):
        download_dataset("chest_xray", tmp_path / "data")
    assert not (tmp_path / "data" / "train").exists()
    monkeypatch.setattr(download_module, "_place", place)
    out = download_dataset("chest_xray", tmp_path / "data")
    assert sorted(p.name for p in out.iterdir()) == ["test", "train", "val"]


class ConnectionError(OSError):
    """Stands in for requests' ConnectionError, which is not the builtin one."""


class NameResolutionError(Exception):
    """Stands in for urllib3's error at the bottom of an offline kagglehub call."""


class UnauthenticatedError(Exception):
    """Named like kagglehub.exceptions.UnauthenticatedError."""


class KaggleApiHTTPError(OSError):
    """Like kagglehub's HTTP error: carries the response and its status code."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.response = types.SimpleNamespace(status_code=status_code)


def offline() -> Exception:
    """The chain kagglehub 1.0.3 raises without network (requests over urllib3 over socket.gaierror)."""
    exc = ConnectionError("HTTPSConnectionPool(host='api.kaggle.com', port=443): Max retries exceeded")
    exc.__cause__ = NameResolutionError("Failed to resolve 'api.kaggle.com' ([Errno -2] Name or service not known)")
    return exc


@pytest.mark.parametrize(
    "exc",
    [offline(), TimeoutError("timed out")],
    ids=["requests-offline", "timeout"],
)
def test_no_network_says_how_to_download_by_hand(tmp_path, monkeypatch, exc):
    fake_kagglehub(monkeypatch, raising(exc))
    out = tmp_path / "data"
    with pytest.raises(DownloadError) as error:
        download_dataset("chest_xray", out)
    message = str(error.value)
    assert message.startswith(f"No connection to Kaggle ({type(exc).__name__}: ")
    assert f"https://www.kaggle.com/datasets/{HANDLE}" in message
    assert f"{out}/train/<Class>/..., {out}/val/<Class>/..., {out}/test/<Class>/..." in message


@pytest.mark.parametrize(
    "exc",
    [
        UnauthenticatedError("User is not authenticated"),
        KaggleApiHTTPError("401 Client Error.\n\nYou don't have permission", 401),
        ValueError("Invalid Kaggle credentials file at /root/.kaggle/kaggle.json"),
    ],
    ids=["unauthenticated", "http-401", "malformed-kaggle-json"],
)
def test_missing_credentials_say_how_to_set_them(tmp_path, monkeypatch, exc):
    fake_kagglehub(monkeypatch, raising(exc))
    with pytest.raises(DownloadError) as error:
        download_dataset("chest_xray", tmp_path / "data")
    message = str(error.value)
    assert f"({type(exc).__name__}: " in message and "\n" not in message
    for advice in ("KAGGLE_USERNAME and KAGGLE_KEY", "~/.kaggle/kaggle.json", '"username"', "600", "kagglehub.login()"):
        assert advice in message
    assert error.value.__cause__ is exc


def test_other_failures_quote_the_cause(tmp_path, monkeypatch):
    fake_kagglehub(monkeypatch, raising(KaggleApiHTTPError("500 Server Error", 500)))
    advice = r"failed \(KaggleApiHTTPError: 500 Server Error\)\. Try again later, or download the dataset from"
    with pytest.raises(DownloadError, match=advice):
        download_dataset("chest_xray", tmp_path / "data")


def test_missing_kagglehub_says_pip_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "kagglehub", None)
    with pytest.raises(DownloadError, match="needs the kagglehub package: pip install kagglehub"):
        download_dataset("chest_xray", tmp_path / "data")


def test_unknown_task_lists_the_known_ones(tmp_path):
    with pytest.raises(DownloadError, match=r"task 'mammo'; choose one of \['chest_xray', 'isic'\]"):
        download_dataset("mammo", tmp_path / "data")


def test_download_without_splits_describes_what_it_holds(tmp_path, monkeypatch):
    flat = tmp_path / "flat"
    (flat / "images").mkdir(parents=True)
    (flat / "images" / "a.jpg").write_bytes(b"x")
    (flat / "labels.csv").write_text("image,label\n")
    fake_kagglehub(monkeypatch, lambda handle: flat)
    with pytest.raises(DownloadError, match=r"no train/ and val/ .*found top-level entries \['images', 'labels.csv'\]"):
        download_dataset("chest_xray", tmp_path / "data")

    only_train = kaggle_tree(tmp_path / "only_train", split_names=("train",))
    fake_kagglehub(monkeypatch, lambda handle: only_train)
    with pytest.raises(DownloadError, match=r"found Lung Disease Dataset/ holds \['train'\]\)\. Arrange the data"):
        download_dataset("chest_xray", tmp_path / "data")


ISIC_FILES = ("train-metadata.csv", "train-image.hdf5", "test-metadata.csv", "test-image.hdf5")


def fake_competition(monkeypatch, download) -> list[str]:
    """A fake kagglehub whose competition_download runs `download(name)`; returns the names asked for."""
    calls: list[str] = []

    def competition_download(name: str) -> str:
        calls.append(name)
        return str(download(name))

    monkeypatch.setitem(sys.modules, "kagglehub", types.SimpleNamespace(competition_download=competition_download))
    return calls


def test_isic_competition_files_are_placed_by_name(tmp_path, monkeypatch):
    source = tmp_path / "cache" / "competitions" / "isic-2024-challenge"
    source.mkdir(parents=True)
    for name in ISIC_FILES:
        (source / name).write_bytes(name.encode())
    (source / "train-image").mkdir()  # the JPEG folder of the real download is not needed
    calls = fake_competition(monkeypatch, lambda name: source)
    out = download_dataset("isic", tmp_path / "data")
    assert calls == ["isic-2024-challenge"]
    assert sorted(p.name for p in out.iterdir()) == sorted(ISIC_FILES)
    assert (out / "train-image.hdf5").read_bytes() == b"train-image.hdf5"
    assert os.stat(out / "train-image.hdf5").st_ino == os.stat(source / "train-image.hdf5").st_ino  # hard link
    assert download_dataset("isic", out) == out and calls == ["isic-2024-challenge"]  # present: no second download


def test_isic_download_without_a_file_names_it(tmp_path, monkeypatch):
    source = tmp_path / "cache"
    source.mkdir()
    (source / "train-metadata.csv").write_text("isic_id\n")
    fake_competition(monkeypatch, lambda name: source)
    with pytest.raises(DownloadError, match=r"lacks \['train-image.hdf5', 'test-metadata.csv', 'test-image.hdf5'\]"):
        download_dataset("isic", tmp_path / "data")
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())


def test_isic_offline_says_to_accept_the_rules_and_download_by_hand(tmp_path, monkeypatch):
    fake_competition(monkeypatch, raising(offline()))
    out = tmp_path / "data"
    with pytest.raises(DownloadError) as error:
        download_dataset("isic", out)
    message = str(error.value)
    assert message.startswith("No connection to Kaggle")
    assert "https://www.kaggle.com/competitions/isic-2024-challenge/rules" in message
    assert "train-metadata.csv, train-image.hdf5, test-metadata.csv, test-image.hdf5 from" in message and str(out) in message
