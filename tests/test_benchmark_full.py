"""The benchmark reports (table + JSON), the peak-memory sampler, and the full run that renders BENCHMARKS.md."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from medbundle.benchmarks import full as full_module
from medbundle.benchmarks.common import BUNDLES, PeakRSS
from medbundle.benchmarks.report import Report
from medbundle.demo import write_rsna_demo


def _report(name: str = "dicom") -> Report:
    return Report(name=name, title="what was timed", columns=[("pipeline", "pipeline"), ("rate", "images/s")],
                  rows=[{"pipeline": "bundle", "rate": 12.345, "hidden": 1}, {"pipeline": "plain", "rate": 0.5}],
                  notes=["a verdict"], settings={"repeats": 3})


def test_report_prints_one_table_and_writes_the_same_rows_as_json(tmp_path):
    report = _report()
    assert report.markdown().splitlines() == [
        "what was timed", "", "| pipeline | images/s |", "|---|---|", "| bundle | 12.3 |", "| plain | 0.5 |", "",
        "- a verdict"]
    data = json.loads(report.write(tmp_path / "out" / "dicom.json").read_text())
    assert data["rows"][0] == {"pipeline": "bundle", "rate": 12.345, "hidden": 1} and data["settings"]["repeats"] == 3
    assert data["machine"]["cores"] >= 1 and data["machine"]["torch"]
    assert Report.read(tmp_path / "out" / "dicom.json") == report
    assert not list((tmp_path / "out").glob("*.partial"))


def test_peak_rss_sees_an_allocation_made_and_freed_inside_the_block():
    with PeakRSS(interval=0.01) as before:
        pass
    with PeakRSS(interval=0.01) as peak:
        block = np.ones(512 * 2**20, np.uint8)  # 512 MiB, touched
        time.sleep(0.1)
        del block
    assert peak.main_mb - before.main_mb > 400 and peak.total_mb >= peak.main_mb


def test_render_writes_every_section_in_order_with_its_command_and_the_missing_ones_marked(tmp_path):
    _report("dicom").write(tmp_path / "dicom.json")
    (tmp_path / "isic.error").write_text("Traceback ...\nValueError: no HDF5 here\n")
    text = full_module.render(tmp_path, tmp_path / "B.md").read_text()
    names = [name for name, *_ in full_module.FULL_RUN]
    assert [line[4:-1] for line in text.splitlines() if line.startswith("## ")] == names
    assert "python scripts/benchmark.py dicom --folder ../shared/data/dicom --image_size '[1024, 512]'" in text
    assert "| bundle | 12.3 |" in text and "Not measured in this run: ValueError: no HDF5 here." in text
    with pytest.raises(FileNotFoundError, match="benchmark.py full"):
        full_module.render(tmp_path / "empty", tmp_path / "C.md")


def test_full_runs_what_is_missing_resumes_and_keeps_going_after_a_failure(tmp_path):
    write_rsna_demo(tmp_path / "data", n_patients=2, image_shape=(256, 208), n_test_patients=0, seed=1)
    folder = tmp_path / "dicoms"
    folder.mkdir()
    for path in list((tmp_path / "data" / "train_images").rglob("*.dcm"))[:2]:
        (folder / path.name).write_bytes(path.read_bytes())
    overrides = {"dicom": {"folder": str(folder), "image_size": [64, 32], "workers": 1},
                 "isic": {"dataset_dir": str(tmp_path / "nothing")}}
    command = [sys.executable, "scripts/benchmark.py", "full", "--only", "[dicom,isic]", "--out_dir",
               str(tmp_path / "run"), "--markdown", str(tmp_path / "B.md"), "--overrides", json.dumps(overrides)]
    first = subprocess.run(command, capture_output=True, text=True, check=True, cwd=BUNDLES.parent)
    assert "dicom: " in first.stdout and "isic: FAILED" in first.stdout, first.stdout[-2000:]
    assert (tmp_path / "run" / "dicom.json").exists() and (tmp_path / "run" / "isic.error").exists()
    assert "| bundle cached_transforms |" in (tmp_path / "B.md").read_text()
    again = subprocess.run(command, capture_output=True, text=True, check=True, cwd=BUNDLES.parent)
    assert "[full] dicom" not in again.stdout and "[full] isic" in again.stdout  # done: skipped; failed: retried


def test_every_benchmark_subcommand_and_readme_command_has_a_smoke_test():
    import re

    repo = BUNDLES.parent
    script = (repo / "scripts" / "benchmark.py").read_text()
    commands = set(re.findall(r'^    "(\w+)": "\w+",$', script, re.MULTILINE)) | {"full"}
    readme = set(re.findall(r"python scripts/benchmark\.py (\w+)", (repo / "README.md").read_text()))
    assert readme <= commands and len(commands) >= 12, (readme - commands, commands)
    tests = "".join(path.read_text() for path in (repo / "tests").glob("test_benchmark_*.py"))
    smoked = set(re.findall(r'run_benchmark(?:_in_process)?\(\s*"(\w+)"', tests))  # conftest's two runners
    smoked |= set(re.findall(r'"scripts/benchmark\.py", "(\w+)"', tests))
    assert commands <= smoked, f"subcommands without a smoke test: {sorted(commands - smoked)}"
