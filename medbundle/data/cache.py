"""Decode and preprocess every image once, into a persistent on-disk cache, before training starts."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from copy import deepcopy
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import CacheNTransDataset, PersistentDataset
from monai.data.utils import SUPPORTED_PICKLE_MOD
from monai.transforms import Compose
from monai.utils import convert_to_tensor, look_up_option
from torch.utils.data import DataLoader, Dataset

from medbundle.io.atomic_file import atomic_write
from medbundle.io.split_csv import replace_split_rows
from medbundle.progress import progress as iterate

__all__ = ["cached_dataset", "transform_fingerprint"]

logger = logging.getLogger(__name__)

SKIPPED_CSV = "skipped.csv"  # in `skipped_dir`: the images `cached_dataset` skipped, one row per image and split
_SKIPPED_COLUMNS = ("split", "image", "image_id", "reason")


# private attributes that hold settings: LoadImaged keeps its LoadImage (and so the readers' target_size and
# reduced_decode) as `_loader`
_PRIVATE_SETTINGS = ("_loader",)


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
    attrs = {k: v for k, v in vars(value).items()
             if (not k.startswith("_") or k in _PRIVATE_SETTINGS) and k not in ("R", "logger")}
    if getattr(type(value), "cache_version", None) is not None:  # bumped by a class whose output changed
        attrs["cache_version"] = type(value).cache_version
    return {type(value).__qualname__: _plain(attrs, seen, depth + 1)} if hasattr(value, "__dict__") else str(type(value))


def transform_fingerprint(transforms: Sequence[Callable]) -> bytes:
    """Hash the configuration (class names and public attributes) of deterministic transforms.

    MONAI's `PersistentDataset` names cache files by the data item only, and its `json_hashing`
    of transforms falls back to class names, so changing e.g. the image size would silently reuse
    stale cache files. This fingerprint includes every public setting, so it changes when they do,
    and a class's ``cache_version`` attribute, which a class bumps when its output for the same
    settings changes (a new algorithm). It is the `hash_transform` of `cached_dataset`.
    """
    description = json.dumps(_plain(list(transforms), set()), sort_keys=True, default=str)
    return hashlib.md5(description.encode()).hexdigest().encode()


class _SafeCacheMixin:
    """`PersistentDataset._cachecheck` that rebuilds unreadable cache files and writes them atomically.

    MONAI (1.6) recomputes a cache file only when unpickling it fails; a truncated file (a run killed
    while copying it, a full disk) makes torch's zip reader raise instead, and so do empty files. And
    MONAI saves each file in the system temp folder and then moves it into the cache: when the two
    are on different file systems the move is a copy, which a second process filling the same cache
    (a DDP rank, a parallel run) can read half-written. Here any file that does not load with
    ``torch.load(weights_only=True)`` is recomputed and replaced, and every file is written under a
    unique temporary name next to its final name, then renamed into place (``os.replace``, atomic),
    so a reader sees either no file or a complete one. A process killed mid-write leaves only a
    ``.<name>.*.tmp`` file, which is never read.
    """

    def _cachecheck(self, item_transformed):
        if self.cache_dir is None:
            return self._pre_transform(deepcopy(item_transformed))
        hashfile = self.cache_dir / f"{self.hash_func(item_transformed).decode('utf-8')}{self.transform_hash}.pt"
        if hashfile.is_file():
            try:
                return torch.load(hashfile, weights_only=True)
            except OSError:
                raise
            except Exception as exc:  # noqa: BLE001 - whatever a corrupt file raises, it is rebuilt
                logger.warning("cache file %s is corrupt (%s); rebuilding it", hashfile, _first_line(exc))
        item = self._pre_transform(deepcopy(item_transformed))
        stored = convert_to_tensor(item, convert_numeric=False, track_meta=self.track_meta)
        pickle_module = look_up_option(self.pickle_module, SUPPORTED_PICKLE_MOD)
        try:
            with atomic_write(hashfile) as stream:
                torch.save(stored, stream, pickle_module=pickle_module, pickle_protocol=self.pickle_protocol)
        except PermissionError:  # as in MONAI (issue #3613): e.g. Windows, where another process holds the file
            pass
        return item


class _SafePersistentDataset(_SafeCacheMixin, PersistentDataset):
    """`PersistentDataset` with the corruption- and race-safe cache of `_SafeCacheMixin`."""


class _SafeCacheNTransDataset(_SafeCacheMixin, CacheNTransDataset):
    """`CacheNTransDataset` with the corruption- and race-safe cache of `_SafeCacheMixin`."""


def _persistent(data: list[dict], transform: Compose, cache_dir: str | Path, cache_n_trans: int | None) -> PersistentDataset:
    # cached items come back as plain tensors (loaded with weights_only=True); end the cached part of the
    # chain with EnsureTyped(track_meta=False) so freshly computed items have the same types
    if cache_n_trans is None:
        return _SafePersistentDataset(data, transform, cache_dir, hash_transform=transform_fingerprint)
    return _SafeCacheNTransDataset(data, transform, cache_n_trans, cache_dir, hash_transform=transform_fingerprint)


def _first_line(exc: BaseException) -> str:
    """``Type: first line of the message``."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _root_cause(exc: BaseException, image: str) -> str:
    """The first line of the deepest exception in ``exc``'s ``__cause__`` chain that names ``image``.

    Readers raise errors that name the file, say what is wrong and what to do; MONAI wraps them in
    "applying transform ..." errors that name neither. Without such an error, the deepest one.

    Args:
        exc: the exception raised while preprocessing the item.
        image: the item's image path ("" when it has none).
    """
    chain = [exc]
    while chain[-1].__cause__ is not None:
        chain.append(chain[-1].__cause__)
    naming = [error for error in chain if image and image in str(error)]
    return _first_line(naming[-1] if naming else chain[-1])


class _Probe(Dataset):
    """Load `dataset[i]` (filling its cache) and report a failure's root cause instead of raising, for the warm-up;
    with `record_key`, also the item's record under that key (e.g. what the breast crop did)."""

    def __init__(self, dataset: PersistentDataset, record_key: str | None = None) -> None:
        self.dataset = dataset
        self.record_key = record_key

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[int, str | None, Any]:
        try:
            item = self.dataset[index]
        except Exception as exc:  # noqa: BLE001 - reported per item; the caller decides to skip or raise
            return index, _root_cause(exc, str(self.dataset.data[index].get("image", ""))), None
        return index, None, None if self.record_key is None else item.get(self.record_key)


def cached_dataset(
    data: Sequence[dict],
    transform: Compose,
    cache_dir: str | Path,
    num_workers: int = 0,
    skip_bad_images: bool = False,
    progress: bool = True,
    name: str = "dataset",
    cache_n_trans: int | None = None,
    skipped_dir: str | Path | None = None,
    record_key: str | None = None,
) -> PersistentDataset:
    """Build a `PersistentDataset` and fill its cache up front, in parallel, with a progress bar.

    Decoding a compressed mammogram takes ~0.4 s; doing it once, before the first epoch, in
    `num_workers` processes, means every epoch (and every later run with the same preprocessing)
    reads preprocessed tensors from `cache_dir`. The warm-up also finds unreadable images before
    training starts: they raise an error naming the file, or with `skip_bad_images` are dropped,
    counted in the log and listed in ``skipped_dir/skipped.csv``.

    Cache files that do not load (truncated, garbage) are rebuilt, and several processes may fill
    one `cache_dir` at once (see `_SafeCacheMixin`); files load with ``torch.load(weights_only=True)``.

    Args:
        data: the datalist (one dict per image).
        transform: full chain; everything before its first random transform is cached, or exactly the
            first `cache_n_trans` transforms when given. The latter lets the cached part end with a cast
            to a compact dtype (float16 halves the cache) that a later, uncached transform undoes.
        cache_dir: where cache files go; their names include the preprocessing fingerprint
            (`transform_fingerprint`), so changed settings never reuse stale files.
        num_workers: processes for the warm-up.
        skip_bad_images: drop items whose preprocessing fails instead of raising.
        progress: show progress (a bar in a terminal, log lines otherwise).
        name: label for the bar, the log and the ``split`` column of skipped.csv ("train", "validation").
        cache_n_trans: number of leading transforms to cache (MONAI `CacheNTransDataset`).
        skipped_dir: folder of ``skipped.csv`` (columns split, image, image_id, reason), written with
            `skip_bad_images`; the rows of split `name` are replaced on every run, other splits' rows
            kept. None writes no file.
        record_key: an item key whose value the warm-up collects from every preprocessed item (cached or
            not), e.g. the record ``BreastCropd(record_key=...)`` adds, so a run can report on its whole split
            without reading the cache again.

    Returns:
        a PersistentDataset over the items that preprocess without error; with `record_key`, its ``records``
        attribute lists their values, in the order of its ``data`` (None for an item without the key).

    Raises:
        RuntimeError: without `skip_bad_images`, when items fail; the last line of the message is the
            first failure's root cause, naming its file.
    """
    dataset = _persistent(list(data), transform, cache_dir, cache_n_trans)
    loader = DataLoader(
        _Probe(dataset, record_key), batch_size=1, num_workers=num_workers, collate_fn=lambda batch: batch[0]
    )
    failures, records = {}, {}
    for index, error, record in iterate(loader, total=len(dataset), desc=f"caching {name}", unit="img", enabled=progress):
        if error is not None:
            failures[index] = error
        records[index] = record
    if failures and not skip_bad_images:
        raise RuntimeError(_failure_message(data, failures, name))
    if skip_bad_images and skipped_dir is not None:
        _write_skipped(Path(skipped_dir) / SKIPPED_CSV, name, [(data[i], reason) for i, reason in failures.items()])
    if failures:
        details = "; ".join(_named(data[i], reason) for i, reason in list(failures.items())[:5])
        listed = f" (all listed in {Path(skipped_dir) / SKIPPED_CSV})" if skipped_dir is not None else ""
        logger.warning(
            "skipped %d of %d %s images that could not be read or preprocessed%s: %s",
            len(failures), len(data), name, listed, details,
        )
        dataset = _persistent([d for i, d in enumerate(data) if i not in failures], transform, cache_dir, cache_n_trans)
    if record_key is not None:
        dataset.records = [records[i] for i in range(len(data)) if i not in failures]
    return dataset


def _image(item: dict) -> str:
    """The item's image path, as a string ("" when absent)."""
    return str(item.get("image", ""))


def _failure_message(data: Sequence[dict], failures: dict[int, str], name: str) -> str:
    """The `cached_dataset` error: a count, other failures, and last the first failure naming its file.

    The last line is ``<image>: <root cause>`` followed, when the root cause does not already say so,
    by what to do, so that the last line a user sees names the file.
    """
    lines = [f"{len(failures)} of {len(data)} {name} images could not be read or preprocessed:"]
    (first, first_reason), *others = failures.items()
    lines += [f"  {_named(data[i], reason)}" for i, reason in others[:4]]
    if len(others) > 4:
        lines.append(f"  ... and {len(others) - 4} more")
    last = _named(data[first], first_reason)
    if "skip_bad_images" not in last:
        last += " Fix or remove it, or set skip_bad_images: true to skip and count unreadable images."
    return "\n".join([*lines, last])


def _named(item: dict, reason: str) -> str:
    """``reason``, prefixed with the item's image path unless it already names it."""
    image = _image(item)
    return reason if image and image in reason else f"{image}: {reason}"


def _write_skipped(path: Path, split: str, skipped: list[tuple[dict, str]]) -> None:
    """Replace the rows of ``split`` in the skipped-images CSV at ``path``, keeping other splits' rows.

    Args:
        path: the CSV file.
        split: the split name (``cached_dataset``'s `name`).
        skipped: ``(item, reason)`` per skipped item.
    """
    rows = [{"image": _image(item), "image_id": str(item.get("image_id", "")), "reason": reason} for item, reason in skipped]
    replace_split_rows(path, split, rows, _SKIPPED_COLUMNS)
