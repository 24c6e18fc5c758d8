"""Shared test fixtures: offline timm, the shared real DICOM folder and scanned films, a tiny real MONAI evaluator, a
fake TensorBoard writer, the benchmark command line, killing a bundle's training mid-epoch and checking its resume."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _one_share_of_the_cores_per_worker() -> None:
    """Under pytest-xdist (the default suite: 2 workers), torch in each worker, and the commands the tests start,
    use the worker's share of the cores: two workers each running 2 threads on 2 cores spin against each other
    (the bundle tests already gave their commands OMP_NUM_THREADS=1 for that reason)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = max(1, len(os.sched_getaffinity(0)) // workers)
        torch.set_num_threads(threads)
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))


_one_share_of_the_cores_per_worker()

REPO = Path(__file__).resolve().parents[1]
SHARED_DICOM = REPO.parent / "shared" / "data" / "dicom"
SHARED_FILMS = REPO.parent / "shared" / "data" / "mammo_films"
#: hand-annotated breast and marker boxes of the 12 shared films (see the file's "_about")
FILM_BOXES = json.loads((REPO / "tests" / "data" / "mammo_films_boxes.json").read_text())["films"]


class LogitOf(torch.nn.Module):
    """A 'network' whose logit is the image mean: lets a test choose each prediction exactly."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1).mean(1, keepdim=True)


def make_evaluator(
    probabilities: Sequence[float],
    labels: Sequence[float] | None,
    breast_ids: Sequence[str],
    key_metric: dict | None = None,
    additional_metrics: dict | None = None,
    handlers: Sequence | None = None,
    batch_size: int = 3,
):
    """A real MONAI SupervisedEvaluator whose sigmoid predictions equal `probabilities`."""
    from monai.data import DataLoader
    from monai.engines import SupervisedEvaluator
    from monai.transforms import Activationsd

    logits = torch.logit(torch.tensor(probabilities, dtype=torch.float64).clamp(1e-6, 1 - 1e-6)).float()
    data = []
    for i, (logit, breast) in enumerate(zip(logits, breast_ids)):
        item = {"image": torch.full((1, 2, 2), float(logit)), "breast_id": breast, "image_id": str(i)}
        if labels is not None:
            item["label"] = torch.tensor([float(labels[i])])
        data.append(item)
    return SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=DataLoader(data, batch_size=batch_size),
        network=LogitOf(),
        postprocessing=Activationsd(keys="pred", sigmoid=True),
        key_val_metric=key_metric,
        additional_metrics=additional_metrics,
        val_handlers=list(handlers or []),
    )


class FakeWriter:
    """A TensorBoard ``SummaryWriter`` stand-in that keeps the images added to it by tag."""

    def __init__(self):
        self.images = {}

    def add_image(self, tag, image, step):
        self.images[tag] = (image, step)

    def flush(self):
        pass


@pytest.fixture
def shared_dicom_dir() -> Path:
    if not SHARED_DICOM.is_dir():
        pytest.skip(f"{SHARED_DICOM} not present")
    return SHARED_DICOM


@pytest.fixture
def run_benchmark(tmp_path):
    """Run ``scripts/benchmark.py <args>`` as the README does; (its stdout, the JSON it wrote as a dict)."""

    def run(*args: str) -> tuple[str, dict]:
        out = tmp_path / f"benchmark_{args[0]}.json"
        command = [sys.executable, str(REPO / "scripts" / "benchmark.py"), *args, "--out", str(out)]
        result = subprocess.run(command, check=False, cwd=REPO, capture_output=True, text=True, timeout=900,
                                env={**os.environ, "HF_HUB_OFFLINE": "1", "PAGER": "cat"})
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result.stdout, json.loads(out.read_text())

    return run


@functools.cache
def _benchmark_commands() -> dict:
    """scripts/benchmark.py's subcommands as its ``fire.Fire`` gets them (the script run as a module, not main)."""
    import runpy

    script = runpy.run_path(str(REPO / "scripts" / "benchmark.py"))
    return {name: script["_command"](name, module) for name, module in script["COMMANDS"].items()}


@pytest.fixture
def run_benchmark_in_process(tmp_path, capsys):
    """``run_benchmark`` in this process: the script's own subcommand table and fire's parsing of the same arguments,
    without the ~7 s of a new interpreter; the torch thread count that a benchmark sets is restored after it."""
    import fire

    def run(*args: str) -> tuple[str, dict]:
        out = tmp_path / f"benchmark_{args[0]}.json"
        threads = torch.get_num_threads()
        capsys.readouterr()
        try:
            with contextlib.chdir(REPO):
                fire.Fire(_benchmark_commands(), command=[*args, "--out", str(out)])
        finally:
            torch.set_num_threads(threads)
        return capsys.readouterr().out, json.loads(out.read_text())

    return run


def as_overrides(flags: Sequence[str]) -> dict:
    """``--key value`` overrides of a command line as the keyword arguments fire passes to monai.bundle.run: each value
    a Python literal where it parses as one (``[48,48]``, ``1e-3``, ``False``), else the string."""
    import ast

    assert len(flags) % 2 == 0 and all(key.startswith("--") for key in flags[::2]), flags

    def value(text: str) -> object:
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text

    return {key.removeprefix("--"): value(text) for key, text in zip(flags[::2], flags[1::2])}


def run_in_process(
    config_file: str | Path | Sequence[str | Path], run_id: str = "run", cwd: Path = REPO, **overrides
) -> str:
    """``python -m monai.bundle run`` in this process, from `cwd` (the repository root, where the tests run the
    command): what the command calls (monai.bundle.run) without the ~7 s of a new interpreter, for tests whose
    subject is not the command line. Returns what the run printed, its logs included (the bundle's logging.conf,
    as the command applies it). An error propagates with that output as a note: the command would print
    ``medbundle: error: <root_cause(error)>`` last (medbundle.excepthook, tested in test_excepthook)."""
    import io
    import logging

    from monai.bundle import run

    def console_handlers() -> list[logging.StreamHandler]:
        """The plain stream handlers of every logger: MONAI's get_logger binds one to sys.stdout as it is then."""
        loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
        return [h for lg in loggers if isinstance(lg, logging.Logger) for h in lg.handlers
                if type(h) is logging.StreamHandler]  # fmt: skip

    def set_stream(handler: logging.StreamHandler, stream) -> object:
        """``handler.setStream`` without its flush of the stream it replaces, which may be the capture of an earlier
        test, closed since (a flush then raises "I/O operation on closed file")."""
        with handler.lock:
            old, handler.stream = handler.stream, stream
        return old

    def usable(stream) -> object:
        return stream if stream is not None and not getattr(stream, "closed", False) else sys.stdout

    files = [str(config_file)] if isinstance(config_file, (str, Path)) else [str(f) for f in config_file]
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    printed = io.StringIO()
    streams = {handler: set_stream(handler, printed) for handler in console_handlers()}  # earlier runs' loggers too
    try:
        with contextlib.chdir(cwd), contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            run(run_id=run_id, config_file=files, **overrides)
    except Exception as error:
        error.add_note(printed.getvalue()[-3000:])
        raise
    finally:
        for handler in root.handlers[:]:  # the logging.conf handler writes to `printed`: put pytest's back
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        for handler in console_handlers():  # and the other loggers' streams as they were (new ones: sys.stdout)
            set_stream(handler, usable(streams.get(handler)))
    return printed.getvalue()


def blank_dicom(path: Path) -> None:
    """Make a DICOM's image constant (and drop its windows): nothing on it, so the breast crop keeps it whole."""
    import numpy as np
    import pydicom

    ds = pydicom.dcmread(path)
    ds.set_pixel_data(np.full((ds.Rows, ds.Columns), 9, np.uint16), ds.PhotometricInterpretation, ds.BitsStored)
    for tag in ("WindowCenter", "WindowWidth", "WindowCenterWidthExplanation", "VOILUTFunction"):
        if tag in ds:
            delattr(ds, tag)
    ds.save_as(path, enforce_file_format=True)


@pytest.fixture(scope="session")
def mammo_films() -> Path:
    """../shared/data/mammo_films: 12 real scanned mammograms (mini-MIAS, PNG); the tests skip without it."""
    if not all((SHARED_FILMS / f"{name}.png").is_file() for name in FILM_BOXES):
        pytest.skip(f"{SHARED_FILMS} not present")
    return SHARED_FILMS


def write_film_dicom(png: Path, out: Path, photometric: str, image_id: str, patient_id: str) -> None:
    """A shared film as a JPEG 2000 Lossless MG DICOM (MONOCHROME1 stores it inverted), as a Kaggle set holds it."""
    import cv2
    import numpy as np
    import pydicom
    from pydicom.uid import (
        DigitalMammographyXRayImageStorageForPresentation,
        JPEG2000Lossless,
    )

    from medbundle.demo.dicom_header import presentation_header

    pixels = cv2.imread(str(png), cv2.IMREAD_GRAYSCALE)
    if photometric == "MONOCHROME1":
        pixels = 255 - pixels
    ds = presentation_header("films", 0, DigitalMammographyXRayImageStorageForPresentation, "MG", image_id,
                             patient_id, "BREAST")  # fmt: skip
    ds.set_pixel_data(np.ascontiguousarray(pixels), photometric, 8, generate_instance_uid=False)
    ds.compress(JPEG2000Lossless, generate_instance_uid=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    pydicom.dcmwrite(out, ds, enforce_file_format=True)


@pytest.fixture(scope="session")
def film_dicoms(mammo_films, tmp_path_factory) -> dict[tuple[str, str], Path]:
    """Every shared film written as a JPEG 2000 DICOM in both photometric interpretations: (name, photometric) -> path."""
    root = tmp_path_factory.mktemp("film_dicoms")
    paths = {}
    for name in sorted(FILM_BOXES):
        for photometric in ("MONOCHROME1", "MONOCHROME2"):
            paths[name, photometric] = root / photometric / f"{name}.dcm"
            write_film_dicom(mammo_films / f"{name}.png", paths[name, photometric], photometric, name, name)
    return paths


@pytest.fixture(scope="session")
def film_dataset(film_dicoms, tmp_path_factory) -> Path:
    """The 12 films as an rsna Kaggle set: train.csv and JPEG 2000 DICOMs, alternately MONOCHROME1 and 2, one
    patient per film (image_id = the film's number, patient_id = 1000 + it), all normal."""
    import shutil

    import pandas as pd

    root = tmp_path_factory.mktemp("films")
    rows = []
    for i, (name, film) in enumerate(sorted(FILM_BOXES.items())):
        image_id, patient_id = name[3:].lstrip("0"), str(1000 + int(name[3:]))
        photometric = ("MONOCHROME1", "MONOCHROME2")[i % 2]
        target = root / "train_images" / patient_id / f"{image_id}.dcm"
        target.parent.mkdir(parents=True)
        shutil.copyfile(film_dicoms[name, photometric], target)
        rows.append({"site_id": 1, "patient_id": patient_id, "image_id": image_id, "laterality": film["laterality"],
                     "view": "MLO", "age": 50, "cancer": 0})  # fmt: skip
    pd.DataFrame(rows).to_csv(root / "train.csv", index=False)
    return root


def kill_mid_epoch(
    command: Sequence[str], log: Path, epoch: int, env: dict | None = None, timeout: float = 300
) -> None:
    """Run a bundle's training `command` (output to `log`) and SIGKILL it, DataLoader workers included, while the
    trainer is inside `epoch`: once its progress log has counted some but not all of that epoch's iterations.

    `env` (default: this environment, offline) must match the uninterrupted run's, thread counts included, for the
    weights to be comparable bit for bit.
    """
    progress = re.compile(rf"SupervisedTrainer epoch {epoch}: \d+% \((\d+)/(\d+) iterations")
    env = {**(os.environ if env is None else env), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    with log.open("w") as out:
        process = subprocess.Popen(list(command), cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + timeout
    try:
        while process.poll() is None and time.monotonic() < deadline:
            if any(int(done) < int(total) for done, total in progress.findall(log.read_text())):
                break
            time.sleep(0.02)
        assert process.poll() is None, f"the run ended before epoch {epoch} was interrupted:\n{log.read_text()[-3000:]}"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def trained_epochs(log: str) -> list[int]:
    """The epochs a training log's trainer completed ("SupervisedTrainer ... Epoch[n] Complete")."""
    return [int(n) for n in re.findall(r"SupervisedTrainer - INFO - Epoch\[(\d+)\] Complete", log)]


def assert_resumed(log: str, checkpoint: Path, epochs: int) -> None:
    """`log`, the output of a ``--resume`` run, continued from `checkpoint` (``last_checkpoint_epoch=k.pt``) and
    trained epochs k+1 to `epochs` only: a run that ignored --resume would retrain from epoch 1."""
    k = int(re.search(r"epoch=(\d+)\.pt$", checkpoint.name).group(1))
    assert f"resuming from {checkpoint}" in log, log[-3000:]
    assert trained_epochs(log) == list(range(k + 1, epochs + 1)), f"resumed from epoch {k}:\n{log[-3000:]}"


def assert_same_state(expected: object, actual: object, where: str = "checkpoint") -> None:
    """Two checkpoints (nested dicts, lists, tensors, numbers) are equal bit for bit; the message names the entry."""
    if isinstance(expected, torch.Tensor):
        assert isinstance(actual, torch.Tensor) and expected.dtype == actual.dtype, where
        assert torch.equal(expected, actual), f"{where} differs"
    elif isinstance(expected, dict):
        assert isinstance(actual, dict) and expected.keys() == actual.keys(), f"{where}: keys differ"
        for key in expected:
            assert_same_state(expected[key], actual[key], f"{where}[{key!r}]")
    elif isinstance(expected, (list, tuple)):
        assert isinstance(actual, (list, tuple)) and len(expected) == len(actual), f"{where}: lengths differ"
        for i, (a, b) in enumerate(zip(expected, actual)):
            assert_same_state(a, b, f"{where}[{i}]")
    else:
        assert expected == actual, f"{where}: {expected!r} != {actual!r}"


def host_pfbeta(labels, predictions, beta: float = 1.0) -> float:
    """The RSNA Screening Mammography competition's probabilistic F-beta: its host's reference loop, verbatim apart
    from formatting (an independent check of medbundle.metrics.pfbeta and of the bundles' metrics.json)."""
    y_true_count = 0
    ctp = 0
    cfp = 0
    for idx in range(len(labels)):
        prediction = min(max(predictions[idx], 0), 1)
        if labels[idx]:
            y_true_count += 1
            ctp += prediction
        else:
            cfp += prediction
    beta_squared = beta * beta
    c_precision = ctp / (ctp + cfp)
    c_recall = ctp / y_true_count
    if c_precision > 0 and c_recall > 0:
        return (1 + beta_squared) * (c_precision * c_recall) / (beta_squared * c_precision + c_recall)
    return 0
