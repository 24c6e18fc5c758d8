"""Benchmarks of the rsna and isic pipelines (python-fire).

    python scripts/benchmark.py dicom --folder ../shared/data/dicom
    python scripts/benchmark.py dicom_reduce --folder ../shared/data/dicom --image_size "[1024,512]"
    python scripts/benchmark.py training --image_size "[256,128]" --backbone resnet10t
    python scripts/benchmark.py isic --image_size "[224,224]" --n_images 2000 --workers 2
    python scripts/benchmark.py isic_training --image_size "[64,64]" --num_workers "[0,2]"
    python scripts/benchmark.py trainer_overhead --bundles "[rsna]" --batch_size 8 --threads 1

rsna: `dicom` measures decoding and the bundle's preprocessing chain in images/s; `dicom_reduce` compares it per
transfer syntax with reduced-resolution JPEG 2000 decoding on and off and with a plain pydicom + OpenCV pipeline.
`training` runs the bundle's real trainer (built from train.yaml) and reports the cache's effect (epoch 1 decodes into
the cache, epoch 2 reads it) and its throughput against a plain PyTorch/timm loop on the same images.

isic: `isic` loads every crop of the HDF5 file through the bundle's deterministic preprocessing in a
DataLoader, without a cache (the bundle's default, ``cache_dir: null``) and from the disk cache, against
a plain h5py + OpenCV loader, and says which default is faster. `isic_training` runs the bundle's real
trainer and reports its training images/s per number of DataLoader workers, with and without the cache.
Without --dataset_dir both write a synthetic demo set (`medbundle.demo.write_isic_demo`) to a temporary
folder. Timings are the best of `repeats` passes (isic) or of the epochs (isic_training).
"""

from __future__ import annotations

import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from multiprocessing import Pool
from pathlib import Path

import fire
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

BUNDLES = Path(__file__).resolve().parents[1] / "bundles"


def _parser(bundle: str = "rsna", **overrides):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(BUNDLES / bundle / "configs" / "train.yaml")])
    parser.update(overrides)
    return parser


def _preprocess(path: str, image_size: list[int]) -> float:
    from monai.transforms import Compose

    chain = Compose(_parser(image_size=image_size).get_parsed_content("cached_transforms"))
    start = time.perf_counter()
    chain({"image": path, "label": [0.0]})  # the chain also casts the label
    return time.perf_counter() - start


def dicom(folder: str = "../shared/data/dicom", image_size: tuple[int, int] = (1024, 512), workers: int = 1) -> dict:
    """Decode + VOI + crop + flip + resize + CLAHE every readable DICOM in `folder`; report images/s."""
    from medbundle.io import DicomReadError, read_dicom

    paths, skipped, decode_s, megapixels = [], 0, [], 0.0
    for path in sorted(Path(folder).glob("*.dcm")):
        start = time.perf_counter()
        try:
            image, _ = read_dicom(path)
        except DicomReadError:
            skipped += 1
            continue
        decode_s.append(time.perf_counter() - start)
        megapixels += image.size / 1e6
        paths.append(str(path))
    _preprocess(paths[0], list(image_size))  # warm imports
    start = time.perf_counter()
    with Pool(workers) as pool:
        per_image = pool.starmap(_preprocess, [(p, list(image_size)) for p in paths])
    wall = time.perf_counter() - start
    result = {
        "images": len(paths),
        "unreadable_skipped": skipped,
        "mean_megapixels": round(megapixels / len(paths), 2),
        "decode_only_images_per_s": round(len(paths) / sum(decode_s), 2),
        "decode_plus_preprocess_images_per_s_per_worker": round(len(paths) / sum(per_image), 2),
        "median_decode_plus_preprocess_s": round(statistics.median(per_image), 3),
        f"images_per_s_with_{workers}_workers": round(len(paths) / wall, 2),
    }
    return result


def _plain_dicom_reference(path: str, image_size: list[int]):
    """The plain reference pipeline: pydicom ``pixel_array``, modality + VOI LUT (pydicom's ``apply_voi_lut``), min-max
    to [0, 1], MONOCHROME1 inverted, one OpenCV ``INTER_AREA`` resize to `image_size`, 8-bit CLAHE (clip 2, 8x8 tiles)."""
    import cv2
    import numpy as np
    import pydicom
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    ds = pydicom.dcmread(path)
    values = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds).astype(np.float32)
    low, high = float(values.min()), float(values.max())
    image = (values - low) / max(high - low, 1e-6)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        image = 1.0 - image
    image = cv2.resize(image, (image_size[1], image_size[0]), interpolation=cv2.INTER_AREA)
    return cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(np.round(image * 255).astype(np.uint8))


def _reduce_chain(image_size: list[int], reduced_decode: bool):
    """The rsna bundle's ``cached_transforms`` (decode, crop, flip, resize, CLAHE) with the reader told the target size."""
    from monai.transforms import Compose

    parser = _parser(image_size=image_size)
    parser["cached_transforms#0#reader"] = {
        "_target_": "medbundle.io.MammoDicomReader", "target_size": "@image_size", "reduced_decode": reduced_decode,
    }
    return Compose(parser.get_parsed_content("cached_transforms"))


def _psnr(a, b) -> float:
    """PSNR in dB of two images in [0, 1]; inf when equal."""
    import numpy as np

    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def dicom_reduce(
    folder: str = "../shared/data/dicom",
    image_size: tuple[int, int] = (1024, 512),
    demo_shape: tuple[int, int] | None = (3000, 2400),
    demo_patients: int = 4,
    repeats: int = 3,
    threads: int = 1,
) -> str:
    """Decode + preprocess images/s per transfer syntax: reduced JPEG 2000 decoding on vs off vs a plain reference.

        python scripts/benchmark.py dicom_reduce --folder ../shared/data/dicom --image_size "[1024,512]"

    Every readable DICOM of `folder`, plus a synthetic RSNA demo set written at `demo_shape` (JPEG 2000 lossless,
    RLE and uncompressed files the size of real mammograms), goes through three pipelines in this process, each
    timed per file as the best of `repeats` interleaved runs: `on` and `off` are the rsna bundle's ``cached_transforms`` (decode,
    breast crop, flip, aspect resize, CLAHE) with ``MammoDicomReader(target_size=image_size, reduced_decode=...)``;
    `plain` is `_plain_dicom_reference` (pydicom + VOI + one cv2 resize + CLAHE, no crop). Images/s is files /
    summed best seconds. Accuracy of `on` against `off`: PSNR (the lowest of the syntax's files) and max abs
    difference of the bundle's output (crop found on each decode), of the same with BreastCrop's margin divided by
    ``2**reduce_level`` (the margin in source pixels, as at full resolution), and of the decoded image resized to
    `image_size` without cropping (the decoding effect alone).

    Args:
        folder: DICOM files (``*.dcm``); unreadable ones are counted and skipped.
        image_size: the bundle's input size (rows, columns).
        demo_shape: (rows, columns) of the demo images; None for no demo files.
        demo_patients: demo patients (4 images each, JPEG 2000 and RLE/uncompressed by site).
        repeats: timed runs per file and pipeline.
        threads: torch and OpenCV threads (1: images/s per core).

    Returns:
        A markdown table, one row per source and transfer syntax.
    """
    import copy

    import cv2
    import numpy as np
    import pydicom

    from medbundle.imaging import aspect_resize_pad
    from medbundle.io import DicomReadError, read_dicom
    from medbundle.transforms import BreastCropd

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    image_size = list(image_size)
    chains = {"on": _reduce_chain(image_size, True), "off": _reduce_chain(image_size, False)}
    with tempfile.TemporaryDirectory(prefix="medbundle_bench_dicom_") as work:
        sources = [("shared", sorted(Path(folder).glob("*.dcm")))]
        if demo_shape:
            from medbundle.demo import write_rsna_demo

            write_rsna_demo(Path(work), n_patients=demo_patients, n_test_patients=0, image_shape=tuple(demo_shape))
            sources.append((f"demo {demo_shape[0]}x{demo_shape[1]}", sorted(Path(work).rglob("*.dcm"))))
        rows, skipped = {}, 0
        for source, paths in sources:
            for path in map(str, paths):
                try:
                    full, meta = read_dicom(path)
                except DicomReadError:
                    skipped += 1
                    continue
                reduced, reduced_meta = read_dicom(path, image_size)
                seconds = {}
                runs = {name: (lambda c=chain, p=path: c({"image": p, "label": [0.0]})["image"])
                        for name, chain in chains.items()}
                runs["plain"] = lambda p=path: _plain_dicom_reference(p, image_size)
                outputs = {name: run() for name, run in runs.items()}  # warm-up, and the outputs compared below
                for _ in range(repeats):  # interleaved, so that load from other processes hits every pipeline alike
                    for name, run in runs.items():
                        seconds[name] = min(seconds.get(name, math.inf), _best_seconds(run, 1))
                level = reduced_meta["reduce_level"]
                source_margin = copy.deepcopy(chains["on"])
                for transform in source_margin.transforms:
                    if isinstance(transform, BreastCropd):
                        transform.cropper.margin = round(transform.cropper.margin / 2**level)
                outputs["on_source_margin"] = source_margin({"image": path, "label": [0.0]})["image"]
                on, off, on_margin = (np.asarray(outputs[k], np.float32) for k in ("on", "off", "on_source_margin"))
                resized = [aspect_resize_pad(image[None], image_size) for image in (full, reduced)]
                syntax = pydicom.uid.UID(meta["transfer_syntax_uid"]).name
                row = rows.setdefault((source, syntax), {"files": 0, "megapixels": 0.0, "levels": set(), "seconds": {},
                                                         "psnr": [], "max": [], "psnr_margin": [], "max_margin": [],
                                                         "psnr_resize": [], "max_resize": []})
                row["files"] += 1
                row["megapixels"] += full.size / 1e6
                row["levels"].add(level)
                for name, value in seconds.items():
                    row["seconds"][name] = row["seconds"].get(name, 0.0) + value
                row["psnr"].append(_psnr(on, off))
                row["max"].append(float(np.abs(on - off).max()))
                row["psnr_margin"].append(_psnr(on_margin, off))
                row["max_margin"].append(float(np.abs(on_margin - off).max()))
                row["psnr_resize"].append(_psnr(*resized))
                row["max_resize"].append(float(np.abs(resized[0] - resized[1]).max()))
    lines = [
        (f"decode + preprocess to {image_size[0]}x{image_size[1]}, images/s with {threads} thread(s), best of {repeats} "
         f"per file; on/off: rsna cached_transforms with reduced JPEG 2000 decoding on/off; plain: pydicom + VOI + cv2 "
         f"resize + CLAHE; {skipped} unreadable file(s) skipped"),
        "",
        ("| source | transfer syntax | files | MP | reduce level | on | off | plain | on/plain | off/plain "
         "| PSNR on vs off (dB) | max abs diff | PSNR, margin in source px | max abs diff | PSNR decode+resize "
         "| max abs diff |"),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (source, syntax), row in rows.items():
        rate = {name: row["files"] / value for name, value in row["seconds"].items()}
        lines.append(
            f"| {source} | {syntax} | {row['files']} | {row['megapixels'] / row['files']:.1f} "
            f"| {','.join(map(str, sorted(row['levels'])))} | {rate['on']:.2f} | {rate['off']:.2f} | {rate['plain']:.2f} "
            f"| {rate['on'] / rate['plain']:.2f} | {rate['off'] / rate['plain']:.2f} | {min(row['psnr']):.1f} "
            f"| {max(row['max']):.3f} | {min(row['psnr_margin']):.1f} | {max(row['max_margin']):.3f} "
            f"| {min(row['psnr_resize']):.1f} | {max(row['max_resize']):.3f} |"
        )
    return "\n".join(lines)


def _epoch_timer(trainer) -> list[float]:
    """Seconds of each training epoch, validation excluded (from EPOCH_STARTED to the last iteration)."""
    from ignite.engine import Events

    times: list[float] = []
    start = {}
    trainer.add_event_handler(Events.EPOCH_STARTED, lambda _: start.update(t=time.perf_counter()))
    trainer.add_event_handler(
        Events.ITERATION_COMPLETED,
        lambda e: e.state.iteration % e.state.epoch_length == 0 and times.append(time.perf_counter() - start["t"]),
    )
    return times


def _plain_timm_loop(backbone: str, images: torch.Tensor, labels: torch.Tensor, batch_size: int, steps: int) -> float:
    """Images/s of a bare timm + AdamW + BCE loop on in-memory tensors (no data loading at all)."""
    import timm

    model = timm.create_model(backbone, pretrained=False, num_classes=1, in_chans=1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    model.train()
    seen, start = 0, None
    for step in range(steps + 2):
        index = torch.randint(0, len(images), (batch_size,))
        if step == 2:
            start = time.perf_counter()  # two warm-up steps
        optimizer.zero_grad()
        loss_fn(model(images[index]), labels[index]).backward()
        optimizer.step()
        seen += batch_size if step >= 2 else 0
    return seen / (time.perf_counter() - start)


def training(
    dataset_dir: str | None = None,
    image_size: tuple[int, int] = (256, 128),
    backbone: str = "resnet10t",
    batch_size: int = 16,
    num_workers: int = 2,
    source_shape: tuple[int, int] = (2048, 1664),
    n_patients: int = 40,
) -> dict:
    """Time the bundle's trainer: cache fill + epoch 1, cached epoch 2, and a plain timm loop."""
    from medbundle.demo import write_rsna_demo

    work = Path(tempfile.mkdtemp(prefix="medbundle_bench_"))
    if dataset_dir is None:
        dataset_dir = str(work / "data")
        write_rsna_demo(dataset_dir, n_patients=n_patients, image_shape=tuple(source_shape), positive_rate=0.1)
    parser = _parser(
        dataset_dir=dataset_dir, bundle_root=str(work / "bundle"), image_size=list(image_size), backbone=backbone,
        pretrained=False, head="linear", batch_size=batch_size, num_workers=num_workers, epochs=2, n_folds=4,
        progress=False, val_interval=100,
    )
    start = time.perf_counter()
    dataset = parser.get_parsed_content("train#dataset")
    cache_fill = time.perf_counter() - start
    trainer = parser.get_parsed_content("train#trainer")
    epochs = _epoch_timer(trainer)
    trainer.run()
    images_per_epoch = len(trainer.data_loader) * batch_size
    cached = [dataset[i] for i in range(min(len(dataset), 64))]
    images = torch.stack([torch.as_tensor(d["image"]) for d in cached])
    labels = torch.stack([torch.as_tensor(d["label"]) for d in cached]).float()
    plain = _plain_timm_loop(backbone, images, labels, batch_size, steps=len(trainer.data_loader))
    bundle_rate = images_per_epoch / epochs[1]
    cache_files = list((work / "bundle" / "cache").rglob("*.pt"))
    result = {
        "train_images": len(dataset),
        "source_shape": list(source_shape),
        "image_size": list(image_size),
        "cache_fill_s (decode+preprocess, once)": round(cache_fill, 1),
        "epoch1_s (cache fill + epoch)": round(cache_fill + epochs[0], 1),
        "epoch2_s (cached)": round(epochs[1], 1),
        "cache_kb_per_image": round(sum(f.stat().st_size for f in cache_files) / len(cache_files) / 1024, 1),
        "bundle_images_per_s": round(bundle_rate, 1),
        "plain_timm_images_per_s": round(plain, 1),
        "bundle_over_plain": round(bundle_rate / plain, 2),
    }
    return result


# ---- isic ------------------------------------------------------------------------------------------------

ISIC_BATCH_SIZE = 32
ISIC_LESIONS_PER_PATIENT = 10  # every demo patient gets this many crops, so n_images crops need n_images / 10 patients


def _write_isic_demo(out: Path, n_images: int) -> str:
    """A synthetic ISIC 2024 set of at least `n_images` train crops of 100-200 px (real crops: ~130 px JPEGs)."""
    from medbundle.demo import write_isic_demo

    write_isic_demo(
        out, seed=0, n_patients=max(3, math.ceil(n_images / ISIC_LESIONS_PER_PATIENT)), positive_rate=0.05,
        n_test=0, lesions_per_patient=(ISIC_LESIONS_PER_PATIENT, ISIC_LESIONS_PER_PATIENT), size_range=(100, 200),
    )
    return str(out)


def _best_seconds(run: Callable[[], object], repeats: int) -> float:
    """The shortest of `repeats` timed calls of `run`."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def _loader_images_per_s(dataset, workers: int, repeats: int) -> float:
    """Images/s of one pass over `dataset` in batches of 32 (best of `repeats`) through the bundle's loader,
    MONAI's DataLoader (collate: list_data_collate), workers started anew each pass as the bundle's loaders
    do (``persistent_workers: false``)."""
    from monai.data import DataLoader

    loader = DataLoader(dataset, batch_size=ISIC_BATCH_SIZE, shuffle=False, num_workers=workers)
    return len(dataset) / _best_seconds(lambda: [None for _ in loader], repeats)


class _PlainCrops(torch.utils.data.Dataset):
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
) -> dict:
    """Images/s of the isic bundle's deterministic preprocessing, without and with the disk cache, against plain code.

    Every item goes through a DataLoader (batch 32, the bundle's collate) with 0 and `workers` workers:
    `nocache` is ``cached_dataset(cache_dir=None)``, the bundle's default; its warm-up probe (which decodes
    every image once at the start of every run) is timed apart, not in the throughput. `cached` fills
    ``cached_dataset(cache_dir=..., cache_n_trans=len(cached_transforms))`` with `workers` processes, as the
    bundle does, then times reading the filled cache. `plain` is `_PlainCrops`. Every figure is the best of
    `repeats` passes (the cache fill: of `repeats` fills of an empty folder). `faster_from_page_cache` compares
    the two bundle options at `workers` workers while the few cache files sit in RAM; `cache_gb_for_400k_crops`
    is what the real data set would need on disk, where reads are far slower.

    Args:
        dataset_dir: the Kaggle isic-2024-challenge folder (train-metadata.csv, train-image.hdf5); default a
            synthetic demo set of `n_images` crops written to a temporary folder.
        image_size: the bundle's input size (rows, columns).
        n_images: how many crops to load (the first ones of the CSV).
        workers: DataLoader workers of the parallel runs.
        repeats: passes per figure.
    """
    from monai.transforms import Compose

    from medbundle.data import cached_dataset
    from medbundle.io.hdf5 import split_hdf5_member

    with tempfile.TemporaryDirectory(prefix="medbundle_bench_isic_") as work:
        work = Path(work)
        dataset_dir = dataset_dir or _write_isic_demo(work / "data", n_images)
        parser = _parser("isic", dataset_dir=dataset_dir, image_size=list(image_size))
        data = parser.get_parsed_content("datalist")[:n_images]
        cached_transforms = parser.get_parsed_content("cached_transforms")
        chain = Compose(cached_transforms + parser.get_parsed_content("uncached_transforms"))

        def fill(cache_dir: Path | None):
            return cached_dataset(data, chain, cache_dir=cache_dir, num_workers=workers, progress=False,
                                  cache_n_trans=len(cached_transforms) if cache_dir else None)

        start = time.perf_counter()
        uncached = fill(None)
        probe_s = time.perf_counter() - start
        fill_s = []
        for k in range(repeats):
            start = time.perf_counter()
            fill(work / f"cache{k}")
            fill_s.append(time.perf_counter() - start)
        cached = fill(work / "cache0")
        file, _ = split_hdf5_member(data[0]["image"])
        plain = _PlainCrops(file, [split_hdf5_member(d["image"])[1] for d in data], list(image_size))
        source_side = statistics.mean(side for item in data[:200] for side in _source_shape(item["image"]))
        rates = {
            name: {w: _loader_images_per_s(dataset, w, repeats) for w in (0, workers)}
            for name, dataset in (("nocache", uncached), ("cached", cached), ("plain", plain))
        }
        cache_files = list((work / "cache0").rglob("*.pt"))
        cache_kb = sum(f.stat().st_size for f in cache_files) / len(cache_files) / 1024
        hdf5_kb = Path(file).stat().st_size / len(parser.get_parsed_content("datalist")) / 1024
    result = {
        "images": len(data),
        "mean_source_side_px": round(source_side),
        "image_size": list(image_size),
        "hdf5_kb_per_image": round(hdf5_kb, 1),
        "timing": f"best of {repeats}",
        "nocache_dataset": "medbundle.data.cached_dataset(cache_dir=None)",
        f"nocache_warmup_probe_s (decode all, {workers} workers)": round(probe_s, 2),
        f"cache_fill_s ({workers} workers)": round(min(fill_s), 2),
        "cache_kb_per_image": round(cache_kb, 1),
    }
    for name, per_workers in rates.items():
        for w, rate in per_workers.items():
            result[f"{name}_images_per_s_{w}_workers"] = round(rate, 1)
    for w in (0, workers):
        result[f"bundle_over_plain_{w}_workers"] = round(rates["nocache"][w] / rates["plain"][w], 2)
        result[f"cached_over_uncached_{w}_workers"] = round(rates["cached"][w] / rates["nocache"][w], 2)
    result["faster_from_page_cache"] = "disk cache" if rates["cached"][workers] > rates["nocache"][workers] else "no cache"
    result["cache_gb_for_400k_crops"] = round(cache_kb * 400_000 / 2**20, 1)
    return result


def isic_training(
    dataset_dir: str | None = None,
    image_size: tuple[int, int] = (64, 64),
    backbone: str = "resnet10t",
    batch_size: int = 32,
    num_workers: tuple[int, ...] = (0, 2),
    epochs: int = 3,
    n_images: int = 2000,
    disk_cache: bool = True,
) -> dict:
    """Training images/s of the isic bundle's real trainer (train.yaml, data_fraction 1.0, no validation).

    One run per number of DataLoader workers, without the cache (the bundle's default) and, with
    `disk_cache`, with it (filled before training, not timed). Each rate is the fastest of `epochs`
    epochs: (batches per epoch x batch_size) / seconds, validation excluded.

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
    with tempfile.TemporaryDirectory(prefix="medbundle_bench_isic_") as work:
        work = Path(work)
        dataset_dir = dataset_dir or _write_isic_demo(work / "data", n_images)
        result: dict = {"image_size": list(image_size), "backbone": backbone, "batch_size": batch_size,
                        "timing": f"best of {epochs} epochs"}
        for cache in (False, True) if disk_cache else (False,):
            for workers in num_workers:
                bundle_root = work / f"bundle_{workers}_{int(cache)}"
                parser = _parser(
                    "isic", dataset_dir=dataset_dir, bundle_root=str(bundle_root), image_size=list(image_size),
                    backbone=backbone, pretrained=False, batch_size=batch_size, accumulate_grad_batches=1,
                    num_workers=workers, epochs=epochs, val_interval=epochs + 1, data_fraction=1.0,
                    progress=False, cache_dir=str(bundle_root / "cache") if cache else None,
                )
                trainer = parser.get_parsed_content("train#trainer")
                times = _epoch_timer(trainer)
                trainer.run()
                images = len(trainer.data_loader) * batch_size
                result.setdefault("train_images_per_epoch", images)
                suffix = "_disk_cache" if cache else ""
                result[f"train_images_per_s_{workers}_workers{suffix}"] = round(images / min(times), 1)
    return result



def _export_checkpoint(bundle: str, demo: bool, image_size: list[int] | None, path: Path) -> dict:
    """A randomly initialised checkpoint of the bundle's default (or demo.yaml) network, as training writes it.

    The settings are the bundle's own ``stored_config`` from train.yaml (plus demo.yaml), the network is
    ``network_def`` of inference.yaml built from them, so the export runs exactly as for a trained model.
    """
    from monai.bundle import ConfigParser

    overrides = ConfigParser.load_config_file(str(BUNDLES / bundle / "configs" / "demo.yaml")) if demo else {}
    if image_size:
        overrides["image_size"] = list(image_size)
    settings = _parser(bundle, **{**overrides, "pretrained": False}).get_parsed_content("stored_config").values
    inference = ConfigParser()
    inference.read_config(str(BUNDLES / bundle / "configs" / "inference.yaml"))
    inference.update({"stored": settings})
    network = inference.get_parsed_content("network_def")
    thresholds = {"roc_threshold": 0.5, "pf1_threshold": 0.5, "auroc": 0.5, "best_auroc": 0.5}
    torch.save({"model": network.state_dict(), "config": settings, "thresholds": thresholds}, path)
    return settings


def _eager_runner(network: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return network(x)

    return run


def _images_per_s(run: Callable[[torch.Tensor], object], batch: torch.Tensor, repeats: int) -> float:
    """Images/s of `run` on `batch`: 2 warm-up calls (TorchScript optimises on its first calls), best of `repeats`."""
    run(batch)
    run(batch)
    return len(batch) / _best_seconds(lambda: run(batch), repeats)


def export(
    bundles: tuple[str, ...] = ("rsna", "chest_xray", "isic"),
    models: tuple[str, ...] = ("default", "demo"),
    batch_sizes: tuple[int, ...] = (1, 8),
    repeats: int = 5,
    threads: int | None = None,
    image_size: tuple[int, int] | None = None,
) -> str:
    """Inference images/s on the CPU: eager PyTorch vs TorchScript vs ONNX Runtime, from `medbundle.export`.

        python scripts/benchmark.py export
        python scripts/benchmark.py export --bundles "[isic]" --models "[demo]" --image_size "[32,32]"

    Per bundle and model, a randomly initialised checkpoint (no pretrained weights) is exported by
    `medbundle.export.export_bundle` (parity-checked), then each runtime is timed on random batches of the
    model's input: 2 warm-up calls, then the best of `repeats`. Both runtimes get the same intra-op threads.

    Args:
        bundles: bundle folders under bundles/.
        models: "default" (train.yaml's backbone and image size) and/or "demo" (demo.yaml's: resnet10t, small).
        batch_sizes: batch sizes to time.
        repeats: timed calls per runtime and batch size.
        threads: intra-op threads of torch and ONNX Runtime; default torch's (the CPU cores).
        image_size: replace every model's image size, e.g. for a quick check.

    Returns:
        A markdown table of images/s and the speed-ups over eager.
    """
    from medbundle.export import export_bundle, load_bundle_network
    from medbundle.export.parity import runners

    if threads:
        torch.set_num_threads(threads)
    threads = torch.get_num_threads()
    rows = [
        f"CPU: torch and onnxruntime with {threads} intra-op threads; images/s, best of {repeats} (2 warm-up calls)",
        "",
        (
            "| bundle | model | backbone | input | batch | eager | TorchScript | onnxruntime | ts/eager | ort/eager "
            "| max abs logit diff |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory(prefix="medbundle_bench_export_") as work:
        for bundle in bundles:
            for model in models:
                folder = Path(work) / f"{bundle}_{model}"
                folder.mkdir()
                checkpoint = folder / "model.pt"
                settings = _export_checkpoint(bundle, model == "demo", image_size, checkpoint)
                result = export_bundle(BUNDLES / bundle, checkpoint, out=folder / "export")
                network = load_bundle_network(BUNDLES / bundle, checkpoint).network
                difference = max(v for kinds in result["parity"]["max_abs_diff"].values()
                                 for sizes in kinds.values() for v in sizes.values())
                shape = result["deploy"]["input"]["shape"][1:]
                batches = [torch.rand(batch_size, *shape) for batch_size in batch_sizes]
                rates: dict[str, list[float]] = {}
                # one runtime at a time, onnxruntime's session made last: its idle threads spin for a while after
                # each run and would take the cores from torch's threads
                for name in ("eager", "ts", "onnx"):
                    run = _eager_runner(network) if name == "eager" else runners({name: result["files"][name]}, threads)[name]
                    rates[name] = [_images_per_s(run, batch, repeats) for batch in batches]
                    del run
                for i, batch_size in enumerate(batch_sizes):
                    eager, ts, ort = (rates[name][i] for name in ("eager", "ts", "onnx"))
                    rows.append(
                        f"| {bundle} | {model} | {settings['backbone']} | {'x'.join(str(s) for s in shape)} "
                        f"| {batch_size} | {eager:.1f} | {ts:.1f} | {ort:.1f} | {ts / eager:.2f} | {ort / eager:.2f} "
                        f"| {difference:.1e} |"
                    )
    return "\n".join(rows)


# ---- trainer overhead ------------------------------------------------------------------------------------

SPEED_SWITCHES = ("channels_last", "bf16", "compile")  # opt-in keys of every train.yaml, default false

# chest_xray's stage 1 trains the head only: the benchmark times stage-2 epochs, the whole network.
TRAIN_EVERY_LAYER = {"chest_xray": {"stage1": False}}


def _write_training_demo(bundle: str, folder: Path, n_images: int) -> str:
    """A synthetic set of `bundle` with about `n_images` training images in fold 0."""
    from medbundle.demo import write_chest_xray_demo, write_rsna_demo

    if bundle == "rsna":  # ~4 images per patient, 3 of 4 patients in training (n_folds 4)
        write_rsna_demo(folder, n_patients=max(8, math.ceil(n_images / 3)), positive_rate=0.1, n_test_patients=0)
    elif bundle == "isic":  # 4 of 5 folds train
        _write_isic_demo(folder, math.ceil(n_images * 5 / 4))
    else:  # chest_xray: images per class of the fixed train / val folders
        write_chest_xray_demo(folder, n_train=max(1, math.ceil(n_images / 5)), n_val=1, n_test=0)
    return str(folder)


def _training_parser(bundle: str, overrides: dict, switches: tuple[str, ...] = (), augment: bool = True):
    """The bundle's train.yaml + demo.yaml with `overrides`, the given speed switches on, augmentation on or off."""
    from monai.bundle import ConfigParser

    parser = _parser(bundle, **{**ConfigParser.load_config_file(str(BUNDLES / bundle / "configs" / "demo.yaml")),
                                **overrides})
    for switch in switches:  # top-level keys of every train.yaml: channels_last, bf16, compile
        parser[switch] = True
    if not augment:
        parser["random_transforms"] = []
    return parser


def _plain_epoch(parser) -> Callable[[], None]:
    """One epoch of what the bundle's SupervisedTrainer computes, written out: the same DataLoader, network,
    optimizer and loss, and no engine, events, handlers, decollation or post-processing."""
    loader = parser.get_parsed_content("train#dataloader")
    network, optimizer = parser.get_parsed_content("network"), parser.get_parsed_content("optimizer")
    loss_function, device = parser.get_parsed_content("loss_function"), parser.get_parsed_content("device")

    def epoch() -> None:
        network.train()
        for batch in loader:
            images, labels = batch["image"].to(device), batch["label"].to(device)
            optimizer.zero_grad(set_to_none=False)  # as SupervisedTrainer
            loss_function(network(images), labels).mean().backward()
            optimizer.step()

    return epoch


def _engine_event_costs(trainer) -> dict[str, float]:
    """Milliseconds per iteration spent in each Ignite event handler (MONAI's decollation and post-processing, the
    bundle's handlers, Ignite's own event logging) during one epoch of `trainer` under cProfile: the total, the time
    of a whole iteration under the profiler, and each handler from 0.05 ms up, largest first."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.runcall(trainer.run)
    epoch_ms = (time.perf_counter() - start) * 1e3 / trainer.state.epoch_length
    costs: dict[str, float] = {}
    for (file, _, name), (*_, callers) in pstats.Stats(profiler).stats.items():
        for (caller_file, _, caller), (*_, cumulative) in callers.items():
            if caller == "_fire_event" and Path(caller_file).parent.name == "engine":
                key = f"{Path(file).parent.name}/{Path(file).stem}.{name}"
                costs[key] = costs.get(key, 0.0) + cumulative * 1e3 / trainer.state.epoch_length
    ordered = dict(sorted(((k, round(v, 2)) for k, v in costs.items() if v >= 0.05), key=lambda kv: -kv[1]))
    return {"iteration_ms (profiled)": round(epoch_ms, 1), "events_ms": round(sum(costs.values()), 2), **ordered}


def _time_training_runs(bundle: str, overrides: dict, folder: Path, switches: tuple[str, ...], rounds: int):
    """Build the plain loops, the bundle's trainer and one trainer per switch, run them an epoch each in turn for
    `rounds` rounds; the table rows and the bundle's trainer."""

    def parser(name: str, keys: tuple[str, ...] = (), augment: bool = True):
        return _training_parser(bundle, {**overrides, "bundle_root": str(folder / name)}, keys, augment)

    runs: dict[str, Callable[[], None]] = {
        "plain, no augmentation": _plain_epoch(parser("noaug", augment=False)),
        "plain": _plain_epoch(parser("plain")),
    }
    config = parser("bundle")
    trainer = config.get_parsed_content("train#trainer")
    runs["bundle"] = trainer.run
    for switch in switches:
        runs[f"bundle + {switch}"] = parser(switch.replace("+", "_"), tuple(switch.split("+"))).get_parsed_content(
            "train#trainer").run
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, epoch in runs.items():
            start = time.perf_counter()
            epoch()
            seconds[name].append(time.perf_counter() - start)
    batch_size, size = config.get_parsed_content("batch_size"), config.get_parsed_content("image_size")
    images = len(trainer.data_loader) * batch_size
    rates = {name: images / min(times[1:]) for name, times in seconds.items()}
    rows = [{
        "bundle": bundle, "backbone": config.get_parsed_content("backbone"),
        "input": f"{config.get_parsed_content('in_chans')}x{size[0]}x{size[1]}", "batch": batch_size,
        "workers": overrides["num_workers"], "run": name, "images_per_s": round(rates[name], 1),
        "over_plain": round(rates[name] / rates["plain"], 2), "first_epoch_s": round(times[0], 1),
        "best_epoch_s": round(min(times[1:]), 2),
    } for name, times in seconds.items()]
    return rows, trainer


def trainer_overhead(
    bundles: tuple[str, ...] = ("rsna", "isic", "chest_xray"),
    num_workers: tuple[int, ...] = (0, 2),
    switches: tuple[str, ...] = ("channels_last", "bf16", "channels_last+bf16", "compile"),
    rounds: int = 4,
    n_images: int = 160,
    batch_size: int | None = None,
    image_size: tuple[int, int] | None = None,
    threads: int | None = None,
    profile: bool = True,
    out: str | None = None,
) -> str:
    """Training images/s of the bundle's trainer against a plain loop over the same DataLoader, and of each switch.

        python scripts/benchmark.py trainer_overhead --bundles "[rsna]" --batch_size 8 --threads 1
        python scripts/benchmark.py trainer_overhead --bundles "[isic,chest_xray]" --out overhead.json

    Per bundle (train.yaml + demo.yaml: resnet10t from scratch at the demo's size, on a synthetic demo set of about
    `n_images` training images, decoded once into the disk cache, no validation) and number of DataLoader workers:

    - ``plain``: the same network, AdamW, loss and DataLoader (cached preprocessing + random augmentation) in a
      bare ``for batch in loader: zero_grad, loss(network(x), y).mean().backward(), step`` loop;
    - ``plain, no augmentation``: that loop over the same DataLoader with ``random_transforms: []``;
    - ``bundle``: SupervisedTrainer as train.yaml builds it (``train#trainer``: handlers, decollation,
      post-processing);
    - ``bundle + <switch>``: with train.yaml's opt-in key(s) set true (``channels_last``, ``bf16``, ``compile``,
      several joined by ``+``), the top-level keys of every train.yaml.

    plain / no-augmentation is the augmentation's cost; bundle / plain the framework's. Every run is one epoch,
    the runs take turns for `rounds` rounds (so a busy shared machine slows them alike), the first round is a
    warm-up (for ``compile``: compilation, reported as ``first epoch s``), and images/s is (batches x batch size) /
    the fastest later epoch. With `profile`, one more bundle epoch (the first worker count) runs under cProfile and
    the milliseconds per iteration spent in each engine event handler are listed (cProfile slows Python code, so
    they are upper bounds).

    Args:
        bundles: bundle folders under bundles/.
        num_workers: DataLoader worker counts.
        switches: the switch runs, e.g. ``channels_last``, ``bf16``, ``channels_last+bf16``, ``compile``.
        rounds: epochs per run (at least 2: one warm-up).
        n_images: about this many training images per synthetic set.
        batch_size: replaces the demo's batch size in every bundle.
        image_size: replaces the demo's image size in every bundle.
        threads: torch intra-op threads (1 on a shared machine); default torch's.
        profile: list the engine event handlers' cost.
        out: also write the results here as JSON.

    Returns:
        A markdown table of images/s and ratios, and the profiles.
    """
    import json

    if rounds < 2:
        raise ValueError(f"--rounds {rounds}: needs at least 2, the first epoch of every run is a warm-up")
    switches = (switches,) if isinstance(switches, str) else tuple(switches)  # fire passes one name as a string
    for switch in switches:
        if not set(switch.split("+")) <= set(SPEED_SWITCHES):
            raise ValueError(f"--switches: unknown {switch!r}; use {', '.join(SPEED_SWITCHES)} or several joined by "
                             "'+', e.g. --switches '[\"channels_last+bf16\",compile]'")
    if threads:
        torch.set_num_threads(threads)
    rows, profiles = [], {}
    with tempfile.TemporaryDirectory(prefix="medbundle_bench_overhead_") as work:
        work = Path(work)
        for bundle in bundles:
            dataset_dir = _write_training_demo(bundle, work / bundle / "data", n_images)
            for workers in num_workers:
                overrides = {
                    "dataset_dir": dataset_dir, "cache_dir": str(work / bundle / "cache"), "pretrained": False,
                    "epochs": 1, "val_interval": 2, "num_workers": workers, "progress": False,
                    **TRAIN_EVERY_LAYER.get(bundle, {}),
                }
                overrides.update({"batch_size": batch_size} if batch_size else {})
                overrides.update({"image_size": list(image_size)} if image_size else {})
                new_rows, trainer = _time_training_runs(bundle, overrides, work / bundle / str(workers), switches,
                                                        rounds)
                rows += new_rows
                if profile and workers == num_workers[0]:
                    profiles[bundle] = _engine_event_costs(trainer)
    threads = torch.get_num_threads()
    title = f"CPU, {threads} intra-op thread(s); training images/s, best of {rounds - 1} epochs after a warm-up epoch"
    lines = [
        f"{title}, runs interleaved",
        "",
        "| bundle | backbone | input | batch | workers | run | images/s | / plain | first epoch s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['bundle']} | {r['backbone']} | {r['input']} | {r['batch']} | {r['workers']} | {r['run']} "
        f"| {r['images_per_s']} | {r['over_plain']:.2f} | {r['first_epoch_s']} |"
        for r in rows
    ]
    for bundle, costs in profiles.items():
        lines += ["", f"{bundle}: engine event handlers, ms per iteration (cProfile, {num_workers[0]} workers): "
                  + ", ".join(f"{k} {v}" for k, v in costs.items())]
    if out:
        Path(out).write_text(json.dumps({"threads": threads, "rounds": rounds, "rows": rows, "profiles": profiles},
                                        indent=2))
    return "\n".join(lines)


if __name__ == "__main__":
    torch.set_num_threads(max(1, torch.get_num_threads()))
    fire.Fire({"dicom": dicom, "dicom_reduce": dicom_reduce, "training": training, "isic": isic,
               "isic_training": isic_training, "export": export,
               "trainer_overhead": trainer_overhead})
