"""isic's HDF5 data path and trainer: JPEG crops from one HDF5 file, against plain h5py + OpenCV and a plain loop."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from medbundle.benchmarks.common import (
    best_seconds,
    bundle_parser,
    epoch_timer,
    write_sized_set,
)
from medbundle.benchmarks.report import Report

BATCH_SIZE = 32
def loader_images_per_s(dataset, workers: int, repeats: int, batch_size: int = BATCH_SIZE) -> float:
    """Images/s of one pass over `dataset` (best of `repeats`) through MONAI's DataLoader (list_data_collate),
    workers started anew each pass as the bundles' loaders do (``persistent_workers: false``)."""
    from monai.data import DataLoader

    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers)
    return len(dataset) / best_seconds(lambda: [None for _ in loader], repeats)


class PlainCrops(torch.utils.data.Dataset):
    """The reference loader: h5py bytes, cv2.imdecode, BGR to RGB, INTER_AREA resize, float (3, H, W) in [0, 1].

    The HDF5 file is opened lazily in each process; a handle inherited through fork is closed first,
    as `medbundle.io.open_hdf5` does, so HDF5 does not hand the parent's file back.
    """

    def __init__(self, file: str, keys: list[str], image_size: list[int]) -> None:
        self.file, self.keys, self.size = file, keys, (image_size[1], image_size[0])  # cv2 takes (width, height)
        self.handle, self.pid = None, None

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int) -> torch.Tensor:
        import cv2
        import h5py
        import numpy as np

        if self.pid != os.getpid():
            if self.handle is not None:
                self.handle.close()
            self.handle, self.pid = h5py.File(self.file, "r"), os.getpid()
        data = self.handle[self.keys[index]][()]
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        rgb = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self.size, interpolation=cv2.INTER_AREA)
        return torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255)


def _source_shape(member: str) -> tuple[int, int]:
    """(rows, columns) of the crop stored as the HDF5 member `member` ("<file>::<isic_id>")."""
    import cv2
    import numpy as np

    from medbundle.io.hdf5 import read_hdf5_bytes, split_hdf5_member

    data = read_hdf5_bytes(*split_hdf5_member(member))
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape[:2]


def isic(
    dataset_dir: str | None = None,
    image_size: tuple[int, int] = (224, 224),
    n_images: int = 2000,
    workers: int = 2,
    repeats: int = 3,
) -> Report:
    """Images/s of the isic bundle's deterministic preprocessing, without and with the disk cache, against plain code.

        python scripts/benchmark.py isic --image_size "[224,224]" --n_images 2000 --workers 2

    Every item goes through a DataLoader (batch 32, the bundle's collate) with 0 and `workers` workers:
    `no cache` is ``cached_dataset(cache_dir=None)``, the bundle's default; its warm-up probe (which decodes
    every image once at the start of every run) is timed apart. `disk cache` fills
    ``cached_dataset(cache_dir=..., cache_n_trans=len(cached_transforms))`` with `workers` processes, as the
    bundle does, then times reading the filled cache. `plain` is `PlainCrops` (h5py + cv2.imdecode + resize).
    Every figure is the best of `repeats` passes (the cache fill: of `repeats` fills of an empty folder). The
    notes say which bundle option was faster while the few cache files sit in RAM, and what disk the real
    400k-crop set would need for the cache.

    Args:
        dataset_dir: the Kaggle isic-2024-challenge folder (train-metadata.csv, train-image.hdf5); default a
            synthetic demo set of `n_images` crops written to a temporary folder.
        image_size: the bundle's input size (rows, columns).
        n_images: how many crops to load (the first ones of the CSV).
        workers: DataLoader workers of the parallel runs.
        repeats: passes per figure.
    """
    from monai.transforms import Compose

    from medbundle.benchmarks.common import PeakRSS
    from medbundle.data import cached_dataset
    from medbundle.io.hdf5 import split_hdf5_member

    with tempfile.TemporaryDirectory(prefix="medbundle_bench_isic_") as work:
        work = Path(work)
        dataset_dir = dataset_dir or write_sized_set("isic", work / "data", n_images)
        chains = {}  # as the bundle builds them: with a cache_dir the cached part ends in a float16 cast
        for cache in (False, True):
            parser = bundle_parser("isic", dataset_dir=dataset_dir, image_size=list(image_size),
                                   cache_dir=str(work / "cache") if cache else None)
            cached_transforms = parser.get_parsed_content("cached_transforms")
            chains[cache] = (Compose(cached_transforms + parser.get_parsed_content("uncached_transforms")),
                             len(cached_transforms))
        data = parser.get_parsed_content("datalist")[:n_images]

        def fill(cache_dir: Path | None):
            chain, cached_count = chains[cache_dir is not None]
            return cached_dataset(data, chain, cache_dir=cache_dir, num_workers=workers, progress=False,
                                  cache_n_trans=cached_count if cache_dir else None)

        start = time.perf_counter()
        uncached = fill(None)
        probe_s = time.perf_counter() - start
        fill_s = []
        with PeakRSS() as fill_rss:
            for k in range(repeats):
                start = time.perf_counter()
                fill(work / f"cache{k}")
                fill_s.append(time.perf_counter() - start)
        cached = fill(work / "cache0")
        file, _ = split_hdf5_member(data[0]["image"])
        plain = PlainCrops(file, [split_hdf5_member(d["image"])[1] for d in data], list(image_size))
        source_side = statistics.mean(side for item in data[:200] for side in _source_shape(item["image"]))
        rates = {
            name: {w: loader_images_per_s(dataset, w, repeats) for w in (0, workers)}
            for name, dataset in (("no cache", uncached), ("disk cache", cached), ("plain", plain))
        }
        cache_files = list((work / "cache0").rglob("*.pt"))
        cache_kb = sum(f.stat().st_size for f in cache_files) / len(cache_files) / 1024
        hdf5_kb = Path(file).stat().st_size / len(parser.get_parsed_content("datalist")) / 1024
    rows = []
    for name, per_workers in rates.items():
        for w, rate in per_workers.items():
            rows.append({"loader": name, "workers": w, "images_per_s": rate,
                         "over_plain": rate / rates["plain"][w], "over_no_cache": rate / rates["no cache"][w]})
    faster = "disk cache" if rates["disk cache"][workers] > rates["no cache"][workers] else "no cache"
    return Report(
        name="isic",
        title=(f"isic HDF5 data path: {len(data)} crops of ~{source_side:.0f} px ({hdf5_kb:.1f} KB JPEG each) to "
               f"{image_size[0]}x{image_size[1]}, DataLoader batch {BATCH_SIZE}, images/s best of {repeats} passes; "
               "plain: h5py + cv2.imdecode + resize"),
        columns=[("loader", "loader"), ("workers", "workers"), ("images_per_s", "images/s"),
                 ("over_plain", "/ plain"), ("over_no_cache", "/ no cache")],
        rows=rows,
        notes=[
            f"no-cache warm-up probe (decodes every crop once per run, {workers} workers): {probe_s:.2f} s",
            (f"disk cache fill ({workers} workers): {min(fill_s):.2f} s, {cache_kb:.1f} KB per crop, peak RSS "
             f"{fill_rss.total_mb} MiB with workers"),
            (f"faster at {workers} workers with the cache files in RAM: {faster}; the real 400k crops would need "
             f"{cache_kb * 400_000 / 2**20:.1f} GB of cache"),
        ],
        settings={"dataset_dir": dataset_dir, "image_size": list(image_size), "n_images": len(data),
                  "workers": workers, "repeats": repeats, "probe_s": probe_s, "cache_fill_s": min(fill_s),
                  "cache_kb_per_image": cache_kb, "fill_peak_rss_mb": fill_rss.total_mb},
    )


def isic_training(
    dataset_dir: str | None = None,
    image_size: tuple[int, int] = (64, 64),
    backbone: str = "resnet10t",
    batch_size: int = 32,
    num_workers: tuple[int, ...] = (0, 2),
    epochs: int = 3,
    n_images: int = 2000,
    disk_cache: bool = True,
) -> Report:
    """Training images/s of the isic bundle's real trainer against a plain loop over the same DataLoader.

        python scripts/benchmark.py isic_training --image_size "[64,64]" --num_workers "[0,2]"

    Per number of DataLoader workers, without the cache (the bundle's default) and, with `disk_cache`, with it
    (filled before training, not timed): `bundle` is train.yaml's SupervisedTrainer (data_fraction 1.0, no
    validation); `plain` the same DataLoader, network, optimizer and loss in a bare loop
    (`medbundle.benchmarks.training.plain_epoch`). Each rate is the fastest of `epochs` epochs: (batches per epoch
    x batch_size) / seconds.

    Args:
        dataset_dir: the Kaggle isic-2024-challenge folder; default a synthetic demo set of `n_images` crops.
        image_size: the bundle's input size (rows, columns).
        backbone: timm backbone, trained from scratch (pretrained false).
        batch_size: training batch size.
        num_workers: the DataLoader worker counts to run.
        epochs: epochs per run.
        n_images: crops of the synthetic set.
        disk_cache: also run with ``cache_dir`` set.
    """
    from medbundle.benchmarks.training import plain_epoch

    num_workers = (num_workers,) if isinstance(num_workers, int) else tuple(num_workers)
    rows = []
    with tempfile.TemporaryDirectory(prefix="medbundle_bench_isic_") as work:
        work = Path(work)
        dataset_dir = dataset_dir or write_sized_set("isic", work / "data", n_images)
        for cache in (False, True) if disk_cache else (False,):
            for workers in num_workers:
                bundle_root = work / f"bundle_{workers}_{int(cache)}"
                parser = bundle_parser(
                    "isic", dataset_dir=dataset_dir, bundle_root=str(bundle_root), image_size=list(image_size),
                    backbone=backbone, pretrained=False, batch_size=batch_size, accumulate_grad_batches=1,
                    num_workers=workers, epochs=epochs, val_interval=epochs + 1, data_fraction=1.0,
                    progress=False, cache_dir=str(bundle_root / "cache") if cache else None,
                )
                trainer = parser.get_parsed_content("train#trainer")
                times = epoch_timer(trainer)
                trainer.run()
                images = len(trainer.data_loader) * batch_size
                plain = plain_epoch(parser)
                plain_s = min(best_seconds(plain, 1) for _ in range(epochs))
                rows.append({"workers": workers, "cache": "disk cache" if cache else "no cache",
                             "images_per_epoch": images, "bundle": images / min(times), "plain": images / plain_s,
                             "over_plain": plain_s / min(times)})
    return Report(
        name="isic_training",
        title=(f"isic training images/s, {backbone} from scratch at {image_size[0]}x{image_size[1]}, batch {batch_size}, "
               f"best of {epochs} epochs; plain: the same DataLoader, network, AdamW and loss in a bare loop"),
        columns=[("workers", "workers"), ("cache", "cache"), ("images_per_epoch", "images/epoch"),
                 ("bundle", "bundle images/s"), ("plain", "plain images/s"), ("over_plain", "bundle / plain")],
        rows=rows,
        settings={"dataset_dir": dataset_dir, "image_size": list(image_size), "backbone": backbone,
                  "batch_size": batch_size, "num_workers": list(num_workers), "epochs": epochs, "n_images": n_images},
    )
