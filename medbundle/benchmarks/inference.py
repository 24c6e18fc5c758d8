"""End-to-end inference of every bundle's inference.yaml against a plain script and against the network alone.

A user runs ``python -m monai.bundle run --config_file bundles/<task>/configs/inference.yaml``: MONAI's LoadImage
with medbundle's readers, the preprocessing chain, a SupervisedEvaluator and the writer handlers. This module times
that evaluator from the start of its run to the CSV written, against the script one would write without MONAI
(pydicom / OpenCV / h5py decoding in a torch DataLoader, the same network, pandas for the CSV), and the network alone
on random batches, the ceiling of both.

The plain script decodes with the plain libraries and then calls the same numpy cores of `medbundle.imaging` as the
bundle's chain (breast crop, canonical flip, aspect resize and pad, CLAHE): a plain script without the breast crop
would do less work, not the same work faster. So the ratio measures what the bundle adds or saves around the same
arithmetic: its decoders (file checks, metadata, reduced-resolution JPEG 2000), MONAI's LoadImage / MetaTensor /
collate, the engine and its handlers. Only intensities differ where the bundle's decoders are more careful than a
plain script (DICOM windows mapped by bit depth, not min-max; 12-bit PNGs by their sBIT chunk), at the same cost;
isic's network inputs are identical.
"""

from __future__ import annotations

import cProfile
import math
import os
import pstats
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from medbundle.benchmarks.common import BUNDLES, benchmark_facts
from medbundle.benchmarks.report import Report
from medbundle.tasks import resolve

if TYPE_CHECKING:
    from monai.bundle import ConfigParser
    from monai.engines import SupervisedEvaluator

RSNA_IMAGES_PER_PATIENT = 4.5  # test images of one demo patient, on average (two breasts, two or three views)
Items = list[tuple[str, str]]  # (file, or "<hdf5>::<key>" member; the id the CSV writes for it)


# ---- synthetic test sets in the Kaggle layouts: inference.yaml's overrides and the plain script's items ----------

def _rsna_set(folder: Path, n_images: int, source: Sequence[int]) -> tuple[dict, Items]:
    """Demo mammograms of `source` (rows, columns): JPEG 2000, RLE and a few uncompressed, as the two Kaggle sites."""
    import pandas as pd

    from medbundle.demo import write_rsna_demo

    write_rsna_demo(folder, n_patients=2, n_test_patients=max(1, round(n_images / RSNA_IMAGES_PER_PATIENT)),
                    image_shape=tuple(source), seed=0)
    frame = pd.read_csv(folder / "test.csv", dtype=str)
    items = [(str(folder / "test_images" / row.patient_id / f"{row.image_id}.dcm"), row.prediction_id)
             for row in frame.itertuples()]
    return {"dataset_dir": str(folder)}, items


def _chest_xray_set(folder: Path, n_images: int, source: Sequence[int]) -> tuple[dict, Items]:
    """Demo chest X-rays with sides in `source`: PNG of 8, 12 and 16 bits, JPEG and a few DICOM files."""
    from medbundle.data import CHEST_XRAY_CLASSES
    from medbundle.demo import write_chest_xray_demo

    info = write_chest_xray_demo(folder, n_train=1, n_val=1, n_test=math.ceil(n_images / len(CHEST_XRAY_CLASSES)),
                                 size_range=tuple(source), seed=0)
    test = Path(info["test_dir"])
    files = sorted(path for path in test.rglob("*") if path.is_file())
    return {"input": str(test)}, [(str(path), str(path.relative_to(test).with_suffix(""))) for path in files]


def _isic_set(folder: Path, n_images: int, source: Sequence[int]) -> tuple[dict, Items]:
    """Demo lesion crops with sides in `source`, JPEG bytes in one HDF5 file as ISIC 2024's."""
    import pandas as pd

    from medbundle.demo import write_isic_demo

    info = write_isic_demo(folder, n_patients=3, n_test=n_images, size_range=tuple(source), seed=0)
    ids = pd.read_csv(info["test_csv"], dtype=str)["isic_id"]
    return {"dataset_dir": str(folder)}, [(f"{info['test_hdf5']}::{isic_id}", isic_id) for isic_id in ids]


# ---- the plain script: plain decoding, the same medbundle.imaging cores, pandas CSVs -----------------------------

def _pydicom_grey(path: str) -> np.ndarray:
    """What a Kaggle notebook does: pixel_array (every pixel), modality LUT, VOI LUT or window, min-max to [0, 1],
    MONOCHROME1 inverted."""
    import pydicom
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    ds = pydicom.dcmread(path)
    pixels = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds).astype(np.float32)
    low, high = float(pixels.min()), float(pixels.max())
    image = (pixels - low) / max(high - low, 1e-6)
    return 1 - image if ds.PhotometricInterpretation == "MONOCHROME1" else image


class _HDF5Bytes:
    """The bytes of HDF5 members, each file opened once per process (an h5py handle must not cross a fork)."""

    def __init__(self) -> None:
        self.handles: dict[str, Any] = {}
        self.pid = os.getpid()

    def __call__(self, member: str) -> bytes:
        import h5py

        if self.pid != os.getpid():  # a DataLoader worker: open its own handles, leave the parent's alone
            self.handles, self.pid = {}, os.getpid()
        file, key = member.split("::", 1)
        if file not in self.handles:
            self.handles[file] = h5py.File(file, "r")
        return self.handles[file][key][()]


_hdf5_bytes = _HDF5Bytes()


def _rsna_image(path: str, settings: dict) -> np.ndarray:
    """pydicom, then inference.yaml's chain: breast crop (blanked outside), flip to the left, resize and pad, CLAHE."""
    from medbundle.imaging import (
        BreastCropper,
        apply_clahe,
        aspect_resize_pad,
        flip_to_left,
    )

    image = flip_to_left(BreastCropper(blank_outside=True)(_pydicom_grey(path)[None], path))
    return apply_clahe(aspect_resize_pad(image, settings["image_size"]))


def _chest_xray_image(path: str, settings: dict) -> np.ndarray:
    """cv2.imread in grey at the file's depth over its type's maximum (DICOM: pydicom), resize and centre-pad, and
    CLAHE when the checkpoint was trained with it."""
    import cv2

    from medbundle.imaging import apply_clahe, aspect_resize_pad

    if path.lower().endswith((".dcm", ".dicom")):
        grey = _pydicom_grey(path)
    else:
        raw = cv2.imread(path, cv2.IMREAD_GRAYSCALE | cv2.IMREAD_ANYDEPTH)
        grey = raw.astype(np.float32) / np.float32(np.iinfo(raw.dtype).max)
    image = aspect_resize_pad(grey[None], settings["image_size"], pad_position="center")
    return apply_clahe(image) if settings.get("clahe") else image


def _isic_image(member: str, settings: dict) -> np.ndarray:
    """h5py bytes, cv2.imdecode, BGR to RGB, [0, 1], resize and centre-pad by reflection."""
    import cv2

    from medbundle.imaging import aspect_resize_pad

    bgr = cv2.imdecode(np.frombuffer(_hdf5_bytes(member), np.uint8), cv2.IMREAD_COLOR)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).transpose(2, 0, 1).astype(np.float32) / np.float32(255)
    return aspect_resize_pad(rgb, settings["image_size"], pad_position="center", padding_mode="reflect")


def _rsna_csv(out: Path, ids: list[str], probabilities: np.ndarray, settings: dict, thresholds: dict) -> None:
    """submission.csv: one row per breast, the mean probability of its images binarised."""
    import pandas as pd

    breasts = pd.DataFrame({"prediction_id": ids, "cancer": probabilities}).groupby("prediction_id", sort=False)
    submission = breasts["cancer"].mean().ge(thresholds["pf1_threshold"]).astype(int).reset_index()
    submission.to_csv(out / "submission.csv", index=False)


def _chest_xray_csv(out: Path, ids: list[str], probabilities: np.ndarray, settings: dict, thresholds: dict) -> None:
    """predictions_image.csv: image_id, pred_class and one prob_<class> column per class."""
    import pandas as pd

    names = settings["class_names"]
    table = pd.DataFrame({"image_id": ids, "pred_class": np.asarray(names)[probabilities.argmax(1)]})
    table[[f"prob_{name}" for name in names]] = probabilities
    table.to_csv(out / "predictions_image.csv", index=False)


def _isic_csv(out: Path, ids: list[str], probabilities: np.ndarray, settings: dict, thresholds: dict) -> None:
    """submission.csv with probabilities and submission_labels.csv binarised, one row per crop."""
    import pandas as pd

    pd.DataFrame({"isic_id": ids, "target": probabilities}).to_csv(out / "submission.csv", index=False)
    labels = (probabilities >= thresholds["roc_threshold"]).astype(int)
    pd.DataFrame({"isic_id": ids, "target": labels}).to_csv(out / "submission_labels.csv", index=False)


@dataclass(frozen=True)
class Task:
    """How to benchmark one bundle: its synthetic test set, and the plain script's image and CSV steps."""

    write_set: Callable[[Path, int, Sequence[int]], tuple[dict, Items]]
    image: Callable[[str, dict], np.ndarray]
    write_csv: Callable[[Path, list[str], np.ndarray, dict, dict], None]


# each task's steps, named by its medbundle.tasks spec (benchmark.inference)
RSNA = Task(_rsna_set, _rsna_image, _rsna_csv)
CHEST_XRAY = Task(_chest_xray_set, _chest_xray_image, _chest_xray_csv)
ISIC = Task(_isic_set, _isic_image, _isic_csv)


class PlainImages(torch.utils.data.Dataset):
    """The plain script's dataset: `image(file, settings)` of every file as a float32 (C, H, W) tensor.

    Args:
        image: a task's plain image step (`Task.image`).
        files: its files, or "<hdf5>::<key>" members.
        settings: the checkpoint's stored settings (image_size, clahe).
    """

    def __init__(self, image: Callable[[str, dict], np.ndarray], files: Sequence[str], settings: dict) -> None:
        self.image, self.files, self.settings = image, list(files), settings

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(self.image(self.files[index], self.settings), dtype=np.float32))


def plain_pass(network: torch.nn.Module, loader: Iterable[torch.Tensor], checkpoint: Path,
               write: Callable[[np.ndarray, dict], None]) -> None:
    """Load the weights (the bundle's CheckpointLoader does on every run), predict, activate, write the CSV."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    network.load_state_dict(state["model"])
    network.eval()
    with torch.inference_mode():
        logits = torch.cat([network(batch) for batch in loader])
    probabilities = torch.sigmoid(logits[:, 0]) if logits.shape[1] == 1 else torch.softmax(logits, 1)
    write(probabilities.numpy(), state["thresholds"])


def _model_pass(network: torch.nn.Module, shape: Sequence[int], n_images: int, batch_size: int) -> Callable[[], None]:
    """One pass of the network alone over `n_images` random images in the loader's batch sizes."""
    sizes = [batch_size] * (n_images // batch_size) + ([n_images % batch_size] if n_images % batch_size else [])
    batch = torch.rand(batch_size, *shape)

    def run() -> None:
        network.eval()
        with torch.inference_mode():
            for size in sizes:
                network(batch[:size])

    return run


def _interleaved(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """The best seconds of each run over `repeats` rounds that call every run once in turn, so that a machine busy
    for a while (other processes, CPU clocks) slows each run alike, after one untimed round: first calls pay for
    the file cache, lazy imports, the network's first allocations."""
    for run in runs.values():
        run()
    best = dict.fromkeys(runs, math.inf)
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


# ---- where a slow bundle's time goes -------------------------------------------------------------------------------

# per path, stage: (file path ending, function names) whose cumulative profiled time is the stage's
STAGES = {
    "bundle": {"decode + preprocess": ("monai/data/dataset.py", ("_transform",)),
               "collate": ("monai/data/utils.py", ("list_data_collate",)),
               "network": ("medbundle/networks/timm_classifier.py", ("forward",)),
               "CSV": ("medbundle/handlers/prediction_writer.py", ("write",))},
    "plain": {"decode + preprocess": ("medbundle/benchmarks/inference.py", ("__getitem__",)),
              "collate": ("torch/utils/data/_utils/collate.py", ("default_collate",)),
              "network": ("medbundle/networks/timm_classifier.py", ("forward",)),
              "CSV": ("medbundle/benchmarks/inference.py", tuple(task.write_csv.__name__ for task in (RSNA, CHEST_XRAY, ISIC)))},
}


def stage_seconds(run: Callable[[], object], stages: dict[str, tuple[str, tuple[str, ...]]]) -> dict[str, float]:
    """Seconds of one cProfiled `run` per stage of `stages` (the cumulative time of the stage's function), the rest
    as "other" (engine and events, checkpoint load, activation) and the profiled "total"."""
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.runcall(run)
    total = time.perf_counter() - start
    stats = pstats.Stats(profiler).stats  # {(file, line, name): (calls, primitive calls, own, cumulative, callers)}
    seconds = {stage: sum(cumulative for (file, _, name), (_, _, _, cumulative, _) in stats.items()
                          if file.replace(os.sep, "/").endswith(ending) and name in functions)
               for stage, (ending, functions) in stages.items()}
    return {**seconds, "other": total - sum(seconds.values()), "total": total}


def _reduce_note(items: Items, image_size: Sequence[int]) -> str:
    """rsna's main difference in work: how far the bundle's reader shrinks a JPEG 2000 mammogram while decoding it."""
    import pydicom

    from medbundle.io.dicom import read_dicom

    j2k = [path for path, _ in items
           if pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID == pydicom.uid.JPEG2000Lossless]
    if not j2k:
        return "rsna: no JPEG 2000 file, so both paths decode every pixel"
    image, meta = read_dicom(j2k[0], image_size)
    shapes = f"{image.shape[0]}x{image.shape[1]} of {meta['rows']}x{meta['columns']}"
    if not meta["reduce_level"]:
        return f"rsna: image_size {list(image_size)} needs every pixel, so both paths decode JPEG 2000 at full resolution"
    return (f"rsna: the bundle's MammoDicomReader decodes the {len(j2k)} of {len(items)} files in JPEG 2000 "
            f"{meta['reduce_level']} resolution level(s) down ({shapes}) since image_size {list(image_size)} needs "
            "no more (reduced_decode: true); the plain script decodes every pixel, as pydicom does")


# ---- one row ---------------------------------------------------------------------------------------------------------

def bundle_evaluator(bundle: str, folder: Path, overrides: dict) -> tuple[ConfigParser, SupervisedEvaluator, float]:
    """inference.yaml's parser and evaluator as ``monai.bundle run`` builds them, and the seconds that took.

    Args:
        bundle: the bundle folder under bundles/.
        folder: the run's folder; ``folder/bundle`` is the bundle_root (models/fold0/model.pt, outputs/).
        overrides: inference.yaml keys to set (data location, num_workers, batch_size); device is always the CPU.
    """
    from monai.bundle import ConfigParser

    start = time.perf_counter()
    parser = ConfigParser()
    parser.read_config(str(BUNDLES / bundle / "configs" / "inference.yaml"))
    parser.update({"bundle_root": str(folder / "bundle"), "device": "$torch.device('cpu')", "amp": False, **overrides})
    parser.get_parsed_content("initialize")
    evaluator = parser.get_parsed_content("evaluator")
    return parser, evaluator, time.perf_counter() - start


def _measure(bundle: str, model_name: str, folder: Path, n_images: int, source: Sequence[int],
             image_size: Sequence[int] | None, batch_size: int | None, workers: int, repeats: int,
             profile_below: float) -> tuple[dict, list[str]]:
    """One table row (bundle, plain and model-only images/s) and its notes."""
    from medbundle.benchmarks.export import export_checkpoint

    task = resolve(benchmark_facts(bundle).inference)
    checkpoint = folder / "bundle" / "models" / "fold0" / "model.pt"
    checkpoint.parent.mkdir(parents=True)
    settings = export_checkpoint(bundle, model_name == "demo", image_size, checkpoint)
    data_overrides, items = task.write_set(folder / "data", n_images, source)
    overrides = {**data_overrides, "num_workers": workers, **({"batch_size": batch_size} if batch_size else {})}
    parser, evaluator, startup_s = bundle_evaluator(bundle, folder, overrides)
    batch_size = parser.get_parsed_content("batch_size")
    network = evaluator.network
    files, ids = (list(column) for column in zip(*items))
    dataset = PlainImages(task.image, files, settings)
    (folder / "plain").mkdir()

    def write(probabilities: np.ndarray, thresholds: dict) -> None:
        task.write_csv(folder / "plain", ids, probabilities, settings, thresholds)

    def plain(loader_workers: int) -> Callable[[], None]:
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=loader_workers)
        return lambda: plain_pass(network, loader, checkpoint, write)

    shape, n = tuple(dataset[0].shape), len(items)
    model = _model_pass(network, shape, n, batch_size)
    seconds = _interleaved({"bundle": evaluator.run, "plain": plain(workers), "model_only": model}, repeats)
    row = {
        "bundle": bundle, "model": model_name, "backbone": settings["backbone"], "input": "x".join(map(str, shape)),
        "images": n, "batch": batch_size, "workers": workers, "bundle_images_per_s": n / seconds["bundle"],
        "plain_images_per_s": n / seconds["plain"], "model_only_images_per_s": n / seconds["model_only"],
        "bundle_over_plain": seconds["plain"] / seconds["bundle"],
        "bundle_over_model_only": seconds["model_only"] / seconds["bundle"], "startup_s": startup_s,
        "source": "x".join(map(str, source)),
    }
    notes = [_reduce_note(items, settings["image_size"])] if bundle == "rsna" else []
    if row["bundle_over_plain"] < profile_below:
        from monai.data import DataLoader

        evaluator.data_loader = DataLoader(evaluator.data_loader.dataset, batch_size=batch_size)  # inference.yaml's, serial
        row["profile_s"] = {"bundle": stage_seconds(evaluator.run, STAGES["bundle"]),
                            "plain": stage_seconds(plain(0), STAGES["plain"])}
        stages = ", ".join(f"{stage} {row['profile_s']['bundle'][stage]:.2f} / {row['profile_s']['plain'][stage]:.2f}"
                           for stage in row["profile_s"]["bundle"])
        notes.append(f"{bundle} {model_name}: bundle {row['bundle_over_plain']:.2f}x plain; one cProfiled pass "
                     f"without workers, seconds bundle / plain: {stages}")
    return row, notes


def inference(
    bundles: tuple[str, ...] = ("rsna", "chest_xray", "isic"),
    models: tuple[str, ...] = ("demo",),
    n_images: int = 48,
    batch_size: int | None = 16,
    workers: int = 1,
    threads: int | None = None,
    repeats: int = 3,
    rsna_shape: tuple[int, int] = (2048, 1664),
    chest_xray_sides: tuple[int, int] = (1024, 1536),
    isic_sides: tuple[int, int] = (100, 200),
    image_size: tuple[int, int] | None = None,
    profile_below: float = 0.8,
) -> Report:
    """End-to-end inference images/s of each bundle's inference.yaml, against a plain script and the network alone.

        python scripts/benchmark.py inference
        python scripts/benchmark.py inference --models "[demo,default]" --n_images 32
        python scripts/benchmark.py inference --bundles "[isic]" --n_images 8 --image_size "[32,32]" --repeats 1

    Per bundle and model, a randomly initialised checkpoint (`medbundle.benchmarks.export.export_checkpoint`) is put
    where inference.yaml looks for it, and a synthetic test set of about `n_images` images of realistic source size is
    written in the Kaggle layout (`medbundle.demo`). Then, on the CPU, each figure is the best of `repeats` rounds
    that run the three in turn, after one untimed round:

    - `bundle`: inference.yaml's evaluator, built as ``monai.bundle run`` builds it (that one-off construction, the
      imports excluded, is `startup s`), timed from ``evaluator.run()`` to its CSVs written: checkpoint load,
      decoding, preprocessing, network, postprocessing, writer handlers.
    - `plain`: the same files decoded with pydicom / cv2 / h5py, then the same `medbundle.imaging` cores (`Task`,
      `PlainImages`), in a torch DataLoader of the same batch size and workers; the checkpoint loaded into the same
      network, eval + inference_mode, sigmoid / softmax, the same CSVs written by pandas.
    - `model only`: the network alone on random batches of the input shape, in the same batch sizes.

    Where the bundle runs below `profile_below` x plain, one pass of each without workers is cProfiled and the notes
    give its seconds per stage (`STAGES`): decoding + preprocessing, collate, network, CSV and the rest.

    Args:
        bundles: bundle folders under bundles/.
        models: "demo" (demo.yaml's resnet10t at a small size) and/or "default" (train.yaml's backbone and size,
            randomly initialised; slow on a CPU).
        n_images: test images per bundle (rsna writes whole demo patients, so about this many).
        batch_size: the loaders' batch size; None: each inference.yaml's (32, 32, 64). 16 gives the default 48
            images three batches, so that loading overlaps the network as in a long run.
        workers: DataLoader workers of both the bundle and the plain runs.
        threads: torch intra-op threads; default the CPU cores less `workers` (at least 1). Workers and the network's
            OpenMP threads must not share cores: a thread that loses its core holds the others at every barrier,
            and a forward pass then takes whole scheduler time slices, as long as the workers decode.
        repeats: timed rounds.
        rsna_shape: (rows, columns) of the mammograms (Kaggle's: 4096x3328, 2294x1914 and others, mostly JPEG 2000).
        chest_xray_sides: smallest and largest side of the chest X-rays.
        isic_sides: smallest and largest side of the lesion crops (ISIC 2024's: ~100-250 px JPEGs).
        image_size: replace every model's input size, e.g. for a quick check.
        profile_below: profile the rows whose bundle/plain is below this (0: none).
    """
    torch.set_num_threads(threads or max(1, (os.cpu_count() or 1) - workers))
    sources = {"rsna": rsna_shape, "chest_xray": chest_xray_sides, "isic": isic_sides}
    rows, notes = [], []
    with tempfile.TemporaryDirectory(prefix="medbundle_bench_inference_") as work:
        for bundle in bundles:
            for model in models:
                row, row_notes = _measure(bundle, model, Path(work) / f"{bundle}_{model}", n_images, sources[bundle],
                                          image_size, batch_size, workers, repeats, profile_below)
                rows.append(row)
                notes += row_notes
    return Report(
        name="inference",
        title=(f"End-to-end inference on the CPU, images/s, best of {repeats} rounds; {torch.get_num_threads()} torch "
               f"threads, {workers} DataLoader workers. bundle: inference.yaml's evaluator, run to its CSVs; plain: "
               "pydicom / cv2 / h5py decoding + the same medbundle.imaging cores, same network and CSVs; model only: "
               "the network on random batches"),
        columns=[("bundle", "bundle"), ("model", "model"), ("backbone", "backbone"), ("input", "input"),
                 ("images", "images"), ("batch", "batch"), ("workers", "workers"),
                 ("bundle_images_per_s", "bundle"), ("plain_images_per_s", "plain"),
                 ("model_only_images_per_s", "model only"), ("bundle_over_plain", "bundle/plain"),
                 ("bundle_over_model_only", "bundle/model only"), ("startup_s", "startup s")],
        rows=rows,
        notes=notes,
        settings={"bundles": list(bundles), "models": list(models), "n_images": n_images, "batch_size": batch_size,
                  "workers": workers, "threads": torch.get_num_threads(), "repeats": repeats, "sources": sources,
                  "image_size": image_size, "profile_below": profile_below},
    )
