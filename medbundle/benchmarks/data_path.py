"""Does the data path keep the model fed? Each bundle's training DataLoader and its model, timed apart.

A data path that cannot deliver images as fast as the model consumes them wastes the accelerator, and a disk cache
that reads barely faster than decoding buys nothing; `data_path` measures both for each bundle's demo and default
settings, on a synthetic set of realistic source sizes, with the peak memory of the cache fill and of training.
"""

from __future__ import annotations

import copy
import inspect
import itertools
import math
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from medbundle.benchmarks.common import (
    PeakRSS,
    benchmark_facts,
    best_seconds,
    bundle_parser,
    write_sized_set,
)
from medbundle.benchmarks.report import Report

CACHE_SPEEDUP = 20  # the cached loader should read images at least this many times faster than decoding them


def data_path(
    bundles: Sequence[str] = ("rsna", "chest_xray", "isic"),
    settings: Sequence[str] = ("demo", "default"),
    n_images: int = 24,
    source_sizes: dict[str, tuple[int, int]] | None = None,
    loader_batches: int = 16,
    repeats: int = 3,
    model_steps: int = 3,
    model_megapixels: float = 0.5,
    profile: bool = True,
) -> Report:
    """Loader-only against model-only training images/s of each bundle, and the cache's speed-up over decoding.

        python scripts/benchmark.py data_path
        python scripts/benchmark.py data_path --bundles "[isic]" --settings "[demo]" --source_sizes "{isic: [32, 48]}"

    Per bundle a synthetic set is written at `source_sizes` (`medbundle.demo`, the real Kaggle layouts), and per
    setting (``demo``: train.yaml + demo.yaml; ``default``: train.yaml's own backbone, image size, batch size and
    workers) a fresh process builds the bundle's training objects from its config (``pretrained: false``, DataLoader
    workers capped at the machine's cores, chest_xray's head-only stage 1 off, isic's full epoch) over `n_images`
    training images of every class, and times:

    - cache fill: the bundle's own (``train#dataset``: `medbundle.data.cached_dataset` with the configured
      workers), once, with its peak memory; without a cache (isic: ``cache_dir: null``) that is the warm-up pass
      that checks every image. Decode: the deterministic chain that fills the cache (``cached_transforms``) on
      every image in one process with one torch thread, as a fill worker runs it; best of `repeats` passes, timed
      last (its large buffers, once freed, would make this process's allocator, and its workers', faster with
      large tensors than a bundle's is when its workers start).
    - loader: passes over the bundle's training DataLoader (``train#dataloader``: cache read, uncached and random
      transforms, sampler, collate; the configured workers and batch size, workers started anew each pass as with
      ``persistent_workers: false``) feeding no model; the images repeat so that a pass has `loader_batches`
      batches (their cache files stay in the page cache); best of `repeats` passes. ``loader img/s, 1 worker``
      is the same with one worker: what each worker achieves, and on a GPU machine how many cores the model
      needs.
    - model: the bundle's network, optimizer and loss on random tensors of the input's shape (zero_grad, forward,
      backward, step as SupervisedTrainer takes it: eager, on the config's device, autocast with its ``amp``),
      best of `model_steps` steps after one real step (the warm-up). A step takes the configured batch, or fewer
      images where a batch would exceed `model_megapixels` (at least 2: the rsna default takes 2 of 8), to keep
      slow models short on a CPU.
    - training memory: that real step, the loader's workers feeding the model the first images of a batch.

    Against: ``loader / model`` >= 1 means the data path keeps up with the model ("keeps up", else "STARVES");
    ``loader / decode`` (the loader's images/s over one process's decoding) should be >= 20 where there is a
    cache. Each is timed alone: in real CPU training the model and the workers share the cores, and whatever else
    runs on the machine slows the workers' rates more than the one-worker figures, so run it on an idle machine.
    Peak memory is the summed resident memory of the process and its children (workers), sampled every 50 ms;
    pages shared after fork count in every process, so it is an upper bound. With `profile`, one more 0-worker
    pass runs under cProfile and the notes list the share of it spent per transform class, reading cache files
    (``torch.load``) and collating (cProfile slows Python code, and in this process the collated batches are
    allocated where workers put them in shared memory, so the shares are approximate).

    Args:
        bundles: bundle folders under bundles/.
        settings: ``demo`` and/or ``default``.
        n_images: distinct training images per bundle.
        source_sizes: per bundle, replaces its task's ``benchmark.source_size`` (:mod:`medbundle.tasks`): rows and
            columns of a fixed-shape source (rsna), else the (smallest, largest) side.
        loader_batches: batches per timed loader pass.
        repeats: timed passes of decode and loader.
        model_steps: timed model steps.
        model_megapixels: most input megapixels of one model step.
        profile: profile each loader (0 workers) and list where its time goes.
    """
    sizes = {bundle: tuple((source_sizes or {}).get(bundle) or benchmark_facts(bundle).source_size) for bundle in bundles}
    unknown = set(settings) - {"demo", "default"}
    if unknown:
        raise ValueError(f"--settings: unknown {sorted(unknown)}; use demo and/or default")
    rows = []
    with tempfile.TemporaryDirectory(prefix="medbundle_bench_data_path_") as work:
        for bundle in bundles:
            dataset_dir = write_sized_set(bundle, Path(work) / bundle / "data", n_images, sizes[bundle])
            for setting in settings:
                # a fresh process per run: its peak memory is this run's alone, not that of earlier models
                spawn = multiprocessing.get_context("spawn")
                with ProcessPoolExecutor(1, mp_context=spawn, initializer=_fork_workers) as pool:
                    row = pool.submit(
                        _measure, bundle, setting, dataset_dir, str(Path(work) / bundle / setting), n_images,
                        loader_batches, repeats, model_steps, model_megapixels, profile,
                    ).result()
                facts = replace(benchmark_facts(bundle), source_size=sizes[bundle])
                rows.append({**row, "source": facts.source_label()})
    notes = [_verdict(row) for row in rows]
    notes += [f"{r['bundle']} {r['setting']} loader profile: {r['profile']}" for r in rows if r.get("profile")]
    cores = _cores()
    title = (
        f"Training data path against the model, {cores} CPU core(s): images/s of each bundle's DataLoader alone "
        f"(best of {repeats} passes of {loader_batches} batches) and of its model alone (random inputs, best of "
        f"{model_steps} steps); decode: the cached chain in one process, one thread; peak RSS of process + workers"
    )
    columns = [
        ("bundle", "bundle"), ("setting", "setting"), ("backbone", "backbone"), ("input", "input"),
        ("source", "source"), ("images", "images"), ("batch", "batch"), ("workers", "workers"), ("cache", "cache"),
        ("decode_images_per_s", "decode img/s"), ("cache_fill_s", "cache fill s"),
        ("fill_peak_rss_mb", "fill peak RSS MB"), ("loader_images_per_s", "loader img/s"),
        ("loader_1worker_images_per_s", "loader img/s, 1 worker"), ("model_batch", "model batch"),
        ("model_images_per_s", "model img/s"), ("loader_over_model", "loader / model"), ("data_path", "data path"),
        ("cached_over_decode", "loader / decode"), ("cache_verdict", "vs 20x"),
        ("train_peak_rss_mb", "train peak RSS MB"),
    ]
    arguments = {"bundles": list(bundles), "settings": list(settings), "n_images": n_images,
                 "source_sizes": {k: list(v) for k, v in sizes.items()}, "loader_batches": loader_batches,
                 "repeats": repeats, "model_steps": model_steps, "model_megapixels": model_megapixels,
                 "profile": profile, "cores": cores}
    return Report("data_path", title, columns, rows, notes, arguments)


def _fork_workers() -> None:
    """Start DataLoader workers as a bundle run on Linux does, by fork, not by spawn as this process was started."""
    if "fork" in multiprocessing.get_all_start_methods():
        multiprocessing.set_start_method("fork", force=True)


def _cores() -> int:
    """CPU cores this process may run on (a container's or taskset's limit, not the host's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def model_batch(batch_size: int, image_size: Sequence[int], megapixels: float) -> int:
    """Images per timed model step: `batch_size`, or as many as fit `megapixels` of input, but at least 2 (BatchNorm
    needs two)."""
    fit = int(megapixels * 1e6 // math.prod(image_size))
    return min(batch_size, max(2, fit))


def data_path_verdict(loader_images_per_s: float, model_images_per_s: float) -> str:
    """The data path's verdict: "keeps up" when the loader delivers at least as many images/s as the model trains
    on, else "STARVES"."""
    return "keeps up" if loader_images_per_s >= model_images_per_s else "STARVES"


def cache_verdict(has_cache: bool, loader_over_decode: float) -> str:
    """Whether the cached loader reads `CACHE_SPEEDUP` times faster than decoding; "no cache" without one."""
    if not has_cache:
        return "no cache"
    return f">= {CACHE_SPEEDUP}x" if loader_over_decode >= CACHE_SPEEDUP else f"BELOW {CACHE_SPEEDUP}x"


def _verdict(row: dict[str, Any]) -> str:
    """One sentence per run: does the loader keep up, and what does the cache buy."""
    name = f"{row['bundle']} {row['setting']}"
    feed = (f"{name}: the loader delivers {row['loader_images_per_s']:.3g} images/s, the model trains on "
            f"{row['model_images_per_s']:.3g}: {row['data_path']} ({row['loader_over_model']:.3g}x)")
    single = f"{row['cached_over_decode_1worker']:.3g}x with one worker"
    if row["cache"] == "none":
        return (f"{feed}; no disk cache: the loader decodes every epoch, at {row['cached_over_decode']:.3g}x the "
                f"one-process decode rate ({single})")
    return (f"{feed}; the cached loader reads {row['cached_over_decode']:.3g}x faster than one process decodes "
            f"({single}): {row['cache_verdict']}")


class RepeatedDataset:
    """`dataset` `times` over (item ``i`` is item ``i % len(dataset)``), with the repeated ``data`` list that the
    bundles' configs read labels from, so that one loader pass lasts long enough to time steady throughput."""

    def __init__(self, dataset, times: int) -> None:
        self.dataset, self.times = dataset, times
        self.data = list(dataset.data) * times

    def __len__(self) -> int:
        return len(self.dataset) * self.times

    def __getitem__(self, index: int):
        return self.dataset[index % len(self.dataset)]


def _labelled(parser) -> list[dict]:
    """Every labelled image of the bundle's data set: ``datalist`` where the config has one (rsna, isic), else the
    training split (chest_xray: the train folder). Not rsna's and isic's fold 0: its split needs positives of
    several patients in every fold, which a small synthetic set lacks, and which images train does not change
    the speed."""
    if parser.get("datalist") is not None:
        return parser.get_parsed_content("datalist")
    return parser.get_parsed_content("split")[0]


def mix_labels(data: Sequence[dict], n: int) -> list[dict]:
    """`n` items of `data` taken from each label in turn, so that a few images still hold every class (the bundles'
    samplers refuse a set without positives)."""
    groups: dict[str, list[dict]] = {}
    for item in data:
        groups.setdefault(str(item["label"]), []).append(item)
    turns = itertools.zip_longest(*groups.values())
    return [item for turn in turns for item in turn if item is not None][:n]


def _count_images(loader) -> int:
    """One pass over `loader`; the images it delivered."""
    return sum(len(batch["image"]) for batch in loader)


def _loader_rate(loader, repeats: int) -> tuple[float, int]:
    """Images/s of the best of `repeats` passes over `loader`, and the images of one pass."""
    delivered: list[int] = []
    seconds = best_seconds(lambda: delivered.append(_count_images(loader)), repeats)
    return delivered[-1] / seconds, delivered[-1]  # every pass delivers as many images


def _measure(
    bundle: str, setting: str, dataset_dir: str, work: str, n_images: int, loader_batches: int, repeats: int,
    model_steps: int, model_megapixels: float, profile: bool,
) -> dict[str, Any]:
    """The table row of one bundle and setting (run in a fresh process, whose memory allocator has not yet freed
    large buffers, as a bundle's process when it starts its DataLoader workers)."""
    import torch

    threads = torch.get_num_threads()
    parser = bundle_parser(bundle, demo=setting == "demo", dataset_dir=dataset_dir, bundle_root=work,
                           pretrained=False, progress=False, **benchmark_facts(bundle).train_every_layer,
                           **benchmark_facts(bundle).loader_overrides)
    parser["train#datalist"] = mix_labels(_labelled(parser), n_images)
    workers = min(parser.get_parsed_content("num_workers"), _cores())
    parser["num_workers"] = workers
    with PeakRSS() as fill_rss:
        start = time.perf_counter()
        dataset = parser.get_parsed_content("train#dataset")
        fill_s = time.perf_counter() - start
    batch_size, image_size = parser.get_parsed_content("batch_size"), parser.get_parsed_content("image_size")
    has_cache = parser.get_parsed_content("cache_dir") is not None
    parser["train#dataset"] = RepeatedDataset(dataset, math.ceil(loader_batches * batch_size / len(dataset)))
    loader = parser.get_parsed_content("train#dataloader")
    loader_rate, pass_images = _loader_rate(loader, repeats)
    parser["num_workers"] = 1
    single_rate, _ = _loader_rate(parser.get_parsed_content("train#dataloader"), repeats)
    profiled = _profile(parser, dataset) if profile else None
    torch.set_num_threads(threads)
    batch_n = model_batch(batch_size, image_size, model_megapixels)
    model_rate, train_rss, shape = _model_rate(parser, loader, batch_n, model_steps)
    # last: freeing large buffers raises glibc's mmap threshold for the rest of this process and for the workers
    # it forks, which makes every large tensor allocation in them cheaper than in a bundle's fresh workers
    decode_rate = _decode_rate(parser, repeats)
    row = {
        "bundle": bundle, "setting": setting, "backbone": parser.get_parsed_content("backbone"),
        "input": "x".join(str(s) for s in shape), "images": len(dataset), "batch": batch_size, "workers": workers,
        "cache": "disk" if has_cache else "none", "decode_images_per_s": round(decode_rate, 2),
        "cache_fill_s": round(fill_s, 2), "fill_peak_rss_mb": fill_rss.total_mb, "fill_main_rss_mb": fill_rss.main_mb,
        "loader_images_per_s": round(loader_rate, 2), "loader_pass_images": pass_images,
        "loader_1worker_images_per_s": round(single_rate, 2), "model_batch": batch_n,
        "model_images_per_s": round(model_rate, 3), "loader_over_model": round(loader_rate / model_rate, 2),
        "data_path": data_path_verdict(loader_rate, model_rate),
        "cached_over_decode": round(loader_rate / decode_rate, 2),
        "cached_over_decode_1worker": round(single_rate / decode_rate, 2),
        "cache_verdict": cache_verdict(has_cache, loader_rate / decode_rate),
        "train_peak_rss_mb": train_rss.total_mb, "train_main_rss_mb": train_rss.main_mb,
    }
    if profiled:
        row["profile"] = profiled
    return row


def _decode_rate(parser, repeats: int) -> float:
    """Images/s of the cached chain on the training images in this process with one torch thread, as a cache-fill
    worker runs it (best of `repeats` passes)."""
    import torch
    from monai.transforms import Compose

    data = parser.get_parsed_content("train#datalist")
    chain = Compose(parser.get_parsed_content("cached_transforms"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    seconds = best_seconds(lambda: [chain(copy.deepcopy(item)) for item in data], repeats)
    torch.set_num_threads(threads)
    return len(data) / seconds


def _profile(parser, dataset) -> str:
    """Where a pass of the training DataLoader goes, as `loader_profile` measures it with 0 workers and one torch
    thread. Leaves this process at one torch thread."""
    import torch

    parser["num_workers"] = 0
    torch.set_num_threads(1)
    ms, shares = loader_profile(parser.get_parsed_content("train#dataloader"), dataset.transform)
    return f"{ms:.3g} ms/image (0 workers, 1 thread, cProfile): " + ", ".join(
        f"{name} {100 * share:.0f} %" for name, share in shares.items() if share >= 0.01)


def _model_rate(parser, loader, batch_n: int, steps: int) -> tuple[float, PeakRSS, tuple[int, ...]]:
    """Images/s of the bundle's model on random inputs (best of `steps` steps of `batch_n` images), after one real
    training step fed by `loader` (the warm-up, and the training memory); also that step's memory and the input
    shape."""
    import torch

    device = parser.get_parsed_content("device")
    step = _training_step(parser.get_parsed_content("network"), parser.get_parsed_content("optimizer"),
                          parser.get_parsed_content("loss_function"), device, bool(parser.get_parsed_content("amp")))
    with PeakRSS() as train_rss:
        batches = iter(loader)
        batch = next(batches)
        step(batch["image"][:batch_n].to(device), batch["label"][:batch_n].to(device))
        del batches  # stops the workers
    images = torch.rand_like(batch["image"][:batch_n]).to(device)  # on the device already, as the model sees them
    labels = batch["label"][:batch_n].to(device)
    return batch_n / best_seconds(lambda: step(images, labels), steps), train_rss, tuple(images.shape[1:])


def _training_step(network, optimizer, loss_function, device, amp: bool) -> Callable[[Any, Any], None]:
    """One step as MONAI's SupervisedTrainer takes it: zero_grad, forward (autocast with the config's ``amp``),
    loss, backward, optimizer step."""
    import torch

    network.train()

    def step(images, labels) -> None:
        optimizer.zero_grad(set_to_none=False)
        with torch.autocast(device.type, enabled=amp):
            loss = loss_function(network(images), labels).mean()
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return step


def loader_profile(loader, transform) -> tuple[float, dict[str, float]]:
    """One pass over `loader` under cProfile: milliseconds per image, and the share of the pass spent in each
    transform of `transform` (a MONAI Compose; by class, nested Composes flattened), in ``torch.load`` (reading
    cache files) and in the loader's collate function, largest first. Shares overlap where one calls another."""
    import cProfile
    import pstats

    import torch

    names: dict[tuple[str, int, str], set[str]] = {}
    targets = [(type(t).__name__, type(t).__call__) for t in transform.flatten().transforms]
    targets += [("torch.load", torch.load), ("collate", loader.collate_fn)]
    for name, function in targets:
        code = inspect.unwrap(function).__code__
        names.setdefault((code.co_filename, code.co_firstlineno, code.co_name), set()).add(name)
    profiler = cProfile.Profile()
    start = time.perf_counter()
    images = profiler.runcall(_count_images, loader)
    seconds = time.perf_counter() - start
    stats = pstats.Stats(profiler).stats  # (file, line, function): (calls, primitive calls, own s, cumulative s, ...)
    shares = {"/".join(sorted(label)): stats[key][3] / seconds for key, label in names.items() if key in stats}
    return 1e3 * seconds / images, dict(sorted(shares.items(), key=lambda kv: -kv[1]))
