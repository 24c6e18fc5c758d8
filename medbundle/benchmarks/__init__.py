"""Benchmarks of the bundles' data paths, trainers and runtimes against plain PyTorch / pydicom / OpenCV references.

`scripts/benchmark.py` exposes each module's functions as a `fire` subcommand. Every function returns a
`medbundle.benchmarks.report.Report`: one markdown table (printed) plus the same rows as JSON (written), so
``BENCHMARKS.md`` can be rendered from one run's JSON files. Modules import torch, MONAI and timm lazily
where they can, so listing the subcommands stays quick.
"""
