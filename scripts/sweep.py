"""Cross-validation sweeps of a bundle (python-fire): train every (model, fold), out-of-fold predictions, summary.

    python scripts/sweep.py train --bundle bundles/isic --folds 0,1,2,3,4 --models efficientnet_b0,convnext_tiny \
        [--name NAME] [--gpus 0,1 | --parallel 2] [--nproc 2] [--epochs 3 --image_size "[64,64]" ...]
    python scripts/sweep.py train ... --launcher slurm [--partition gpu --time 12:00:00 --submit]
    python scripts/sweep.py oof --runs runs/NAME [--num_workers 0]
    python scripts/sweep.py summary --runs runs/NAME

Runs live in runs/NAME/<model>/fold_<k>/ (models/, outputs/, train.log, command.txt, status.json); running
`train` again skips finished runs and resumes interrupted ones. `oof` writes runs/NAME/<model>/oof.csv;
`summary` writes runs/NAME/summary.md and summary.csv and stores the OOF threshold in every fold's model.pt
(use it with --threshold_key oof_threshold). See medbundle/sweep/ for the details.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import fire

SCRIPT = Path(__file__).resolve()


def _names(value) -> list[str]:
    """A fire value (``a``, ``a,b`` parsed as a tuple, or a list) as a list of strings."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [v for v in str(value).split(",") if v]


def train(
    bundle: str,
    models,
    folds=None,
    name: str | None = None,
    runs_dir: str = "runs",
    gpus=None,
    parallel: int = 1,
    nproc: int = 1,
    launcher: str = "local",
    submit: bool = False,
    partition: str | None = None,
    time: str = "24:00:00",
    cpus_per_task: int = 8,
    max_parallel: int | None = None,
    tracking: str | None = None,
    **overrides,
) -> None:
    """Train every model on every fold; exit 1 if a run failed.

    Args:
        bundle: the bundle folder, e.g. bundles/isic.
        models: comma-separated model presets (--model), or timm backbones (--backbone: names that are no preset; rsna).
        folds: comma-separated folds; default all n_folds.
        name: the sweep's folder name under runs_dir; default the bundle's name.
        runs_dir: the folder holding sweeps.
        gpus: comma-separated GPU ids; runs go side by side, one per GPU (per --nproc GPUs).
        parallel: runs side by side without --gpus.
        nproc: processes (GPUs) per run, with torch.distributed.run and the bundle's multi_gpu_train.yaml.
        launcher: "local" runs here; "slurm" writes runs/NAME/sweep.sbatch, one array task per run.
        submit: with --launcher slurm, submit the script with sbatch.
        partition: Slurm partition.
        time: Slurm time limit per run (a run stopped by it resumes when resubmitted).
        cpus_per_task: Slurm CPU cores per run.
        max_parallel: Slurm: at most this many runs at once.
        tracking: "mlflow": the sweep as one MLflow experiment, a parent run and a child run per (model, fold),
            in <runs_dir>/<name>/eval/mlruns.db unless --tracking_uri names another store; or a MONAI tracking
            settings file (tracking/wandb.yaml) for every run. Local launcher.
        overrides: bundle overrides for every run, e.g. --epochs 3 --image_size "[64,64]" --dataset_dir DIR.
    """
    from medbundle.sweep.training import train_sweep

    bundle_name = Path(bundle).resolve().name
    sweep = Path(runs_dir) / (name or bundle_name)
    model_names = _names(models)
    fold_list = [int(f) for f in _names(folds)] or None
    gpu_list = [int(g) for g in _names(gpus)] or None
    if launcher == "slurm":
        if tracking:
            raise ValueError("--tracking works with --launcher local only: drop --tracking, or sweep locally.")
        from medbundle.sweep.slurm import slurm_sweep
        from medbundle.sweep.slurm import submit as submit_script

        path = slurm_sweep(SCRIPT, bundle, model_names, fold_list, runs_dir, sweep.name, nproc, partition=partition,
                           time=time, cpus_per_task=cpus_per_task, max_parallel=max_parallel, **overrides)  # fmt: skip
        print(f"wrote {path}")
        if submit:
            try:
                print(submit_script(path))
            except FileNotFoundError as error:  # not a Slurm login node: say so, not a traceback
                print(f"sweep.py train: {error}", file=sys.stderr)
                sys.exit(1)
        return
    if launcher != "local":
        raise ValueError(f"--launcher {launcher!r}: choose local or slurm.")
    try:
        results = train_sweep(bundle, model_names, fold_list, sweep, gpus=gpu_list, parallel=parallel, nproc=nproc,
                              tracking=tracking, **overrides)  # fmt: skip
    except KeyboardInterrupt:
        print(f"sweep.py train: interrupted; run the same command again to resume {sweep}", file=sys.stderr)
        sys.exit(130)
    if any(result.outcome == "failed" for result in results):
        sys.exit(1)


def oof(runs: str, parallel: int = 1, **overrides) -> None:
    """Evaluate each finished fold that has no predictions yet and write runs/NAME/<model>/oof.csv.

    Args:
        runs: the sweep folder, runs/NAME.
        parallel: evaluations side by side.
        overrides: evaluation overrides on top of the training ones, e.g. --num_workers 0 --tta True.
    """
    from medbundle.sweep.oof import collect_oof

    for model, path in collect_oof(runs, parallel=parallel, **overrides).items():
        print(f"{model}: {path}")


def summary(runs: str, store: bool = True) -> None:
    """Print and write runs/NAME/summary.md and summary.csv; store the OOF threshold in every fold's model.pt.

    Args:
        runs: the sweep folder, runs/NAME.
        store: write oof_threshold (rsna also oof_aggregation) into the model.pt files.
    """
    from medbundle.sweep.summary import summarize

    print(summarize(runs, store=store)[0])


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    fire.Fire({"train": train, "oof": oof, "summary": summary})
