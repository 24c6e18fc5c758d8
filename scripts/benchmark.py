"""Benchmarks of the rsna pipeline (python-fire).

    python scripts/benchmark.py dicom --folder ../shared/data/dicom
    python scripts/benchmark.py training --image_size "[256,128]" --backbone resnet10t

`dicom` measures decoding and the bundle's preprocessing chain in images/s. `training` runs the
bundle's real trainer (built from train.yaml) and reports the cache's effect (epoch 1 decodes into
the cache, epoch 2 reads it) and its throughput against a plain PyTorch/timm loop on the same images.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

import fire
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

CONFIGS = Path(__file__).resolve().parents[1] / "bundles" / "rsna" / "configs"


def _parser(**overrides):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "train.yaml")])
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


if __name__ == "__main__":
    torch.set_num_threads(max(1, torch.get_num_threads()))
    fire.Fire({"dicom": dicom, "training": training})
