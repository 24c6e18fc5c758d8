"""chest_xray's PNG/JPEG data path: the bundle's chain, disk-cache fill and cached loader against plain OpenCV.

Real chest X-rays are 1-3 MP 8-bit PNGs and JPEGs decoded to a few hundred pixels a side, so decoding dominates an
uncached epoch; the bundle caches the decoded, resized images on disk and trains from the cache. `chest_xray`
measures both against a plain cv2 + torch loader doing the same work, so a slow transform or a cache that does not
pay shows as a ratio.
"""

from __future__ import annotations

import itertools
import math
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from medbundle.benchmarks.common import PeakRSS, bundle_parser
from medbundle.benchmarks.report import Report

PLAIN = "cv2.imread grayscale + cv2 INTER_AREA aspect resize + centre zero pad (+ CLAHE) + float tensor"
FORMATS = {"png": (".png",), "jpeg": (".jpg", ".jpeg")}  # format: file suffixes, compared lower-case
BATCH_SIZE = 32
NOISE_STD = 0.01  # quantum noise of the synthetic sources (2.5 grey levels): PNGs compress like radiographs
CLAHE_CLIP, CLAHE_TILES = 2.0, 8  # medbundle.transforms.CLAHEd's defaults, which train.yaml keeps
PROFILED_IMAGES = 8  # images of each format behind the accuracy check and the per-transform profile

PLAIN_ROW = "plain"
UNCACHED = "bundle, no cache"
FILL = "bundle cache fill"
CACHED = "bundle cache read"
AUGMENTED = "bundle cache read + augmentation"
PIPELINES = (PLAIN_ROW, UNCACHED, FILL, CACHED, AUGMENTED)


def write_sources(folder: str | Path, n_images: int, source_shape: Sequence[int], seed: int = 0) -> Path:
    """A synthetic chest X-ray train split of `n_images` 8-bit PNGs and as many JPEGs (quality 95) of `source_shape`.

    The demo generator (`medbundle.demo.write_chest_xray_demo`) draws one small radiograph per class; each file is
    one of them enlarged to `source_shape` (rows, columns) with its own quantum noise, so files differ and compress
    like real ones without rendering megapixel images. Classes take turns. Layout: the bundle's
    ``folder/train/<Class Name>/{png,jpeg}_<n>.{png,jpg}``.

    Returns:
        `folder`, the ``dataset_dir`` to give the bundle.
    """
    from medbundle.data import CHEST_XRAY_CLASSES, chest_xray_datalist
    from medbundle.demo import write_chest_xray_demo
    from medbundle.io.image_file import read_grayscale

    folder = Path(folder)
    rows, cols = (int(side) for side in source_shape)
    with tempfile.TemporaryDirectory(prefix="medbundle_bench_render_") as rendered:
        write_chest_xray_demo(rendered, n_train=1, n_val=1, n_test=0, seed=seed, size_range=(256, 384))
        bases = {item["label"]: read_grayscale(item["image"])[0] for item in chest_xray_datalist(rendered, "train")}
    bases = {label: cv2.resize(image, (cols, rows), interpolation=cv2.INTER_CUBIC) for label, image in bases.items()}
    rng = np.random.default_rng(seed)
    for index in range(n_images):
        label = index % len(CHEST_XRAY_CLASSES)
        noisy = bases[label] + rng.normal(0.0, NOISE_STD, (rows, cols)).astype(np.float32)
        pixels = np.clip(np.rint(noisy * 255), 0, 255).astype(np.uint8)
        class_dir = folder / "train" / CHEST_XRAY_CLASSES[label]
        class_dir.mkdir(parents=True, exist_ok=True)
        for name, extension, params in (("png", ".png", []), ("jpeg", ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 95])):
            ok, encoded = cv2.imencode(extension, pixels, params)
            if not ok:
                raise RuntimeError(f"OpenCV could not encode a {name} of shape {pixels.shape}")
            encoded.tofile(class_dir / f"{name}_{index:05d}{extension}")
    return folder


def format_datalists(datalist: Sequence[dict], n_images: int) -> dict[str, list[dict]]:
    """The first `n_images` items of `datalist` per format of `FORMATS` (by file suffix); formats without files are
    left out, DICOMs ignored."""
    lists: dict[str, list[dict]] = {}
    for item in datalist:
        suffix = Path(item["image"]).suffix.lower()
        for name, suffixes in FORMATS.items():
            if suffix in suffixes and len(lists.setdefault(name, [])) < n_images:
                lists[name].append(item)
    return {name: lists[name] for name in FORMATS if lists.get(name)}


def plain_reference(path: str, image_size: Sequence[int], clahe: bool) -> np.ndarray:
    """The plain reference pipeline: the (1, H, W) float32 image in [0, 1] of `path` at `image_size` (rows, columns).

    What the bundle's ``cached_transforms`` do, written as one would without MONAI: ``cv2.imread`` as 8-bit grey,
    one scale factor fitting the image inside `image_size` (``INTER_AREA`` when shrinking, ``INTER_LINEAR`` when
    enlarging), the rest zero-padded, split evenly around the image; 8-bit CLAHE (clip 2, 8x8 tiles) when `clahe`.
    The bundle resizes a float image and this one the 8-bit image, so they differ by rounding (< 1/255; a few levels
    after CLAHE). OpenCV reads a 16-bit PNG as its top 8 bits, where the bundle scales by the significant bits: on
    such files the two differ in contrast, and the benchmark's note shows it.
    """
    gray = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if gray is None:
        raise FileNotFoundError(f"{path}: cv2.imread cannot read it; the plain reference reads PNG and JPEG files")
    out_h, out_w = (int(side) for side in image_size)
    height, width = gray.shape
    scale = min(out_h / height, out_w / width)
    new_h, new_w = min(out_h, max(1, round(height * scale))), min(out_w, max(1, round(width * scale)))
    if (new_h, new_w) != (height, width):
        interpolation = cv2.INTER_AREA if new_h < height or new_w < width else cv2.INTER_LINEAR
        gray = cv2.resize(gray, (new_w, new_h), interpolation=interpolation)
    top, left = (out_h - new_h) // 2, (out_w - new_w) // 2
    gray = cv2.copyMakeBorder(gray, top, out_h - new_h - top, left, out_w - new_w - left, cv2.BORDER_CONSTANT, value=0)
    if clahe:
        gray = cv2.createCLAHE(clipLimit=CLAHE_CLIP, tileGridSize=(CLAHE_TILES, CLAHE_TILES)).apply(gray)
    return gray[None].astype(np.float32) / np.float32(255)


class PlainChestXray(torch.utils.data.Dataset):
    """`plain_reference` images and their labels as (image tensor, label), for a plain torch DataLoader."""

    def __init__(self, data: Sequence[dict], image_size: Sequence[int], clahe: bool) -> None:
        self.paths = [str(item["image"]) for item in data]
        self.labels = [int(item["label"]) for item in data]
        self.image_size, self.clahe = list(image_size), clahe

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return torch.from_numpy(plain_reference(self.paths[index], self.image_size, self.clahe)), self.labels[index]


def transform_profile(
    transforms: Sequence[Callable], items: Sequence[dict], repeats: int = 1
) -> list[tuple[str, float]]:
    """(class name, CPU milliseconds per item) of each transform of `transforms` applied in order to each of `items`:
    for each transform the lowest of `repeats` passes' means, after one untimed warm-up item (imports, codec set-up).
    CPU time of this process, so that other processes on the machine do not inflate it; random transforms count at
    their probability."""
    from monai.transforms import apply_transform

    def apply(item: dict, seconds: list[float]) -> None:
        data = dict(item)
        for k, transform in enumerate(transforms):
            start = time.process_time()
            data = apply_transform(transform, data)
            seconds[k] += time.process_time() - start

    apply(items[0], [0.0] * len(transforms))
    best = [math.inf] * len(transforms)
    for _ in range(repeats):
        seconds = [0.0] * len(transforms)
        for item in items:
            apply(item, seconds)
        best = [min(b, s) for b, s in zip(best, seconds)]
    return [(type(t).__name__, 1000 * s / len(items)) for t, s in zip(transforms, best)]


def _loader_pass(dataset: torch.utils.data.Dataset, workers: int, plain: bool) -> Callable[[], None]:
    """One pass over `dataset` in batches of `BATCH_SIZE`, workers started anew each pass as the bundle's loaders do
    (``persistent_workers: false``): a plain torch DataLoader for the reference, MONAI's (the bundle's) otherwise."""
    from monai.data import DataLoader

    loader_class = torch.utils.data.DataLoader if plain else DataLoader
    loader = loader_class(dataset, batch_size=BATCH_SIZE, shuffle=False, num_workers=workers)
    return lambda: [None for _ in loader]


def _worker_counts(workers: int) -> list[int]:
    return sorted({0, workers})


def _seconds(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


class _Chains:
    """train.yaml's transform lists at the benchmark's settings and the datasets the bundle builds from them."""

    def __init__(self, parser) -> None:
        self.cached = parser.get_parsed_content("cached_transforms")
        self.deterministic = self.cached + parser.get_parsed_content("uncached_transforms")
        self.augmented = self.deterministic + parser.get_parsed_content("random_transforms")

    def cached_dataset(self, data: list[dict], cache_dir: Path, processes: int, augment: bool):
        """``medbundle.data.cached_dataset`` as train.yaml (`augment`) or its validation builds it; fills the cache."""
        from monai.transforms import Compose

        from medbundle.data import cached_dataset

        chain = Compose(self.augmented if augment else self.deterministic)
        return cached_dataset(data, chain, cache_dir=cache_dir, num_workers=processes, progress=False,
                              cache_n_trans=len(self.cached))


def _format_runs(name: str, data: list[dict], chains: _Chains, image_size: list[int], clahe: bool, workers: int,
                 work: Path) -> dict:
    """The timed run of each pipeline and worker count on the images `data` of format `name`, keyed (name, pipeline,
    workers); the cached rows read a cache filled here, untimed."""
    from monai.data import Dataset
    from monai.transforms import Compose

    cache = work / f"cache_{name}"
    datasets = {
        PLAIN_ROW: PlainChestXray(data, image_size, clahe),
        UNCACHED: Dataset(data, Compose(chains.deterministic)),
        AUGMENTED: chains.cached_dataset(data, cache, workers, augment=True),
        CACHED: chains.cached_dataset(data, cache, workers, augment=False),
    }
    fills = itertools.count()
    runs = {}
    for pipeline, w in itertools.product(PIPELINES, _worker_counts(workers)):
        if pipeline == FILL:
            runs[name, pipeline, w] = lambda w=w: chains.cached_dataset(data, work / f"fill{next(fills)}", w, True)
        else:
            runs[name, pipeline, w] = _loader_pass(datasets[pipeline], w, pipeline == PLAIN_ROW)
    return runs


def _format_notes(name: str, data: list[dict], chains: _Chains, image_size: list[int], clahe: bool, repeats: int,
                  work: Path) -> list[str]:
    """Fidelity of the plain reference, cache size and per-transform cost, on the first `PROFILED_IMAGES` images."""
    from monai.transforms import Compose

    sample = data[:PROFILED_IMAGES]
    chain = Compose(chains.deterministic)
    difference = max(np.abs(np.asarray(chain(dict(item))["image"], np.float32)
                            - plain_reference(item["image"], image_size, clahe)).max() for item in sample)
    cache_kb = sum(f.stat().st_size for f in (work / f"cache_{name}").glob("*.pt")) / len(data) / 1024
    profile = transform_profile(chains.augmented, sample, repeats)
    imread = [{"image": item["image"]} for item in sample]
    imread_ms = transform_profile([lambda d: cv2.imread(d["image"], cv2.IMREAD_GRAYSCALE)], imread, repeats)[0][1]
    fidelity = (f"{name}: plain vs bundle output, max abs difference {difference:.4f} over {len(sample)} images "
                f"(the bundle resizes in float, plain in 8 bits, and the bundle caches float16); cache "
                f"{cache_kb:.0f} KB per image")
    steps = ", ".join(f"{transform} {ms:.2f}" for transform, ms in profile)
    return [fidelity, f"{name} bundle chain, CPU ms per image: {steps}; plain cv2.imread alone {imread_ms:.2f}"]


def _worker_start_note(workers: int, repeats: int, rows: list[dict]) -> list[str]:
    """What starting `workers` DataLoader workers costs, against the cached pass that pays it."""
    from monai.data import DataLoader

    if not workers:
        return []
    start_s = min(_seconds(lambda: list(DataLoader(range(workers), batch_size=1, num_workers=workers)))
                  for _ in range(repeats))
    shares = [f"{row['format']} {100 * start_s / row['seconds']:.0f} %" for row in rows
              if row["pipeline"] == CACHED and row["workers"] == workers]
    return [(f"starting {workers} DataLoader workers takes {start_s:.2f} s, paid by every {workers}-worker pass (and "
             f"by the bundle every epoch, persistent_workers: false): {', '.join(shares)} of the cache-read pass")]


def chest_xray(
    dataset_dir: str | None = None,
    image_size: tuple[int, int] | None = None,
    source_shape: tuple[int, int] = (1536, 1280),
    n_images: int = 150,
    workers: int = 2,
    repeats: int = 5,
    threads: int = 1,
    clahe: bool | None = None,
) -> Report:
    """Images/s of the chest_xray bundle's PNG and JPEG data path, uncached and cached, against plain OpenCV + torch.

        python scripts/benchmark.py chest_xray
        python scripts/benchmark.py chest_xray --dataset_dir /data/lungs --n_images 500

    Per format (png, jpeg) every pipeline loads the same `n_images` train images through a DataLoader (batch 32,
    workers started anew each pass as the bundle's loaders do) with 0 and `workers` workers:
    `bundle, no cache`: train.yaml's ``cached_transforms + uncached_transforms`` (GrayscaleReader decode, aspect
    resize + pad, CLAHE when on, float16 cast and back) in a MONAI Dataset, what every epoch costs without a cache;
    `bundle cache fill`: ``medbundle.data.cached_dataset`` filling an empty cache folder with `workers` (or 0)
    processes, as the bundle does before its first epoch; `bundle cache read`: the filled cache without augmentation
    (what validation reads); `bundle cache read + augmentation`: the filled cache through train.yaml's
    ``random_transforms``, what training sees; `plain`: `plain_reference` (cv2.imread grey, the same aspect resize +
    centre pad with cv2, CLAHE when on, float tensor) in a plain torch DataLoader. Every figure is the best of
    `repeats` passes, interleaved across pipelines so that load from other processes hits all alike. Columns: images/s
    (wall clock), its ratio over plain (same format and workers) and, for the cached rows, over `bundle, no cache`
    (the cache should be >= 20x faster than decoding); the same for images per CPU second (this process and its
    workers: the cost, which other processes on a shared machine inflate far less than wall-clock time); the peak
    RSS during the pass (main process, and with its workers). Files are read from the page cache: disk reads are not
    timed. The notes give the largest difference between the plain and the bundle's output, the bundle's CPU cost per
    transform, the workers' start-up cost and the verdicts (per core: CPU time at 0 workers).

    Args:
        dataset_dir: a chest X-ray folder in the bundle's layout (its ``train`` split is used); default a synthetic
            set of `n_images` PNGs and JPEGs of `source_shape` (`write_sources`) in a temporary folder.
        image_size: the network's input (rows, columns); default train.yaml's (its model preset's).
        source_shape: (rows, columns) of the synthetic images; real chest X-rays have 1-3 MP.
        n_images: images per format.
        workers: DataLoader workers (and cache-fill processes) of the parallel runs.
        repeats: passes per figure.
        threads: torch and OpenCV threads of this process (1: images/s per core at 0 workers).
        clahe: CLAHE in the chain (and in the plain reference); default train.yaml's.
    """
    from medbundle.data import chest_xray_datalist

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    overrides = {"image_size": list(image_size)} if image_size else {}
    if clahe is not None:
        overrides["clahe"] = clahe
    parser = bundle_parser("chest_xray", **overrides)
    image_size, clahe = list(parser.get_parsed_content("image_size")), bool(parser.get_parsed_content("clahe"))
    chains = _Chains(parser)
    with tempfile.TemporaryDirectory(prefix="medbundle_bench_chest_xray_") as work:
        work = Path(work)
        source = Path(dataset_dir) if dataset_dir else write_sources(work / "data", n_images, source_shape)
        lists = format_datalists(chest_xray_datalist(source, "train"), n_images)
        if not lists:
            raise FileNotFoundError(f"{source / 'train'}: no PNG or JPEG image; pass --dataset_dir with the bundle's "
                                    "layout <dataset_dir>/train/<Class Name>/<image>")
        runs, notes = {}, []
        for name, data in lists.items():
            runs.update(_format_runs(name, data, chains, image_size, clahe, workers, work))
            notes += _format_notes(name, data, chains, image_size, clahe, repeats, work)
        megapixels = statistics.mean(
            np.prod(cv2.imread(item["image"], cv2.IMREAD_GRAYSCALE).shape) / 1e6
            for data in lists.values() for item in data[:PROFILED_IMAGES])
        seconds, cpu, peaks = _time_runs(runs, repeats, work)
    rows = _rows(lists, seconds, cpu, peaks, workers)
    notes += _worker_start_note(workers, repeats, rows) + _verdicts(rows)
    origin = f"dataset_dir {dataset_dir}" if dataset_dir else f"synthetic {source_shape[0]}x{source_shape[1]} 8-bit"
    return Report(
        name="chest_xray",
        title=(f"chest_xray PNG/JPEG data path: {', '.join(f'{len(d)} {n}' for n, d in lists.items())} images "
               f"({origin}, {megapixels:.1f} MP mean) to {image_size[0]}x{image_size[1]}, CLAHE "
               f"{'on' if clahe else 'off'}; images/s through a DataLoader (batch {BATCH_SIZE}, workers started each "
               f"pass), {threads} thread(s) in the main process, best of {repeats}; plain: {PLAIN}"),
        columns=[("format", "format"), ("pipeline", "pipeline"), ("workers", "workers"),
                 ("images_per_s", "images/s"), ("over_plain", "/ plain"), ("cached_over_uncached", "/ no cache"),
                 ("images_per_cpu_s", "images/CPU s"), ("cpu_over_plain", "CPU: / plain"),
                 ("cpu_cached_over_uncached", "CPU: / no cache"), ("rss_main_mb", "peak RSS MiB"),
                 ("rss_total_mb", "peak RSS MiB, with workers")],
        rows=rows,
        notes=notes,
        settings={"dataset_dir": dataset_dir, "image_size": image_size,
                  "source_shape": None if dataset_dir else list(source_shape), "n_images": n_images,
                  "workers": workers, "repeats": repeats, "threads": threads, "clahe": clahe,
                  "batch_size": BATCH_SIZE, "images": {name: len(data) for name, data in lists.items()}},
    )


def _cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and of its ended children: a pass's DataLoader workers and
    cache-fill processes are joined when it ends, so the difference over a pass counts all its work."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _time_runs(runs: dict, repeats: int, work: Path) -> tuple[dict, dict, dict]:
    """The best wall-clock seconds, the best CPU seconds and the highest peak RSS (a `PeakRSS`) of each run over
    `repeats` interleaved rounds; the cache folders the fills write (``work/fill*``) are removed after each fill."""
    seconds: dict = {}
    cpu: dict = {}
    peaks: dict = {}
    for _ in range(repeats):
        for key, run in runs.items():
            cpu_start = _cpu_seconds()
            with PeakRSS() as rss:
                elapsed = _seconds(run)
            used = _cpu_seconds() - cpu_start
            for folder in work.glob("fill*"):
                shutil.rmtree(folder)
            seconds[key], cpu[key] = min(seconds.get(key, elapsed), elapsed), min(cpu.get(key, used), used)
            best = peaks.get(key)
            peaks[key] = rss if best is None or rss.total_mb > best.total_mb else best
    return seconds, cpu, peaks


def _rows(lists: dict[str, list[dict]], seconds: dict, cpu: dict, peaks: dict, workers: int) -> list[dict]:
    """One row per format, pipeline and worker count: images per wall-clock and per CPU second, with their ratios
    over plain and, for the cached rows, over the uncached chain."""
    rows = []
    for name, data in lists.items():
        for pipeline, w in itertools.product(PIPELINES, _worker_counts(workers)):
            key, cached = (name, pipeline, w), pipeline in (CACHED, AUGMENTED)
            rows.append({
                "format": name, "pipeline": pipeline, "workers": w,
                "images_per_s": len(data) / seconds[key],
                "over_plain": seconds[name, PLAIN_ROW, w] / seconds[key],
                "cached_over_uncached": seconds[name, UNCACHED, w] / seconds[key] if cached else None,
                "images_per_cpu_s": len(data) / cpu[key],
                "cpu_over_plain": cpu[name, PLAIN_ROW, w] / cpu[key],
                "cpu_cached_over_uncached": cpu[name, UNCACHED, w] / cpu[key] if cached else None,
                "rss_main_mb": peaks[key].main_mb, "rss_total_mb": peaks[key].total_mb,
                "seconds": seconds[key], "cpu_seconds": cpu[key],
            })
    return rows


def _verdicts(rows: list[dict]) -> list[str]:
    """Per format, per core (0 workers, in CPU time, which other processes do not inflate): is the bundle's chain
    as fast as plain, and is training from the cache >= 20x faster than decoding."""
    verdicts = []
    for row in rows:
        if row["workers"] == 0 and row["pipeline"] == UNCACHED:
            verdict = "ok" if row["cpu_over_plain"] >= 0.8 else "SLOWER than plain: see the profile"
            verdicts.append(f"{row['format']}, per core (CPU time): the bundle's uncached chain runs at "
                            f"{row['cpu_over_plain']:.2f}x plain ({verdict})")
        if row["workers"] == 0 and row["pipeline"] == AUGMENTED:
            met = "met" if row["cpu_cached_over_uncached"] >= 20 else "NOT met: see the profile"
            verdicts.append(f"{row['format']}, per core (CPU time): training from the cache runs at "
                            f"{row['cpu_cached_over_uncached']:.1f}x the uncached chain (target >= 20x: {met})")
    return verdicts
