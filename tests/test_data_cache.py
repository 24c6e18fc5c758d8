from __future__ import annotations

import logging

import numpy as np
import pytest
from monai.transforms import Compose, LoadImaged, MapTransform, RandFlipd, ScaleIntensityd

from medbundle.data import cached_dataset, transform_fingerprint


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
    with pytest.raises(RuntimeError, match="broken.npy.*skip_bad_images"):
        cached_dataset(data, _chain(), tmp_path / "cache", progress=False)
    with caplog.at_level(logging.WARNING):
        dataset = cached_dataset(data, _chain(), tmp_path / "cache", skip_bad_images=True, progress=False)
    assert len(dataset) == 4
    assert "skipped 1 of 5" in caplog.text and "broken.npy" in caplog.text


def test_cache_n_trans_stores_the_compact_dtype_and_returns_the_working_one(tmp_path):
    import torch
    from monai.transforms import EnsureTyped

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
