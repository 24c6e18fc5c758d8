"""Tests for medbundle.io.hdf5: member names, the per-process handle cache, byte reading and its errors."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from medbundle.io import (
    HDF5_SEPARATOR,
    ImageReadError,
    hdf5_keys,
    hdf5_member,
    open_hdf5,
    read_hdf5_bytes,
    split_hdf5_member,
)
from medbundle.io import hdf5 as hdf5_module

PAYLOAD = b"\xff\xd8\xff\xe0 some JPEG-like bytes \x00 with a NUL inside \xff\xd9"


@pytest.fixture(autouse=True)
def _close_cached_handles():
    """Each test starts and ends without cached handles, so tmp files are not held open."""
    yield
    for handle in hdf5_module._handles.values():
        handle.close()
    hdf5_module._handles.clear()


def write_hdf5(path: Path, members: dict[str, object]) -> Path:
    """One root dataset per key, written from the given values as h5py stores them."""
    with h5py.File(path, "w") as f:
        for key, value in members.items():
            f[key] = value
    return path


def test_member_name_round_trip():
    name = hdf5_member(Path("/data/isic/train-image.hdf5"), "ISIC_0015670")
    assert name == "/data/isic/train-image.hdf5::ISIC_0015670" and HDF5_SEPARATOR == "::"
    assert split_hdf5_member(name) == ("/data/isic/train-image.hdf5", "ISIC_0015670")
    assert split_hdf5_member("odd::dir/train.hdf5::ISIC_1") == ("odd::dir/train.hdf5", "ISIC_1")  # last "::"
    assert split_hdf5_member("/data/isic/ISIC_0015670.jpg") is None
    assert split_hdf5_member(Path("C:/data/a.png")) is None
    with pytest.raises(ValueError, match="separator"):
        hdf5_member("a.hdf5", "bad::key")


@pytest.mark.parametrize(
    ("stored", "returned"),
    [
        (np.bytes_(PAYLOAD), np.bytes_),  # as in ISIC's train-image.hdf5
        (np.void(PAYLOAD), np.void),
        (np.frombuffer(PAYLOAD, np.uint8), np.ndarray),
    ],
)
def test_read_bytes_of_each_storage(tmp_path, stored, returned):
    path = write_hdf5(tmp_path / "train-image.hdf5", {"ISIC_1": stored})
    with h5py.File(path, "r") as f:
        assert type(f["ISIC_1"][()]) is returned
    assert read_hdf5_bytes(path, "ISIC_1") == PAYLOAD


def test_handle_is_opened_once_per_process_and_read_only(tmp_path, monkeypatch):
    path = write_hdf5(tmp_path / "a.hdf5", {"k": np.void(PAYLOAD)})
    handle = open_hdf5(path)
    assert handle.mode == "r" and handle.filename == str(path)
    monkeypatch.chdir(tmp_path)
    assert open_hdf5("a.hdf5") is handle  # keyed by absolute path
    monkeypatch.setattr(os, "getpid", lambda: -1)  # as seen from a forked process
    reopened = open_hdf5(path)
    assert reopened is not handle and not handle.id.valid and reopened.id.valid
    assert read_hdf5_bytes(path, "k") == PAYLOAD


def _read_in_forked_child(path: str) -> tuple[bool, bool, bytes, int]:
    """In a forked child: is the inherited handle closed, is a new one used, the bytes, and fds open on the file."""
    inherited = hdf5_module._handles[os.path.abspath(path)]
    handle = open_hdf5(path)
    data = read_hdf5_bytes(path, "k")
    fds = sum(os.path.realpath(f"/proc/self/fd/{fd}") == os.path.realpath(path) for fd in os.listdir("/proc/self/fd"))
    return not inherited.id.valid, handle is not inherited, data, fds


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs fork and /proc")
def test_forked_child_reopens_the_file_and_parent_handle_keeps_working(tmp_path):
    path = str(write_hdf5(tmp_path / "a.hdf5", {"k": np.bytes_(PAYLOAD)}))
    parent = open_hdf5(path)  # opened before the fork, so the child inherits it
    with multiprocessing.get_context("fork").Pool(1) as pool:
        inherited_closed, fresh, data, fds = pool.apply(_read_in_forked_child, (path,))
    assert inherited_closed and fresh and data == PAYLOAD
    assert fds == 1  # HDF5 opened the file anew instead of handing back the inherited one
    assert open_hdf5(path) is parent and parent.id.valid and read_hdf5_bytes(path, "k") == PAYLOAD


def test_missing_key_names_file_and_key(tmp_path):
    path = write_hdf5(tmp_path / "train-image.hdf5", {"ISIC_1": np.bytes_(PAYLOAD)})
    with pytest.raises(
        ImageReadError,
        match=r"isic_id 'ISIC_2' is not in '.*train-image\.hdf5'; check that the metadata CSV and the HDF5 "
        r"file belong together, or set skip_bad_images: true",
    ):
        read_hdf5_bytes(path, "ISIC_2")


def test_missing_file_names_file_and_key(tmp_path):
    with pytest.raises(ImageReadError, match=r"isic_id 'ISIC_1'.*absent\.hdf5' does not exist"):
        read_hdf5_bytes(tmp_path / "absent.hdf5", "ISIC_1")


def test_file_that_is_not_hdf5_names_file_and_key(tmp_path):
    path = tmp_path / "fake.hdf5"
    path.write_bytes(b"isic_id,target\nISIC_1,0\n")
    with pytest.raises(ImageReadError, match=r"isic_id 'ISIC_1'.*fake\.hdf5' is not an HDF5 file") as info:
        read_hdf5_bytes(path, "ISIC_1")
    assert isinstance(info.value.__cause__, ImageReadError) and isinstance(info.value.__cause__.__cause__, OSError)
    with pytest.raises(ImageReadError, match=r"fake\.hdf5' is not an HDF5 file"):
        hdf5_keys(path)


@pytest.mark.parametrize("stored", [np.bytes_(b""), np.zeros(0, np.uint8)])
def test_empty_member_raises(tmp_path, stored):
    path = write_hdf5(tmp_path / "a.hdf5", {"ISIC_1": stored})
    with pytest.raises(ImageReadError, match=r"isic_id 'ISIC_1' in '.*a\.hdf5' is empty.*skip_bad_images"):
        read_hdf5_bytes(path, "ISIC_1")


def test_member_without_bytes_raises(tmp_path):
    path = tmp_path / "a.hdf5"
    with h5py.File(path, "w") as f:
        f["numbers"] = np.zeros((2, 3), np.float32)
        f.create_group("group")
    with pytest.raises(ImageReadError, match=r"isic_id 'numbers' in '.*a\.hdf5' is a dataset of float32"):
        read_hdf5_bytes(path, "numbers")
    with pytest.raises(ImageReadError, match=r"isic_id 'group' in '.*a\.hdf5' is a group"):
        read_hdf5_bytes(path, "group")


def test_keys_of_a_large_file_are_listed_fast(tmp_path):
    # ISIC 2024's file has 400k members: listing them must stay far from per-member work.
    keys = {f"ISIC_{i:07d}" for i in range(20_000)}
    path = tmp_path / "train-image.hdf5"
    with h5py.File(path, "w") as f:
        for key in keys:
            f[key] = np.bytes_(b"\xff\xd8\xff")
    start = time.perf_counter()
    assert hdf5_keys(path) == keys
    assert time.perf_counter() - start < 2.0
