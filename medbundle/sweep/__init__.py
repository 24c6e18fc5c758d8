"""Cross-validation sweeps of a bundle: train every (model, fold), gather out-of-fold predictions, summarise.

    python scripts/sweep.py train --bundle bundles/isic --folds 0,1,2,3,4 --models efficientnet_b0,convnext_tiny \\
        --name isic_cv --epochs 3 [--gpus 0,1] [--nproc 2] [--launcher slurm --submit]
    python scripts/sweep.py oof --runs runs/isic_cv
    python scripts/sweep.py summary --runs runs/isic_cv

Every run is the bundle's own ``python -m monai.bundle run training`` with ``--bundle_root
runs/<name>/<model>/fold_<k>`` (:mod:`~medbundle.sweep.layout`, :mod:`~medbundle.sweep.commands`); finished runs
are skipped and interrupted ones resumed (:mod:`~medbundle.sweep.status`), locally
(:mod:`~medbundle.sweep.training`) or as a Slurm array job (:mod:`~medbundle.sweep.slurm`, whose docstring shows
one run on several nodes with ``srun torchrun --nnodes=$SLURM_NNODES ...``). :mod:`~medbundle.sweep.oof`
gathers each fold's validation predictions into one table per model, :mod:`~medbundle.sweep.summary` scores it
(:mod:`~medbundle.sweep.task_metrics`) and stores the OOF threshold in every fold's ``model.pt``
(:mod:`~medbundle.sweep.checkpoint_update`).

Submodules are imported on first access, so training a sweep does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "collect_oof",
    "store_oof_threshold",
    "summarize",
    "train_sweep",
]

_HOMES = {
    "collect_oof": "medbundle.sweep.oof",
    "store_oof_threshold": "medbundle.sweep.checkpoint_update",
    "summarize": "medbundle.sweep.summary",
    "train_sweep": "medbundle.sweep.training",
}


def __getattr__(name: str) -> Any:
    """Import the module holding `name` on first access (PEP 562)."""
    if name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
