"""Benchmarks of every bundle's data path, trainer and runtimes against plain references (python-fire).

    python scripts/benchmark.py dicom --folder ../shared/data/dicom
    python scripts/benchmark.py dicom_reduce --folder ../shared/data/dicom --image_size "[1024,512]"
    python scripts/benchmark.py decoders --folder ../shared/data/dicom
    python scripts/benchmark.py crop --films ../shared/data/mammo_films --shape "[3000,2400]"
    python scripts/benchmark.py chest_xray
    python scripts/benchmark.py isic --image_size "[224,224]" --n_images 2000 --workers 2
    python scripts/benchmark.py training --image_size "[256,128]" --backbone resnet10t
    python scripts/benchmark.py isic_training --image_size "[64,64]" --num_workers "[0,2]"
    python scripts/benchmark.py trainer_overhead --bundles "[rsna]" --batch_size 8 --threads 1
    python scripts/benchmark.py data_path
    python scripts/benchmark.py inference
    python scripts/benchmark.py export
    python scripts/benchmark.py realdata --shared ../shared/data   # each bundle on real images beside a plain loop
    python scripts/benchmark.py tracking   # seconds per epoch with --tracking mlflow / W&B against untracked
    python scripts/benchmark.py evaluation_report   # an evaluation of 1,000 demo images with and without its report
    python scripts/benchmark.py tabular --boosters "[lightgbm,xgboost,catboost]"   # isic's second-stage trees per fold
    python scripts/benchmark.py full --out_dir benchmark_results/full   # all of them, then BENCHMARKS.md

Every subcommand prints one markdown table and writes the same rows, its settings and the machine as JSON to
``--out`` (default ``benchmark_results/<subcommand>.json``). The code lives in `medbundle.benchmarks`; each
subcommand's docstring (``python scripts/benchmark.py <subcommand> --help``) says what it times and against what.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import fire

COMMANDS = {  # subcommand: module of medbundle.benchmarks holding the function of the same name
    "dicom": "dicom",
    "dicom_reduce": "dicom",
    "decoders": "dicom",
    "crop": "crop",
    "chest_xray": "chest_xray",
    "isic": "isic",
    "training": "training",
    "isic_training": "isic",
    "trainer_overhead": "training",
    "data_path": "data_path",
    "inference": "inference",
    "export": "export",
    "realdata": "realdata",
    "tracking": "tracking",
    "evaluation_report": "evaluation_report",
    "tabular": "tabular",
}
RESULTS = Path("benchmark_results")


def _command(name: str, module: str):
    """The benchmark `name` of `medbundle.benchmarks.<module>`, with an ``out`` argument: it prints the returned
    report's table and writes its JSON there."""
    function = getattr(importlib.import_module(f"medbundle.benchmarks.{module}"), name)

    def run(*args, out: str | None = None, **kwargs) -> None:
        report = function(*args, **kwargs)
        path = report.write(out or RESULTS / f"{name}.json")
        print(report.markdown())
        print(f"\nJSON: {path}")

    signature = inspect.signature(function)
    out = inspect.Parameter("out", inspect.Parameter.KEYWORD_ONLY, default=None, annotation="str | None")
    run.__signature__ = signature.replace(parameters=[*signature.parameters.values(), out],
                                          return_annotation=None)
    run.__doc__ = (function.__doc__ or "") + f"\n    --out: the JSON file to write; default {RESULTS}/{name}.json\n"
    run.__name__ = name
    return run


if __name__ == "__main__":
    from medbundle.benchmarks.full import full

    fire.Fire({**{name: _command(name, module) for name, module in COMMANDS.items()}, "full": full})
