"""A Slurm array job for a sweep: one task per (model, fold), each running the local sweep for its own run.

Task ``i`` runs ``sweep.py train --models <model_i> --folds <fold_i>`` with the sweep's other options,
the command the local launcher runs for that run: it skips a finished run, resumes one killed after a
checkpoint (preemption, time limit) and writes ``train.log``, ``command.txt`` and ``status.json`` as on a
workstation. Resubmitting the script therefore continues the sweep where it stopped. Each task asks for
``--gres=gpu:<nproc>`` and trains with ``torch.distributed.run --standalone`` on them when ``nproc > 1``.

One run on several nodes is not generated; in a script of its own (``#SBATCH --nodes=N``,
``--ntasks-per-node=1``, ``--gres=gpu:G``) it reads::

    export MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
    srun torchrun --nnodes=$SLURM_NNODES --nproc_per_node=G --rdzv_backend=c10d \\
        --rdzv_endpoint=$MASTER_ADDR:29500 -m monai.bundle run training \\
        --config_file "['bundles/isic/configs/train.yaml','bundles/isic/configs/multi_gpu_train.yaml']" \\
        --model efficientnet_b0 --fold 0 --bundle_root runs/NAME/efficientnet_b0/fold_0 [--resume True]
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from medbundle.io.atomic_file import atomic_write
from medbundle.sweep.commands import override_args
from medbundle.sweep.layout import RunDir
from medbundle.sweep.training import plan_sweep

__all__ = ["SBATCH_FILE", "sbatch_script", "slurm_sweep", "submit", "task_command", "write_sbatch"]

SBATCH_FILE = "sweep.sbatch"


def task_command(
    script: str | Path, bundle: str | Path, runs_dir: str | Path, name: str, run: RunDir, nproc: int,
    overrides: Mapping[str, Any], python: str = sys.executable,
) -> list[str]:  # fmt: skip
    """The ``sweep.py train`` command of one run: the local sweep restricted to its model and fold."""
    return [
        python, str(script), "train", "--bundle", str(bundle), "--runs_dir", str(runs_dir), "--name", name,
        "--models", run.model, "--folds", str(run.fold), "--nproc", str(nproc), *override_args(overrides),
    ]  # fmt: skip


def sbatch_script(
    runs: Sequence[RunDir],
    commands: Sequence[Sequence[str]],
    job_name: str,
    nproc: int = 1,
    partition: str | None = None,
    time: str = "24:00:00",
    cpus_per_task: int = 8,
    max_parallel: int | None = None,
    workdir: str | Path | None = None,
) -> str:
    """The text of an sbatch array script running ``commands[i]`` as task ``i`` for ``runs[i]``.

    Args:
        runs: the runs, one array task each; a task's output goes to ``<run>/slurm-<job>_<task>.out``.
        commands: the command of each run (:func:`task_command`).
        job_name: Slurm's job name.
        nproc: GPUs per task (``--gres=gpu:<nproc>``).
        partition: Slurm partition; None leaves the cluster's default.
        time: time limit per task; a task stopped by it resumes when the script is submitted again.
        cpus_per_task: CPU cores per task (DataLoader workers).
        max_parallel: at most this many tasks at once (``--array=0-N%max_parallel``).
        workdir: the folder the commands' relative paths start from; default the current one.
    """
    if len(runs) != len(commands) or not runs:
        raise ValueError(f"sbatch_script needs one command per run and at least one run, got {len(runs)} and {len(commands)}.")
    sweep = runs[0].sweep
    array = f"0-{len(runs) - 1}" + (f"%{max_parallel}" if max_parallel else "")
    options = {
        "job-name": job_name,
        "array": array,
        "ntasks": "1",
        "gres": f"gpu:{nproc}",
        "cpus-per-task": str(cpus_per_task),
        "time": time,
        **({"partition": partition} if partition else {}),
        "chdir": str(Path(workdir or os.getcwd()).resolve()),
        "output": str(sweep / "slurm-%A_%a.out"),
    }
    lines = ["#!/bin/bash", *(f"#SBATCH --{key}={value}" for key, value in options.items()), ""]
    lines += [
        f"# Fold sweep {sweep}: {len(runs)} array tasks, one per (model, fold). Submit: sbatch {sweep / SBATCH_FILE}",
        "# Each task runs `sweep.py train` for its own model and fold, as the local launcher does: a finished run is",
        "# skipped (status.json done, model.pt present) and one stopped after a checkpoint resumes with --resume, so",
        "# submitting this script again continues the sweep. The task's output goes to its run folder.",
        "# One run on several nodes (--nodes=N --ntasks-per-node=1 --gres=gpu:G) instead runs, from one script:",
        '#   export MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
        "#   srun torchrun --nnodes=$SLURM_NNODES --nproc_per_node=G --rdzv_backend=c10d \\",
        "#       --rdzv_endpoint=$MASTER_ADDR:29500 -m monai.bundle run training \\",
        "#       --config_file \"['<bundle>/configs/train.yaml','<bundle>/configs/multi_gpu_train.yaml']\" \\",
        "#       --model <model> --fold <k> --bundle_root <run folder> [--resume True]",
        "set -euo pipefail",
        "",
        "run() {  # run folder, command...",
        '  mkdir -p "$1"',
        '  local log="$1/slurm-${SLURM_ARRAY_JOB_ID:-local}_${SLURM_ARRAY_TASK_ID}.out"',
        "  shift",
        '  exec "$@" >>"$log" 2>&1',
        "}",
        "",
        'case "${SLURM_ARRAY_TASK_ID:?submit with sbatch, or set SLURM_ARRAY_TASK_ID}" in',
    ]
    lines += [f"  {i}) run {shlex.quote(str(run.folder))} {shlex.join(command)} ;;" for i, (run, command) in enumerate(zip(runs, commands))]
    lines += ['  *) echo "no array task $SLURM_ARRAY_TASK_ID in this sweep" >&2; exit 2 ;;', "esac", ""]
    return "\n".join(lines)


def slurm_sweep(
    script: str | Path, bundle: str | Path, models: Sequence[str], folds: Sequence[int] | None, runs_dir: str | Path,
    name: str, nproc: int = 1, partition: str | None = None, time: str = "24:00:00", cpus_per_task: int = 8,
    max_parallel: int | None = None, **overrides: Any,
) -> Path:  # fmt: skip
    """Check and record a sweep as the local launcher does, and write its sbatch array script.

    Args:
        script: the ``sweep.py`` every task runs.
        bundle, models, folds, nproc, overrides: as for :func:`~medbundle.sweep.training.train_sweep`.
        runs_dir: the folder holding sweeps.
        name: the sweep's folder name in it.
        partition, time, cpus_per_task, max_parallel: as for :func:`sbatch_script`.

    Returns:
        The script, ``<runs_dir>/<name>/sweep.sbatch``.
    """
    sweep = Path(runs_dir) / name
    _, runs = plan_sweep(bundle, models, folds, sweep, nproc, overrides)
    commands = [task_command(script, bundle, runs_dir, name, run, nproc, overrides) for run in runs]
    text = sbatch_script(runs, commands, f"sweep-{name}", nproc, partition, time, cpus_per_task, max_parallel)
    return write_sbatch(sweep, text)


def write_sbatch(sweep: str | Path, text: str) -> Path:
    """Write `text` to ``<sweep>/sweep.sbatch`` (executable) and return its path."""
    path = Path(sweep) / SBATCH_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, text=True) as stream:
        stream.write(text)
    path.chmod(0o755)
    return path


def submit(path: str | Path) -> str:
    """Submit an sbatch script and return what ``sbatch`` printed (the job id).

    Raises:
        FileNotFoundError: ``sbatch`` is not on PATH; the message says where the script is to submit by hand.
        subprocess.CalledProcessError: ``sbatch`` refused the script (its message is in ``stderr``).
    """
    sbatch = shutil.which("sbatch")
    if sbatch is None:
        raise FileNotFoundError(
            f"sbatch not found on PATH: this machine is not a Slurm login node. The script is written to {path}; "
            f"submit it on the cluster with `sbatch {path}`, or drop --submit."
        )
    result = subprocess.run([sbatch, str(path)], capture_output=True, text=True, check=True)
    return result.stdout.strip()
