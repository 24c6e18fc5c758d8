"""Benchmarks of the rsna and isic pipelines (python-fire).

    python scripts/benchmark.py dicom --folder ../shared/data/dicom
    python scripts/benchmark.py training --image_size "[256,128]" --backbone resnet10t
    python scripts/benchmark.py isic --image_size "[224,224]" --n_images 2000 --workers 2
    python scripts/benchmark.py isic_training --image_size "[64,64]" --num_workers "[0,2]"

rsna: `dicom` measures decoding and the bundle's preprocessing chain in images/s. `training` runs the
bundle's real trainer (built from train.yaml) and reports the cache's effect (epoch 1 decodes into
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

if __name__ == "__main__":
    torch.set_num_threads(max(1, torch.get_num_threads()))
    fire.Fire({"dicom": dicom, "training": training, "isic": isic, "isic_training": isic_training, "export": export})
