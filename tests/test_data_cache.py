from __future__ import annotations

import csv
import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.transforms import (
    Compose,
    EnsureTyped,
    LoadImaged,
    MapTransform,
    RandFlipd,
    ScaleIntensityd,
)
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import SecondaryCaptureImageStorage, generate_uid

from medbundle.data import cached_dataset, transform_fingerprint
from medbundle.io import GrayscaleReader, MammoDicomReader


class CountCalls(MapTransform):
    calls = 0

    def __call__(self, data):
        CountCalls.calls += 1
        return data


def _chain(maxv: float = 1.0) -> Compose:
    return Compose(
        [
            LoadImaged(keys="image", image_only=True),
            CountCalls(keys="image"),
            ScaleIntensityd(keys="image", minv=0.0, maxv=maxv),
            RandFlipd(keys="image", prob=0.5, spatial_axis=0),
        ]
    )


def _data(tmp_path, n=4):
    items = []
    for i in range(n):
        path = tmp_path / f"img{i}.npy"
        np.save(path, np.random.default_rng(i).random((8, 6)).astype(np.float32))
        items.append({"image": str(path), "label": [float(i % 2)]})
    return items


def test_preprocessing_runs_once_and_later_runs_hit_the_cache(tmp_path):
    data = _data(tmp_path)
    CountCalls.calls = 0
    dataset = cached_dataset(data, _chain(), tmp_path / "cache", progress=False)
    assert CountCalls.calls == 4
    first = [dataset[i]["image"].max().item() for i in range(4)]
    again = cached_dataset(data, _chain(), tmp_path / "cache", progress=False)
    _ = [again[i] for i in range(4)]
    assert CountCalls.calls == 4, "a second run with the same preprocessing must not preprocess again"
    assert first == pytest.approx([1.0] * 4)


def test_changed_settings_do_not_reuse_stale_cache(tmp_path):
    assert transform_fingerprint(_chain(1.0).transforms[:3]) == transform_fingerprint(_chain(1.0).transforms[:3])
    assert transform_fingerprint(_chain(1.0).transforms[:3]) != transform_fingerprint(_chain(2.0).transforms[:3])
    data = _data(tmp_path)
    cached_dataset(data, _chain(1.0), tmp_path / "cache", progress=False)
    rescaled = cached_dataset(data, _chain(2.0), tmp_path / "cache", progress=False)
    assert rescaled[0]["image"].max().item() == pytest.approx(2.0)


def test_bad_image_raises_naming_the_file_or_is_skipped_and_counted(tmp_path, caplog):
    data = _data(tmp_path)
    bad = tmp_path / "broken.npy"
    bad.write_bytes(b"not an array")
    data.append({"image": str(bad), "label": [0.0]})
    with pytest.raises(RuntimeError, match="broken.npy.*skip_bad_images") as info:
        cached_dataset(data, _chain(), tmp_path / "cache", progress=False)
    assert str(info.value).splitlines()[-1] == (
        f"{bad}: ValueError: This file contains pickled (object) data. If you trust the file you can load it unsafely"
        " using the `allow_pickle=` keyword argument or `pickle.load()`. Fix or remove it, or set skip_bad_images: true"
        " to skip and count unreadable images."
    )
    with caplog.at_level(logging.WARNING):
        dataset = cached_dataset(data, _chain(), tmp_path / "cache", skip_bad_images=True, progress=False)
    assert len(dataset) == 4
    assert "skipped 1 of 5" in caplog.text and "broken.npy" in caplog.text
    assert not list(tmp_path.rglob("skipped.csv")), "no skipped_dir, no file"


def _write_dicom(path: Path, end: int | None = None) -> Path:
    """A 64x64 uncompressed MONOCHROME2 DICOM, cut to ``end`` bytes when given."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, generate_uid()
    ds.set_pixel_data(np.arange(64 * 64, dtype=np.uint16).reshape(64, 64), "MONOCHROME2", 12)
    ds.save_as(path, enforce_file_format=True)
    if end is not None:
        path.write_bytes(path.read_bytes()[:end])
    return path


@pytest.mark.parametrize("reader", [MammoDicomReader, GrayscaleReader])
def test_last_line_of_the_error_is_the_root_cause_naming_the_file(tmp_path, reader):
    cut = _write_dicom(tmp_path / "cut.dcm", end=2000)
    data = [{"image": str(_write_dicom(tmp_path / f"ok{i}.dcm"))} for i in range(2)] + [{"image": str(cut)}]
    chain = Compose(
        [LoadImaged(keys="image", reader=reader, image_only=True), EnsureTyped(keys="image", track_meta=False)]
    )
    with pytest.raises(RuntimeError) as info:
        cached_dataset(data, chain, tmp_path / "cache", progress=False, name="train")
    lines = str(info.value).splitlines()
    assert lines[0] == "1 of 3 train images could not be read or preprocessed:"
    assert re.fullmatch(
        rf"DicomReadError: Cannot read DICOM file '{re.escape(str(cut))}': the file is truncated \(2000 bytes\): it "
        r"ends inside the Pixel Data element \(\d+ of its 8192 bytes present\)\. Re-export or re-download it, remove "
        r"it from the data set, or set skip_bad_images: true to skip and count such files\.",
        lines[-1],
    ), lines[-1]


def test_skipped_images_are_listed_per_split_in_skipped_csv(tmp_path):
    data = _data(tmp_path)
    for i, item in enumerate(data):
        item["image_id"] = f"id{i}"
    bad = [tmp_path / "bad0.npy", tmp_path / "bad1.npy"]
    for path in bad:
        path.write_bytes(b"not an array")
    train = [*data[:2], {"image": str(bad[0]), "image_id": "b0"}]
    val = [*data[2:], {"image": str(bad[1])}]  # no image_id
    out = tmp_path / "run"
    for _ in range(2):  # a rerun replaces each split's rows instead of adding to them
        cached_dataset(train, _chain(), tmp_path / "cache", skip_bad_images=True, progress=False, name="train",
                       skipped_dir=out)
        cached_dataset(val, _chain(), tmp_path / "cache", skip_bad_images=True, progress=False, name="validation",
                       skipped_dir=out)
    with (out / "skipped.csv").open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [(row["split"], row["image"], row["image_id"]) for row in rows] == [
        ("train", str(bad[0]), "b0"),
        ("validation", str(bad[1]), ""),
    ]
    assert all(row["reason"].startswith("ValueError: This file contains pickled") for row in rows)
    cached_dataset(train[:2], _chain(), tmp_path / "cache", skip_bad_images=True, progress=False, name="train",
                   skipped_dir=out)  # the bad image was removed: its row goes too
    with (out / "skipped.csv").open(newline="") as stream:
        assert [row["split"] for row in csv.DictReader(stream)] == ["validation"]
    assert not list(out.glob(".*.tmp"))


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda raw: raw[: len(raw) // 2],
        lambda raw: raw[:-10],
        lambda raw: b"",
        lambda raw: np.random.default_rng(0).bytes(len(raw)),
        lambda raw: b"\0" * len(raw),
        lambda raw: b"hello world" * 10,
    ],
    ids=["cut-in-half", "cut-at-end", "empty", "random-bytes", "zeros", "text"],
)
@pytest.mark.parametrize("cache_n_trans", [None, 3])
def test_corrupt_cache_file_is_rebuilt_not_loaded(tmp_path, corrupt, cache_n_trans, caplog):
    data = _data(tmp_path)
    chain = _deterministic_chain(counted=True)
    dataset = cached_dataset(data, chain, tmp_path / "cache", progress=False, cache_n_trans=cache_n_trans)
    files = [_cache_file(dataset, item) for item in data]
    for path in files:
        path.write_bytes(corrupt(path.read_bytes()))
    CountCalls.calls = 0
    with caplog.at_level(logging.WARNING, logger="medbundle.data.cache"):
        dataset = cached_dataset(data, chain, tmp_path / "cache", progress=False, cache_n_trans=cache_n_trans)
    assert CountCalls.calls == 4 and caplog.text.count("; rebuilding it") == 4
    cached_part = Compose(chain.transforms[:cache_n_trans])
    for item, path in zip(data, files, strict=True):
        np.testing.assert_array_equal(torch.load(path, weights_only=True)["image"], cached_part(dict(item))["image"])
    CountCalls.calls = 0
    _ = [dataset[i] for i in range(4)]
    assert CountCalls.calls == 0, "the rebuilt files are read from now on"


def test_a_write_that_fails_halfway_leaves_no_file(tmp_path, monkeypatch):
    def save_half(obj, stream, **kwargs):
        stream.write(b"PK\x03\x04 partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", save_half)
    with pytest.raises(RuntimeError, match="No space left on device"):
        cached_dataset(_data(tmp_path, n=2), _deterministic_chain(), tmp_path / "cache", progress=False)
    assert not list((tmp_path / "cache").iterdir()), "neither a partial cache file nor a temporary one"


def test_cache_files_load_with_weights_only_and_equal_a_fresh_computation(tmp_path):
    data = _data(tmp_path)
    chain = _deterministic_chain()
    dataset = cached_dataset(data, chain, tmp_path / "cache", progress=False)
    for item in data:
        stored = torch.load(_cache_file(dataset, item), weights_only=True)
        assert torch.equal(stored["image"], chain(dict(item))["image"])


def _deterministic_chain(counted: bool = False) -> Compose:
    """Load, scale, plain tensor: the same items from the cache as freshly computed (optionally counted)."""
    return Compose(
        [
            LoadImaged(keys="image", image_only=True),
            *([CountCalls(keys="image")] if counted else []),
            ScaleIntensityd(keys="image", minv=0.0, maxv=1.0),
            EnsureTyped(keys="image", track_meta=False),
        ]
    )


def _cache_file(dataset, item: dict) -> Path:
    """The file `dataset` caches ``item`` in (MONAI's naming: item hash + transform hash)."""
    return dataset.cache_dir / f"{dataset.hash_func(item).decode('utf-8')}{dataset.transform_hash}.pt"


_FILL_CACHE = """
import json, sys, time
from pathlib import Path
from monai.transforms import Compose, EnsureTyped, LoadImaged, ScaleIntensityd
from medbundle.data import cached_dataset
data_file, cache_dir, order = sys.argv[1:]
data = json.loads(Path(data_file).read_text())
data = data if order == "forward" else data[::-1]  # the two processes meet in the middle
chain = Compose([LoadImaged(keys="image", image_only=True), ScaleIntensityd(keys="image", minv=0.0, maxv=1.0),
                 EnsureTyped(keys="image", track_meta=False)])
Path(data_file).with_name(order).touch()
while not Path(data_file).with_name("go").exists():
    time.sleep(0.01)
dataset = cached_dataset(data, chain, cache_dir, progress=False)
assert len(dataset) == len(data)
for i in range(len(dataset)):
    dataset[i]
"""


def test_two_processes_filling_one_cache_dir_leave_only_complete_files(tmp_path):
    data = []
    for i in range(16):
        path = tmp_path / f"img{i}.npy"
        np.save(path, np.random.default_rng(i).random((512, 512)).astype(np.float32))
        data.append({"image": str(path)})
    (tmp_path / "data.json").write_text(json.dumps(data))
    # a system temp folder on another file system turns MONAI's own move of a new cache file into a copy,
    # which the other process could read half-written
    env = {**os.environ, "TMPDIR": "/dev/shm"} if Path("/dev/shm").is_dir() else None
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _FILL_CACHE, str(tmp_path / "data.json"), str(tmp_path / "cache"), order],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )
        for order in ("forward", "reverse")
    ]
    deadline = time.monotonic() + 120
    while not all((tmp_path / order).exists() for order in ("forward", "reverse")) and time.monotonic() < deadline:
        time.sleep(0.01)
    (tmp_path / "go").touch()  # both start filling at the same moment
    outputs = [process.communicate(timeout=300)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    assert not any("rebuilding it" in output for output in outputs), outputs
    files = sorted((tmp_path / "cache").iterdir())
    assert len(files) == len(data) and all(path.suffix == ".pt" for path in files), "one complete file per item"
    chain = _deterministic_chain()
    dataset = cached_dataset(data, chain, tmp_path / "cache", progress=False)
    for item in data:
        stored = torch.load(_cache_file(dataset, item), weights_only=True)
        assert torch.equal(stored["image"], chain(dict(item))["image"])


def test_cache_n_trans_stores_the_compact_dtype_and_returns_the_working_one(tmp_path):
    chain = Compose(
        [
            LoadImaged(keys="image", image_only=True),
            EnsureTyped(keys="image", dtype=torch.float16, track_meta=False),
            EnsureTyped(keys="image", dtype=torch.float32, track_meta=False),
        ]
    )
    dataset = cached_dataset(_data(tmp_path, n=2), chain, tmp_path / "cache", progress=False, cache_n_trans=2)
    stored = [torch.load(f, weights_only=True) for f in (tmp_path / "cache").glob("*.pt")]
    assert len(stored) == 2 and all(item["image"].dtype == torch.float16 for item in stored)
    assert dataset[0]["image"].dtype == torch.float32


def test_fingerprint_follows_the_reader_settings_inside_load_imaged():
    from monai.transforms import LoadImaged

    from medbundle.io import GrayscaleReader, MammoDicomReader

    def load(reader) -> list:
        return [LoadImaged("image", reader=reader, image_only=True)]

    same = transform_fingerprint(load(MammoDicomReader([512, 256], reduced_decode=True)))
    assert same == transform_fingerprint(load(MammoDicomReader([512, 256], reduced_decode=True)))
    assert same != transform_fingerprint(load(MammoDicomReader([512, 256], reduced_decode=False)))
    assert same != transform_fingerprint(load(MammoDicomReader([1024, 512], reduced_decode=True)))
    grey = transform_fingerprint(load(GrayscaleReader([224, 224], reduced_decode=True)))
    assert grey != transform_fingerprint(load(GrayscaleReader([224, 224], reduced_decode=False)))


class Stamp(MapTransform):
    """Adds a per-item record, as BreastCropd(record_key=...) does."""

    def __call__(self, data):
        d = dict(data)
        d["crop"] = {"found": True, "reason": "", "mean": float(np.asarray(d["image"]).mean())}
        return d


def test_records_are_collected_during_the_warm_up_from_fresh_and_cached_items(tmp_path):
    data = _data(tmp_path, n=5)
    data[2]["image"] = str(tmp_path / "missing.npy")
    chain = Compose([LoadImaged(keys="image", image_only=True), Stamp(keys="image"), EnsureTyped(keys="image")])
    for _ in range(2):  # the second run reads every item from the cache
        dataset = cached_dataset(data, chain, tmp_path / "cache", skip_bad_images=True, progress=False,
                                 record_key="crop", cache_n_trans=3)  # fmt: skip
        assert [d["image"] for d in dataset.data] == [data[i]["image"] for i in (0, 1, 3, 4)]
        expected = [float(np.load(data[i]["image"]).mean()) for i in (0, 1, 3, 4)]
        assert [r["mean"] for r in dataset.records] == pytest.approx(expected)
    assert not hasattr(cached_dataset(data[:2], chain, tmp_path / "cache", progress=False), "records")


def test_a_class_cache_version_changes_the_fingerprint():
    class Versioned(ScaleIntensityd):
        cache_version = 1

    first = transform_fingerprint([Versioned(keys="image")])
    Versioned.cache_version = 2
    assert transform_fingerprint([Versioned(keys="image")]) != first
    assert transform_fingerprint([ScaleIntensityd(keys="image")]) != first
