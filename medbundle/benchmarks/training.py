"""The trainers: the rsna cache's effect on epochs, and every bundle's SupervisedTrainer against a plain loop over the
same DataLoader, with the opt-in speed switches (channels_last, bf16, compile)."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from medbundle.benchmarks.common import (
    benchmark_facts,
    bundle_parser,
    epoch_timer,
    write_sized_set,
)
from medbundle.benchmarks.report import Report

SPEED_SWITCHES = ("channels_last", "bf16", "compile")  # opt-in keys of every train.yaml, default false


def plain_epoch(parser) -> Callable[[], None]:
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


def training(
    dataset_dir: str | None = None,
    image_size: tuple[int, int] = (256, 128),
    backbone: str = "resnet10t",
    batch_size: int = 16,
    num_workers: int = 2,
    source_shape: tuple[int, int] = (2048, 1664),
    n_patients: int = 40,
) -> Report:
    """The rsna cache's effect: the bundle's trainer filling the cache in epoch 1 and reading it in epoch 2.

        python scripts/benchmark.py training --image_size "[256,128]" --backbone resnet10t

    On a synthetic RSNA set of `n_patients` at `source_shape` (or `dataset_dir`), train.yaml's trainer runs 2
    epochs: the cache fill (decode + preprocess of every training image, once) is timed as the dataset is built,
    then each epoch (validation excluded). `plain` is the same DataLoader, network, optimizer and loss in a bare
    loop (`plain_epoch`) over the filled cache, timed after the bundle's epochs.

    Args:
        dataset_dir: an RSNA folder (train.csv, train_images/); default a synthetic set.
        image_size: the bundle's input size (rows, columns).
        backbone: timm backbone, from scratch.
        batch_size: training batch size.
        num_workers: DataLoader workers (and cache-fill processes).
        source_shape: (rows, columns) of the synthetic DICOMs.
        n_patients: synthetic patients (4 images each).
    """
    from medbundle.demo import write_rsna_demo

    with tempfile.TemporaryDirectory(prefix="medbundle_bench_training_") as work:
        work = Path(work)
        if dataset_dir is None:
            dataset_dir = str(work / "data")
            write_rsna_demo(dataset_dir, n_patients=n_patients, image_shape=tuple(source_shape), positive_rate=0.1)
        parser = bundle_parser(
            "rsna", dataset_dir=dataset_dir, bundle_root=str(work / "bundle"), image_size=list(image_size),
            backbone=backbone, pretrained=False, head="linear", batch_size=batch_size, num_workers=num_workers,
            epochs=2, n_folds=4, progress=False, val_interval=100,
        )
        start = time.perf_counter()
        dataset = parser.get_parsed_content("train#dataset")
        cache_fill = time.perf_counter() - start
        trainer = parser.get_parsed_content("train#trainer")
        epochs = epoch_timer(trainer)
        trainer.run()
        images = len(trainer.data_loader) * batch_size
        plain = plain_epoch(parser)
        start = time.perf_counter()
        plain()
        plain_s = time.perf_counter() - start
        cache_files = list((work / "bundle" / "cache").rglob("*.pt"))
        cache_kb = sum(f.stat().st_size for f in cache_files) / len(cache_files) / 1024
    rows = [
        {"phase": "cache fill (decode + preprocess, once)", "seconds": cache_fill,
         "images_per_s": len(dataset) / cache_fill},
        {"phase": "epoch 1 (after the fill)", "seconds": epochs[0], "images_per_s": images / epochs[0]},
        {"phase": "epoch 2 (cached)", "seconds": epochs[1], "images_per_s": images / epochs[1]},
        {"phase": "plain loop, same DataLoader (cached)", "seconds": plain_s, "images_per_s": images / plain_s},
    ]
    for row in rows:
        row["over_plain"] = row["images_per_s"] / rows[-1]["images_per_s"]
    return Report(
        name="training",
        title=(f"rsna training: {len(dataset)} training images of {source_shape[0]}x{source_shape[1]} to "
               f"{image_size[0]}x{image_size[1]}, {backbone} from scratch, batch {batch_size}, {num_workers} workers; "
               f"cache {cache_kb:.1f} KB per image"),
        columns=[("phase", "phase"), ("seconds", "seconds"), ("images_per_s", "images/s"), ("over_plain", "/ plain")],
        rows=rows,
        settings={"dataset_dir": dataset_dir, "image_size": list(image_size), "backbone": backbone,
                  "batch_size": batch_size, "num_workers": num_workers, "source_shape": list(source_shape),
                  "train_images": len(dataset), "cache_kb_per_image": cache_kb},
    )


def training_parser(bundle: str, overrides: dict, switches: tuple[str, ...] = (), augment: bool = True):
    """The bundle's train.yaml + demo.yaml with `overrides`, the given speed switches on, augmentation on or off."""
    parser = bundle_parser(bundle, demo=True, **overrides)
    for switch in switches:  # top-level keys of every train.yaml: channels_last, bf16, compile
        parser[switch] = True
    if not augment:
        parser["random_transforms"] = []
    return parser


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
        return training_parser(bundle, {**overrides, "bundle_root": str(folder / name)}, keys, augment)

    runs: dict[str, Callable[[], None]] = {
        "plain, no augmentation": plain_epoch(parser("noaug", augment=False)),
        "plain": plain_epoch(parser("plain")),
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
        "workers": overrides["num_workers"], "run": name, "images_per_s": rates[name],
        "over_plain": rates[name] / rates["plain"], "first_epoch_s": times[0], "best_epoch_s": min(times[1:]),
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
) -> Report:
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
    """
    if rounds < 2:
        raise ValueError(f"--rounds {rounds}: needs at least 2, the first epoch of every run is a warm-up")
    bundles = (bundles,) if isinstance(bundles, str) else tuple(bundles)
    num_workers = (num_workers,) if isinstance(num_workers, int) else tuple(num_workers)
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
            dataset_dir = write_sized_set(bundle, work / bundle / "data", n_images, training=True)
            for workers in num_workers:
                overrides = {
                    "dataset_dir": dataset_dir, "cache_dir": str(work / bundle / "cache"), "pretrained": False,
                    "epochs": 1, "val_interval": 2, "num_workers": workers, "progress": False,
                    **benchmark_facts(bundle).train_every_layer,
                }
                overrides.update({"batch_size": batch_size} if batch_size else {})
                overrides.update({"image_size": list(image_size)} if image_size else {})
                new_rows, trainer = _time_training_runs(bundle, overrides, work / bundle / str(workers), switches,
                                                        rounds)
                rows += new_rows
                if profile and workers == num_workers[0]:
                    profiles[bundle] = _engine_event_costs(trainer)
    threads = torch.get_num_threads()
    return Report(
        name="trainer_overhead",
        title=(f"training images/s, CPU, {threads} intra-op thread(s), best of {rounds - 1} epochs after a warm-up "
               "epoch, runs interleaved; plain: the same DataLoader, network, AdamW and loss in a bare loop"),
        columns=[("bundle", "bundle"), ("backbone", "backbone"), ("input", "input"), ("batch", "batch"),
                 ("workers", "workers"), ("run", "run"), ("images_per_s", "images/s"), ("over_plain", "/ plain"),
                 ("first_epoch_s", "first epoch s")],
        rows=rows,
        notes=[f"{bundle}: engine event handlers, ms per iteration (cProfile, {num_workers[0]} workers): "
               + ", ".join(f"{k} {v}" for k, v in costs.items()) for bundle, costs in profiles.items()],
        settings={"bundles": list(bundles), "num_workers": list(num_workers), "switches": list(switches),
                  "rounds": rounds, "n_images": n_images, "batch_size": batch_size, "threads": threads,
                  "profiles": profiles},
    )
