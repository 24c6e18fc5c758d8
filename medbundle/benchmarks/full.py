"""One full benchmark run: every subcommand at the sizes BENCHMARKS.md reports, each written as JSON, then the
markdown rendered from those files, so the published figures are one run's and can be regenerated."""

from __future__ import annotations

import importlib
import json
import shlex
import time
import traceback
from pathlib import Path
from typing import Any

from medbundle.benchmarks.report import Report, machine

# (subcommand, module, arguments of the full run, what the section shows): the order of BENCHMARKS.md
FULL_RUN: list[tuple[str, str, dict[str, Any], str]] = [
    ("dicom", "dicom", {"folder": "../shared/data/dicom", "image_size": [1024, 512], "workers": 2},
     "rsna's DICOM data path on the shared real radiographs."),
    ("dicom_reduce", "dicom", {"folder": "../shared/data/dicom", "image_size": [1024, 512], "demo_shape": [3000, 2400],
                               "demo_patients": 4, "repeats": 3, "threads": 1},
     "rsna's decode + preprocess per transfer syntax, reduced-resolution JPEG 2000 decoding on and off, one core."),
    ("decoders", "dicom", {"folder": "../shared/data/dicom", "demo_shape": [3000, 2400], "demo_patients": 2,
                           "repeats": 3},
     "Every installed pydicom decoding plugin per transfer syntax: which one `medbundle.io.read_dicom` should use."),
    ("crop", "crop", {"films": "../shared/data/mammo_films", "shape": [3000, 2400], "demo_patients": 2, "repeats": 3},
     "rsna's breast crop per mammogram-sized image: real scanned films and synthetic digital mammograms."),
    ("chest_xray", "chest_xray", {}, "chest_xray's PNG / JPEG data path."),
    ("isic", "isic", {"image_size": [224, 224], "n_images": 2000, "workers": 2, "repeats": 3},
     "isic's HDF5 data path at the default input size."),
    ("data_path", "data_path", {}, "Does the data path keep up with the model? Every bundle, demo and default settings."),
    ("training", "training", {}, "rsna's disk cache: filled once, then read by every epoch."),
    ("isic_training", "isic", {"image_size": [64, 64], "n_images": 2000, "epochs": 3, "num_workers": [0, 2]},
     "isic's trainer against a plain loop, with and without the cache."),
    ("trainer_overhead", "training", {"rounds": 3, "threads": 2},
     "Every bundle's SupervisedTrainer against a plain loop over the same DataLoader, and the speed switches."),
    ("inference", "inference", {}, "End-to-end inference (inference.yaml) against plain code and the model alone."),
    ("export", "export", {"repeats": 5}, "Eager PyTorch against the exported TorchScript and ONNX models."),
    ("realdata", "realdata", {"shared": "../shared/data", "folds": [0, 1, 2, 3, 4]},
     "Each bundle trained briefly on the shared real images with ImageNet weights, beside a plain PyTorch + timm loop, "
     "once per fold of a patient-grouped 5-fold split, so that every image is validated once (one split's 64 or 80 "
     "validation radiographs and 10 malignant lesions decide little), then the means over the folds."),
    ("tracking", "tracking", {}, "What experiment tracking costs a training epoch: untracked, MLflow and W&B."),
    ("evaluation_report", "evaluation_report", {}, "What the evaluation report costs an evaluation of 1,000 images."),
    ("tabular", "tabular", {}, "isic's second stage: each booster on each fold of a table of the real ISIC 2024 size."),
]


def render(out_dir: str | Path, markdown: str | Path = "BENCHMARKS.md") -> Path:
    """Write `markdown` from the JSON reports in `out_dir`, in FULL_RUN's order; the path written."""
    out_dir = Path(out_dir)
    written = [(name, about, out_dir / f"{name}.json") for name, _, _, about in FULL_RUN]
    present = [(name, about, path) for name, about, path in written if path.exists()]
    if not present:
        raise FileNotFoundError(f"{out_dir}: no benchmark JSON; run `python scripts/benchmark.py full` first")
    info = json.loads(present[0][2].read_text())["machine"]
    lines = [
        "# Benchmarks",
        "",
        ("One run of `python scripts/benchmark.py full` (every subcommand at the sizes below, in one session), rendered "
         "from its JSON files by `medbundle.benchmarks.full.render`. Every figure sits beside a plain PyTorch / pydicom "
         "/ OpenCV reference measured in the same run, as a ratio (`/ plain`); above 1 the bundle is faster."),
        "",
        (f"Machine: {info['cpu']}, {info['cores']} cores, torch {info['torch']} with {info['torch_threads']} threads, "
         f"MONAI {info['monai']}, timm {info['timm']}, pydicom {info['pydicom']}, OpenCV {info['opencv']}, "
         f"onnxruntime {info['onnxruntime']}, Python {info['python']}; GPU: {info['gpu'] or 'none'}. "
         f"Run {info['date']}."),
        "",
    ]
    for name, about, path in written:
        lines += [f"## `{name}`", "", about, ""]
        if path.exists():
            report = Report.read(path)
            command = ["python", "scripts/benchmark.py", name]
            for key, value in _arguments(name).items():
                command += [f"--{key}", value if isinstance(value, str) else json.dumps(value)]
            lines += [f"`{shlex.join(command)}`", "", report.markdown(), ""]
        else:
            error = out_dir / f"{name}.error"
            lines += [f"Not measured in this run{': ' + error.read_text().splitlines()[-1] if error.exists() else ''}.", ""]
    markdown = Path(markdown)
    markdown.write_text("\n".join(lines))
    return markdown


def _arguments(name: str) -> dict[str, Any]:
    return next(arguments for command, _, arguments, _ in FULL_RUN if command == name)


def full(out_dir: str = "benchmark_results/full", only: tuple[str, ...] | None = None, force: bool = False,
         markdown: str = "BENCHMARKS.md", overrides: dict[str, dict] | None = None) -> str:
    """Run every benchmark at BENCHMARKS.md's sizes, write each one's JSON to `out_dir`, then render `markdown`.

        python scripts/benchmark.py full                      # ~100 min on 2 cores (realdata: ~65)
        python scripts/benchmark.py full --only "[dicom,isic]"

    A benchmark whose JSON is already in `out_dir` is not run again (an interrupted run resumes) unless `force`.
    A benchmark that fails writes ``<name>.error`` with its traceback, and the others still run.

    Args:
        out_dir: where the JSON files go.
        only: run only these subcommands (the markdown still shows every JSON present).
        force: run again what is already in `out_dir`.
        markdown: the file to render; empty for none.
        overrides: per subcommand, arguments replacing the full run's, e.g. ``'{"export": {"repeats": 1}}'``.
    """
    out_dir_path = Path(out_dir)
    out_dir_path.mkdir(parents=True, exist_ok=True)
    only = (only,) if isinstance(only, str) else only
    unknown = set(only or ()) - {name for name, *_ in FULL_RUN}
    if unknown:
        raise ValueError(f"--only: unknown {sorted(unknown)}; use {[name for name, *_ in FULL_RUN]}")
    import cv2
    import torch

    threads = (torch.get_num_threads(), cv2.getNumThreads())  # benchmarks that pin threads must not leak them
    summary = []
    for name, module, arguments, _ in FULL_RUN:
        path, error = out_dir_path / f"{name}.json", out_dir_path / f"{name}.error"
        if (only and name not in only) or (path.exists() and not force):
            continue
        torch.set_num_threads(threads[0])
        cv2.setNumThreads(threads[1])
        start = time.perf_counter()
        print(f"[full] {name} ...", flush=True)
        try:
            function = getattr(importlib.import_module(f"medbundle.benchmarks.{module}"), name)
            report = function(**{**arguments, **(overrides or {}).get(name, {})})
            report.write(path)
            error.unlink(missing_ok=True)
            print(report.markdown(), flush=True)
            summary.append(f"{name}: {time.perf_counter() - start:.0f} s")
        except Exception:  # noqa: BLE001 - one failing benchmark must not lose the others' figures
            error.write_text(traceback.format_exc())
            summary.append(f"{name}: FAILED after {time.perf_counter() - start:.0f} s, see {error}")
            print(traceback.format_exc(), flush=True)
    if markdown:
        summary.append(f"rendered {render(out_dir_path, markdown)}")
    summary.append(f"machine: {machine()['cpu']}")
    return "\n".join(summary)
