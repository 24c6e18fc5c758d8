"""The sbatch array script of a sweep: one task per (model, fold), each the local sweep of its own run."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from medbundle.sweep.layout import run_dirs
from medbundle.sweep.slurm import sbatch_script, submit, task_command, write_sbatch

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "sweep.py"


def directives(text: str) -> dict[str, str]:
    return dict(re.findall(r"^#SBATCH --([\w-]+)=(.*)$", text, flags=re.MULTILINE))


def cases(text: str) -> dict[int, list[str]]:
    """Array task -> its run folder and command, as bash would split them."""
    return {int(m.group(1)): shlex.split(m.group(2))[1:] for m in re.finditer(r"^  (\d+)\) (run .*) ;;$", text, flags=re.MULTILINE)}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The script `sweep.py train --launcher slurm` writes for 2 models x 2 folds on 2 GPUs each (read-only: written
    once for the tests that read it)."""
    tmp_path = tmp_path_factory.mktemp("slurm")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "train", "--bundle", "bundles/isic", "--models", "m1,m2", "--folds", "0,3",
         "--runs_dir", str(tmp_path), "--name", "cv", "--nproc", "2", "--launcher", "slurm", "--partition", "gpu",
         "--time", "02:00:00", "--max_parallel", "2", "--epochs", "3", "--image_size", "[64,64]"],
        check=False, cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return tmp_path / "cv", (tmp_path / "cv" / "sweep.sbatch").read_text()


def test_directives_array_gres_and_options(written):
    sweep, text = written
    assert text.startswith("#!/bin/bash\n#SBATCH")
    options = directives(text)
    assert options["array"] == "0-3%2"
    assert options["gres"] == "gpu:2"
    assert (options["partition"], options["time"], options["cpus-per-task"]) == ("gpu", "02:00:00", "8")
    assert options["chdir"] == str(REPO) and options["output"] == str(sweep / "slurm-%A_%a.out")
    assert "srun torchrun --nnodes=$SLURM_NNODES" in text and "--rdzv_endpoint=$MASTER_ADDR:29500" in text


def test_each_task_runs_the_local_sweep_of_its_own_run(written):
    sweep, text = written
    tasks = cases(text)
    assert sorted(tasks) == [0, 1, 2, 3]
    expected = [("m1", 0), ("m1", 3), ("m2", 0), ("m2", 3)]
    for index, (model, fold) in enumerate(expected):
        folder, *command = tasks[index]
        assert folder == str(sweep / model / f"fold_{fold}")
        assert command[:3] == [sys.executable, str(SCRIPT), "train"]
        arguments = dict(zip(command[3::2], command[4::2]))
        assert arguments["--models"] == model and arguments["--folds"] == str(fold)
        assert arguments["--nproc"] == "2" and arguments["--bundle"] == "bundles/isic"
        assert (arguments["--runs_dir"], arguments["--name"]) == (str(sweep.parent), "cv")
        assert arguments["--epochs"] == "3" and arguments["--image_size"] == "[64, 64]"
        assert "--launcher" not in arguments, "a task must run locally, not write another script"
    assert "skipped" in text and "--resume" in text  # the header says finished runs are skipped, others resumed


def test_without_nproc_a_task_asks_for_one_gpu_and_no_partition(tmp_path):
    runs = run_dirs(tmp_path, ["m"], [0])
    text = sbatch_script(runs, [task_command(SCRIPT, "bundles/rsna", tmp_path.parent, tmp_path.name, runs[0], 1, {})], "job")
    options = directives(text)
    assert (options["array"], options["gres"]) == ("0-0", "gpu:1") and "partition" not in options


def test_a_task_runs_its_command_with_its_output_in_its_run_folder(tmp_path):
    runs = run_dirs(tmp_path / "cv", ["m"], [0, 1])
    commands = [["echo", "task", run.name] for run in runs]
    path = write_sbatch(tmp_path / "cv", sbatch_script(runs, commands, "job", workdir=tmp_path))
    assert os.access(path, os.X_OK)
    env = {**os.environ, "SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_JOB_ID": "77"}
    subprocess.run(["bash", str(path)], env=env, check=True, timeout=30)
    assert (runs[1].folder / "slurm-77_1.out").read_text() == "task m/fold_1\n"
    assert not runs[0].folder.exists()
    missing = subprocess.run(["bash", str(path)], env={**env, "SLURM_ARRAY_TASK_ID": "5"}, capture_output=True, text=True, check=False)
    assert missing.returncode == 2 and "no array task 5" in missing.stderr


def test_submit_without_sbatch_says_where_the_script_is(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"sbatch not found on PATH.*sbatch .*sweep.sbatch"):
        submit(tmp_path / "sweep.sbatch")


def test_submit_calls_sbatch(tmp_path, monkeypatch):
    fake = tmp_path / "sbatch"
    fake.write_text('#!/bin/sh\necho "Submitted batch job 42 for $1"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert submit(tmp_path / "sweep.sbatch") == f"Submitted batch job 42 for {tmp_path / 'sweep.sbatch'}"


def test_the_script_says_so_when_sbatch_is_missing(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "train", "--bundle", "bundles/isic", "--models", "m", "--folds", "0",
         "--runs_dir", str(tmp_path), "--launcher", "slurm", "--submit", "True"],
        check=False, cwd=REPO, capture_output=True, text=True, timeout=60, env={**os.environ, "PATH": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 1
    assert "sbatch not found on PATH" in result.stderr and "Traceback" not in result.stderr
    assert (tmp_path / "isic" / "sweep.sbatch").is_file()
