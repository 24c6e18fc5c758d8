"""Tests for medbundle.tasks: the registry every per-task tool reads, and a task added from a folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from medbundle.tasks import (
    TASK_PATH_ENV,
    DemoFacts,
    SweepFacts,
    TaskSpec,
    get_task,
    register,
    resolve,
    tasks,
)
from medbundle.tasks import registry as registry_module

REPO = Path(__file__).resolve().parents[1]

# a team's own task, as a file in a folder of MEDBUNDLE_TASK_PATH: knee radiographs in class folders, served by
# the class-folder machinery chest_xray uses (its demo writer and data set adapter, the multi-class metrics)
THROWAWAY = textwrap.dedent('''
    from medbundle.tasks import DemoFacts, SweepFacts, TaskSpec

    TASK = TaskSpec(
        name="knee_throwaway",
        title="knee radiographs in class folders (a test task)",
        bundle="knee_throwaway",
        demo=DemoFacts(writer="medbundle.demo.chest_xray:write_chest_xray_demo", options={"n_train": 2}),
        dataset_facts="medbundle.datacheck.adapters:chest_xray_dataset_facts",
        sweep=SweepFacts(metrics="medbundle.sweep.task_metrics:multiclass_metrics"),
        ensemble={"binary": False, "threshold_key": None, "preprocessing_keys": ("image_size",),
                  "id_keys": ("image_id",), "default_split": "test"},
    )
''')

# every command that lists tasks, asked for the throwaway one (or for an unknown one, whose error lists them all)
PROBE = textwrap.dedent('''
    import json, sys
    from medbundle import cli
    from medbundle.datacheck import check_dataset
    from medbundle.deploy.spec import load_spec
    from medbundle.ensemble.tasks import get_task as ensemble_task
    from medbundle.export.bundle_network import bundle_task
    from medbundle.sweep.task_metrics import get_task_metrics

    out = sys.argv[1]
    found = {"tasks": [line.split()[0] for line in cli.tasks().splitlines()[1:]]}
    found["demo_data"] = sorted(cli.demo_data("knee_throwaway", out + "/data", n_train=2, n_val=1, n_test=1))
    found["validate"] = check_dataset("knee_throwaway", out + "/data", out=out + "/check", num_workers=0)["task"]
    found["ensemble"] = ensemble_task("knee_throwaway").name
    found["sweep"] = sorted(get_task_metrics("knee_throwaway").metrics.__name__.split())
    found["deploy"] = load_spec(out + "/export").task
    found["export"] = bundle_task(out + "/bundle")
    try:
        cli.demo_data("mnist", out + "/none")
    except ValueError as error:
        found["unknown"] = str(error)
    print(json.dumps(found))
''')


def test_builtin_tasks_are_registered_in_order():
    assert list(tasks())[:3] == ["rsna", "chest_xray", "isic"]
    assert registry_module.source("isic") == "medbundle.tasks.isic"


def test_every_reference_of_every_task_resolves_and_its_bundle_exists():
    for name, spec in tasks().items():
        assert (REPO / "bundles" / spec.bundle / "configs" / "train.yaml").is_file(), name
        references = [spec.demo.writer, spec.demo.sized_set, spec.dataset_facts, spec.sweep.metrics, spec.sweep.decide,
                      spec.ensemble.get("csv_datalist"), spec.benchmark.inference if spec.benchmark else None]
        for reference in filter(None, references):
            assert callable(resolve(reference)) or resolve(reference) is not None, (name, reference)


def test_reading_the_registry_imports_no_torch():
    code = "import sys, medbundle.tasks as t; t.tasks(); print(sorted(m for m in ('torch', 'monai') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


def test_unknown_task_lists_the_known_ones_and_says_how_to_add_one():
    with pytest.raises(ValueError, match=r"unknown task 'mnist'; choose one of \['rsna', 'chest_xray', 'isic'.*ADDING_A_TASK"):
        get_task("mnist")


def test_a_second_task_of_the_same_name_is_refused():
    spec = TaskSpec(name="rsna", title="t", bundle="rsna", demo=DemoFacts(writer="m:f"), dataset_facts="m:f",
                    sweep=SweepFacts(metrics="m:f"), ensemble={})
    with pytest.raises(ValueError, match="task 'rsna' from register\\(\\) is already registered by medbundle.tasks.rsna"):
        register(spec)


def test_malformed_and_missing_references_name_themselves():
    with pytest.raises(ValueError, match="'nocolon' is not 'package.module:attribute'"):
        resolve("nocolon")
    with pytest.raises(ValueError, match="medbundle.tasks.spec has no 'nothing'"):
        resolve("medbundle.tasks.spec:nothing")
    with pytest.raises(ValueError, match="must be a Python identifier"):
        TaskSpec(name="my task", title="t", bundle="b", demo=DemoFacts(writer="m:f"), dataset_facts="m:f",
                 sweep=SweepFacts(metrics="m:f"), ensemble={})


def test_a_task_file_in_a_folder_is_found_by_every_command_that_lists_tasks(tmp_path):
    folder = tmp_path / "my_tasks"
    folder.mkdir()
    (folder / "knee.py").write_text(THROWAWAY)
    export = tmp_path / "run" / "export"
    export.mkdir(parents=True)
    (export / "deploy.json").write_text(json.dumps({
        "format_version": 1, "task": "knee_throwaway", "input": {"shape": [None, 3, 32, 32]},
        "output": {"activation": "softmax"}, "class_names": ["a", "b"], "preprocessing": {}}))
    (export / "model.onnx").write_bytes(b"")
    bundle = tmp_path / "run" / "bundle" / "configs"
    bundle.mkdir(parents=True)
    (bundle / "train.yaml").write_text("stored_config:\n  task: knee_throwaway\n")
    env = {**os.environ, TASK_PATH_ENV: str(folder), "PYTHONPATH": str(REPO)}
    run = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "run")], capture_output=True, text=True,
                         env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found["tasks"][-1] == "knee_throwaway"
    assert "train_dir" in found["demo_data"]
    assert found["validate"] == "knee_throwaway"
    assert found["ensemble"] == "knee_throwaway"
    assert found["sweep"] == ["multiclass_metrics"]
    assert found["deploy"] == "knee_throwaway"
    assert found["export"] == "knee_throwaway"
    assert "'knee_throwaway'" in found["unknown"]


def test_a_task_path_that_is_not_a_folder_says_so(tmp_path):
    env = {**os.environ, TASK_PATH_ENV: str(tmp_path / "absent"), "PYTHONPATH": str(REPO)}
    run = subprocess.run([sys.executable, "-c", "import medbundle.tasks as t; t.tasks()"], capture_output=True,
                         text=True, env=env, cwd=tmp_path)
    assert run.returncode != 0 and f"{TASK_PATH_ENV} names {tmp_path / 'absent'}, which is not a folder" in run.stderr
