"""Decode and preprocess every image once, into a persistent on-disk cache, before training starts."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import CacheNTransDataset, PersistentDataset
from monai.transforms import Compose
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

__all__ = ["cached_dataset", "transform_fingerprint"]

logger = logging.getLogger(__name__)


def _plain(value: Any, seen: set[int], depth: int = 0) -> Any:
    """A JSON-able, address-free description of a transform's configuration."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.ndarray, torch.Tensor, np.generic)):
        return np.asarray(value).tolist()
    if isinstance(value, (torch.dtype, np.dtype, type)):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v, seen, depth + 1) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [_plain(v, seen, depth + 1) for v in items]
    if callable(value) and not hasattr(value, "__dict__"):
        return getattr(value, "__qualname__", type(value).__qualname__)
    if id(value) in seen or depth > 8:
        return type(value).__qualname__
    seen.add(id(value))
    attrs = {k: v for k, v in vars(value).items() if not k.startswith("_") and k not in ("R", "logger")}
    return {type(value).__qualname__: _plain(attrs, seen, depth + 1)} if hasattr(value, "__dict__") else str(type(value))


def transform_fingerprint(transforms: Sequence[Callable]) -> bytes:
    """Hash the configuration (class names and public attributes) of deterministic transforms.

    MONAI's `PersistentDataset` names cache files by the data item only, and its `json_hashing`
    of transforms falls back to class names, so changing e.g. the image size would silently reuse
    stale cache files. This fingerprint includes every public setting, so it changes when they do.
    It is the `hash_transform` of `cached_dataset`.
    """
    description = json.dumps(_plain(list(transforms), set()), sort_keys=True, default=str)
    return hashlib.md5(description.encode()).hexdigest().encode()


def _persistent(data: list[dict], transform: Compose, cache_dir: str | Path, cache_n_trans: int | None) -> PersistentDataset:
    # cached items come back as plain tensors (loaded with weights_only=True); end the cached part of the
    # chain with EnsureTyped(track_meta=False) so freshly computed items have the same types
    if cache_n_trans is None:
        return PersistentDataset(data, transform, cache_dir, hash_transform=transform_fingerprint)
    return CacheNTransDataset(data, transform, cache_n_trans, cache_dir, hash_transform=transform_fingerprint)


class _Probe(Dataset):
    """Load `dataset[i]` (filling its cache) and report a failure instead of raising, for the warm-up."""

    def __init__(self, dataset: PersistentDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[int, str | None]:
        try:
            self.dataset[index]
        except Exception as exc:  # noqa: BLE001 - reported per item; the caller decides to skip or raise
            cause = exc
            while cause.__cause__ is not None:
                cause = cause.__cause__
            return index, f"{type(cause).__name__}: {cause}"
        return index, None


def cached_dataset(
    data: Sequence[dict],
    transform: Compose,
    cache_dir: str | Path,
    num_workers: int = 0,
    skip_bad_images: bool = False,
    progress: bool = True,
    name: str = "dataset",
    cache_n_trans: int | None = None,
) -> PersistentDataset:
    """Build a `PersistentDataset` and fill its cache up front, in parallel, with a progress bar.

    Decoding a compressed mammogram takes ~0.4 s; doing it once, before the first epoch, in
    `num_workers` processes, means every epoch (and every later run with the same preprocessing)
    reads preprocessed tensors from `cache_dir`. The warm-up also finds unreadable images before
    training starts: they raise an error naming the file, or with `skip_bad_images` are dropped
    and counted in the log.

    Args:
        data: the datalist (one dict per image).
        transform: full chain; everything before its first random transform is cached, or exactly the
            first `cache_n_trans` transforms when given. The latter lets the cached part end with a cast
            to a compact dtype (float16 halves the cache) that a later, uncached transform undoes.
        cache_dir: where cache files go; a sub-directory per preprocessing fingerprint is used.
        num_workers: processes for the warm-up.
        skip_bad_images: drop items whose preprocessing fails instead of raising.
        progress: show a tqdm bar.
        name: label for the bar and the log ("train", "validation").
        cache_n_trans: number of leading transforms to cache (MONAI `CacheNTransDataset`).

    Returns:
        a PersistentDataset over the items that preprocess without error.
    """
    dataset = _persistent(list(data), transform, cache_dir, cache_n_trans)
    loader = DataLoader(_Probe(dataset), batch_size=1, num_workers=num_workers, collate_fn=lambda batch: batch[0])
    failures = {}
    for index, error in tqdm(loader, total=len(dataset), desc=f"caching {name}", disable=not progress, unit="img"):
        if error is not None:
            failures[index] = error
    if failures:
        details = "; ".join(f"{data[i].get('image', i)}: {err}" for i, err in list(failures.items())[:5])
        if not skip_bad_images:
            raise RuntimeError(
                f"{len(failures)} of {len(data)} {name} images could not be read or preprocessed ({details}). "
                "Fix or remove them, or set skip_bad_images: true to skip and count them."
            )
        logger.warning("skipped %d of %d %s images that could not be read: %s", len(failures), len(data), name, details)
        dataset = _persistent([d for i, d in enumerate(data) if i not in failures], transform, cache_dir, cache_n_trans)
    return dataset
