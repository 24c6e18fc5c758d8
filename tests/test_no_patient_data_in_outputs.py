"""No DICOM patient attribute other than the dataset's own ids reaches logs, CSVs, TensorBoard, checkpoints or cache."""

from __future__ import annotations

from pathlib import Path

import pydicom
from conftest import as_overrides, run_in_process

from medbundle.demo import write_rsna_demo

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "bundles" / "rsna" / "configs"
TINY = ["--backbone", "resnet10t", "--head", "linear", "--image_size", "[64,32]", "--num_workers", "0",
        "--pretrained", "False", "--batch_size", "8", "--pos_per_batch", "2", "--n_folds", "3", "--epochs", "1"]
# values no medbundle output may contain: each is planted in every DICOM header
PLANTED = {
    "PatientName": "Zyxwv^Qrstu",
    "PatientBirthDate": "19230917",
    "InstitutionName": "Hospital Kqzxj",
    "AccessionNumber": "ACCX93817",
    "ReferringPhysicianName": "Wvuts^Dr",
    "PatientAddress": "17 Plxqr Street",
    "OtherPatientIDs": "OPID-558214",
}


def run(run_id: str, configs: list[str], *overrides: str) -> str:
    """The bundle's command in this process (conftest's run_in_process): everything it printed, logs included."""
    return run_in_process([CONFIGS / name for name in configs], run_id, **as_overrides(overrides))


def test_planted_patient_attributes_appear_in_no_output(tmp_path, recwarn):
    data = tmp_path / "data"
    write_rsna_demo(data, n_patients=12, positive_rate=0.25, n_test_patients=2, image_shape=(128, 104), seed=4)
    for path in data.rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        for keyword, value in PLANTED.items():
            setattr(ds, keyword, value)
        ds.save_as(path)
    root = tmp_path / "bundle"
    paths = ["--dataset_dir", str(data), "--bundle_root", str(root)]
    logs = run("training", ["train.yaml"], *paths, *TINY)
    logs += run("evaluating", ["train.yaml", "evaluate.yaml"], *paths, "--num_workers", "0")
    logs += run("run", ["inference.yaml"], *paths, "--num_workers", "0")
    logs += "\n".join(str(warning.message) for warning in recwarn)  # what the command would print on stderr
    outputs = [p for p in root.rglob("*") if p.is_file()]
    assert any(p.suffix == ".csv" for p in outputs) and any("tfevents" in p.name for p in outputs)
    assert any(p.parent.parent.name == "cache" or "cache" in p.parts for p in outputs), "no cache entry was checked"
    for value in PLANTED.values():
        needles = {value.encode(), value.replace("^", " ").encode()}
        assert not any(needle.decode() in logs for needle in needles), f"{value!r} was logged"
        leaked = [p for p in outputs if any(needle in p.read_bytes() for needle in needles)]
        assert not leaked, f"{value!r} found in {leaked}"
