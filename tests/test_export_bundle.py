"""Export and packaging of all three bundles: TorchScript + ONNX parity, deploy.json, and a packaged bundle that the
real ``python -m monai.bundle run`` runs from another folder exactly like the original bundle.

Checkpoints are a randomly initialised resnet10t saved in the format training writes ("model", the StoredConfig
entries, "thresholds" for binary tasks), with BatchNorm statistics set away from 0/1 so ONNX Runtime's BatchNorm
folding is exercised.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import onnx
import pandas as pd
import pytest
import torch
from conftest import run_in_process
from monai.bundle import run as bundle_run

from medbundle.data import CHEST_XRAY_CLASSES
from medbundle.demo import write_chest_xray_demo, write_isic_demo, write_rsna_demo
from medbundle.export import DEFAULT_TOLERANCE, export_bundle, package_bundle
from medbundle.networks import TimmClassifier

REPO = Path(__file__).resolve().parents[1]
TASKS = ("rsna", "chest_xray", "isic")
THRESHOLDS = {"roc_threshold": 0.45, "pf1_threshold": 0.55, "auroc": 0.7, "best_auroc": 0.72}
# the StoredConfig entries each bundle's train.yaml writes, at demo sizes
CONFIGS = {
    "rsna": {"task": "rsna", "backbone": "resnet10t", "head": "attention", "in_chans": 1, "num_classes": 1,
             "image_size": [64, 32], "aggregation": "mean", "n_folds": 3, "seed": 42},
    "chest_xray": {"task": "chest_xray", "model": "resnet10t", "backbone": "resnet10t", "head": "mlp", "head_hidden": 16,
                   "in_chans": 3, "num_classes": 5, "class_names": list(CHEST_XRAY_CLASSES), "image_size": [48, 48],
                   "clahe": True, "norm_stats": {"mean": [0.45], "std": [0.22]}, "n_folds": 3, "seed": 42},
    "isic": {"task": "isic", "model": "resnet10t", "backbone": "resnet10t", "head": "linear", "in_chans": 3,
             "num_classes": 1, "image_size": [40, 40], "n_folds": 3, "seed": 42},
}
# the file each bundle's inference writes, relative to its bundle_root
PREDICTIONS = {
    "rsna": "outputs/fold0/submission.csv",
    "chest_xray": "outputs/fold0/inference/predictions_image.csv",
    "isic": "outputs/fold0/submission.csv",
}
# rsna binarises its submission by default; compare probabilities
RUN_OVERRIDES = {"rsna": {"binarize": False}, "chest_xray": {}, "isic": {}}


def write_checkpoint(task: str, path: Path, seed: int = 0) -> Path:
    config = CONFIGS[task]
    torch.manual_seed(seed)
    norm = config.get("norm_stats") or {}
    network = TimmClassifier(config["backbone"], num_classes=config["num_classes"], in_chans=config["in_chans"],
                             head=config["head"], head_hidden=config.get("head_hidden", 128), mean=norm.get("mean"),
                             std=norm.get("std"))
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    network.temperature.fill_(1.7)  # a calibrated checkpoint: every export and prediction below applies both
    network.logit_bias.fill_(-0.4)
    state = {"model": network.state_dict(), "config": config}
    if config["num_classes"] == 1:
        state["thresholds"] = THRESHOLDS
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def write_data(task: str, folder: Path) -> list[str]:
    """The task's demo data in `folder`; returns test images in the task's format."""
    if task == "rsna":
        write_rsna_demo(folder, n_patients=2, n_test_patients=2, image_shape=(256, 208), seed=3)
        return sorted(str(p) for p in (folder / "test_images").rglob("*.dcm"))
    if task == "chest_xray":
        write_chest_xray_demo(folder, n_train=1, n_val=1, n_test=1, size_range=(64, 96), seed=3)
        return sorted(str(p) for p in (folder / "test").rglob("*.*"))
    write_isic_demo(folder, n_patients=3, n_test=5, size_range=(40, 72), seed=3)
    ids = pd.read_csv(folder / "test-metadata.csv", dtype=str)["isic_id"]
    return [f"{folder / 'test-image.hdf5'}::{isic_id}" for isic_id in ids]


@pytest.fixture(scope="module", params=TASKS)
def packaged(request, tmp_path_factory):
    """Per task: demo data, a checkpoint at <root>/bundle/models/fold0/model.pt and its package in <root>/dist.

    The package's models/ folder is what export_bundle writes (TorchScript, ONNX, deploy.json, parity.json).
    """
    task = request.param
    root = tmp_path_factory.mktemp(task)
    images = write_data(task, root / "data")
    checkpoint = write_checkpoint(task, root / "bundle" / "models" / "fold0" / "model.pt")
    package = package_bundle(REPO / "bundles" / task, checkpoint, root / "dist", parity_images=images[:4])
    return task, root, package


def test_both_formats_match_the_eager_network_on_random_and_real_images(packaged):
    task, _, package = packaged
    parity = json.loads((package / "models" / "parity.json").read_text())
    assert parity["passed"] and parity["tolerance"] == DEFAULT_TOLERANCE
    for name in ("ts", "onnx"):
        assert set(parity["max_abs_diff"][name]) == {"random", "images"}
        for sizes in parity["max_abs_diff"][name].values():
            assert set(sizes) == {"1", "4"}
            assert all(0 <= value <= DEFAULT_TOLERANCE for value in sizes.values()), (task, name, sizes)


def test_deploy_json_holds_the_contract(packaged):
    task, _, package = packaged
    spec = json.loads((package / "models" / "deploy.json").read_text())
    config = CONFIGS[task]
    channels = 3 if task == "isic" else 1  # grayscale readers feed one channel; the RGB stem repeats it
    assert spec["format_version"] == 1 and spec["task"] == task
    assert spec["input"] == {"name": "image", "shape": [None, channels, *config["image_size"]], "dtype": "float32",
                             "value_range": [0, 1]}
    assert spec["output"]["name"] == "logits" and spec["output"]["shape"] == [None, config["num_classes"]]
    assert spec["output"]["temperature"] == pytest.approx(1.7)  # recorded; the graph applies it
    assert spec["output"]["logit_bias"] == pytest.approx(-0.4)
    assert spec["files"] == {"ts": "model.ts", "onnx": "model.onnx"}
    assert spec["source"]["config"] == config and spec["source"]["medbundle_version"]
    assert len(spec["source"]["checkpoint_sha256"]) == 64
    preprocessing = spec["preprocessing"]
    assert preprocessing["channels"] == channels and preprocessing["spatial_size"] == config["image_size"]
    steps = preprocessing["steps"]
    reader_options = {"target_size": config["image_size"], "reduced_decode": True} if task in ("rsna", "chest_xray") else {}
    assert steps[0] == {"op": "read", "reference": steps[0]["reference"],
                        "reader": {"rsna": "mammo_dicom", "chest_xray": "grayscale", "isic": "rgb"}[task],
                        "channels": channels, **reader_options}
    ops = [step["op"] for step in steps]
    if task == "rsna":
        assert spec["output"]["activation"] == "sigmoid" and spec["class_names"] is None
        assert spec["thresholds"] == THRESHOLDS and spec["decision_threshold_key"] == "pf1_threshold"
        assert spec["aggregation"] == {"group_key": "breast_id", "how": "mean"}
        assert ops == ["read", "breast_crop", "canonical_flip", "aspect_resize_pad", "clahe"]
        assert steps[1]["blank_outside"] is True and steps[1]["margin"] == 16
        assert steps[3]["spatial_size"] == [64, 32] and steps[3]["pad_position"] == ["center", "end"]
        assert steps[4] == {"op": "clahe", "reference": "medbundle.transforms.CLAHE", "clip_limit": 2.0,
                            "tile_grid_size": [8, 8], "bits": 8}
    elif task == "chest_xray":
        assert spec["output"]["activation"] == "softmax" and spec["class_names"] == list(CHEST_XRAY_CLASSES)
        assert spec["thresholds"] == {} and spec["decision_threshold_key"] is None and spec["aggregation"] is None
        assert ops == ["read", "aspect_resize_pad", "clahe"]  # the stored clahe: true adds the CLAHE step
        assert steps[1]["pad_position"] == ["center", "center"]
    else:
        assert spec["output"]["activation"] == "sigmoid" and spec["class_names"] is None
        assert spec["thresholds"] == THRESHOLDS and spec["decision_threshold_key"] == "roc_threshold"
        assert spec["aggregation"] is None  # one row per lesion image
        assert steps[-1]["spatial_size"] == [40, 40]


def test_torchscript_embeds_the_metadata_and_the_inference_config(packaged):
    task, _, package = packaged
    extra = {"metadata.json": "", "inference.json": ""}
    torch.jit.load(package / "models" / "model.ts", _extra_files=extra)
    image = json.loads(extra["metadata.json"])["network_data_format"]["inputs"]["image"]
    assert image["spatial_shape"] == CONFIGS[task]["image_size"]
    assert image["num_channels"] == (3 if task == "isic" else 1)
    assert "network_def" in json.loads(extra["inference.json"])


def test_onnx_has_named_input_and_output_with_a_dynamic_batch_axis(packaged):
    _, _, package = packaged
    graph = onnx.load(package / "models" / "model.onnx").graph
    (image,), (logits,) = graph.input, graph.output
    assert (image.name, logits.name) == ("image", "logits")
    for tensor in (image, logits):
        batch = tensor.type.tensor_type.shape.dim[0]
        assert batch.dim_param and not batch.dim_value


def test_package_has_the_bundle_layout_and_a_zip_of_it(packaged):
    task, root, package = packaged
    assert package == root / "dist" / task
    for name in ("configs/inference.yaml", "configs/metadata.json", "configs/logging.conf", "models/model.pt",
                 "models/model.ts", "models/model.onnx", "models/deploy.json", "models/parity.json", "docs/README.md",
                 "LICENSE"):
        assert (package / name).is_file(), name
    with zipfile.ZipFile(root / "dist" / f"{task}.zip") as archive:
        assert f"{task}/models/model.onnx" in archive.namelist() and f"{task}/configs/inference.yaml" in archive.namelist()
    stored = torch.load(package / "models" / "model.pt", weights_only=True)
    assert set(stored) == ({"model", "config", "thresholds"} if task != "chest_xray" else {"model", "config"})
    text = (package / "configs" / "inference.yaml").read_text()
    assert "\nbundle_root: .\n" in text and "\nckpt_dir: \"$@bundle_root + '/models'\"\n" in text
    meta = json.loads((package / "configs" / "metadata.json").read_text())
    assert meta["network_data_format"]["inputs"]["image"]["spatial_shape"] == CONFIGS[task]["image_size"]
    readme = (package / "docs" / "README.md").read_text()
    assert "| onnx | random | 4 |" in readme and "python -m monai.bundle run" in readme


def test_packaged_bundle_runs_from_another_folder_like_the_original(packaged, tmp_path):
    task, root, package = packaged
    overrides = {"dataset_dir": str(root / "data"), "num_workers": 0, **RUN_OVERRIDES[task]}
    bundle_run(config_file=str(REPO / "bundles" / task / "configs" / "inference.yaml"), logging_file=False,
               bundle_root=str(root / "bundle"), **overrides)
    if task == "rsna":  # the README's command once; the other packages through what it calls, in this process
        command = [sys.executable, "-m", "monai.bundle", "run", "--config_file",
                   str(package / "configs" / "inference.yaml"), "--bundle_root", str(package)]
        for key, value in overrides.items():
            command += [f"--{key}", str(value)]
        result = subprocess.run(command, check=False, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                                env={**os.environ, "HF_HUB_OFFLINE": "1"})
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    else:
        run_in_process(package / "configs" / "inference.yaml", cwd=tmp_path, bundle_root=str(package), **overrides)
    expected = pd.read_csv(root / "bundle" / PREDICTIONS[task])
    actual = pd.read_csv(package / PREDICTIONS[task])
    assert len(actual) > 0
    pd.testing.assert_frame_equal(actual, expected, check_exact=False, rtol=0, atol=1e-6)


def test_triton_repository_serves_the_onnx_model_with_dynamic_batching(packaged):
    task, root, package = packaged
    model = root / "dist" / "triton" / task
    assert (model / "1" / "model.onnx").read_bytes() == (package / "models" / "model.onnx").read_bytes()
    text = (model / "config.pbtxt").read_text()
    channels = 3 if task == "isic" else 1
    height, width = CONFIGS[task]["image_size"]
    assert f'name: "{task}"\nplatform: "onnxruntime_onnx"\n' in text
    assert f'name: "image"\n    data_type: TYPE_FP32\n    dims: [ {channels}, {height}, {width} ]' in text
    assert f'name: "logits"\n    data_type: TYPE_FP32\n    dims: [ {CONFIGS[task]["num_classes"]} ]' in text
    assert "max_batch_size: " in text and text.endswith("dynamic_batching { }\n")


def test_export_writes_only_the_requested_format_and_returns_its_report(tmp_path):
    checkpoint = write_checkpoint("rsna", tmp_path / "model.pt")
    result = export_bundle(REPO / "bundles" / "rsna", checkpoint, formats="ts", out=tmp_path / "out")
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["deploy.json", "model.ts", "parity.json"]
    assert result["files"] == {name: str(tmp_path / "out" / file) for name, file in
                               (("ts", "model.ts"), ("deploy", "deploy.json"), ("parity", "parity.json"))}
    assert result["deploy"] == json.loads((tmp_path / "out" / "deploy.json").read_text())
    assert result["deploy"]["files"] == {"ts": "model.ts"} and result["deploy"]["source"]["checkpoint"] == str(checkpoint)
    assert set(result["parity"]["max_abs_diff"]) == {"ts"} and set(result["parity"]["max_abs_diff"]["ts"]) == {"random"}
    with pytest.raises(ValueError, match="unknown export format"):
        export_bundle(REPO / "bundles" / "rsna", checkpoint, formats=("ts", "tflite"), out=tmp_path / "out")


def test_package_never_replaces_a_folder_that_is_not_a_package(tmp_path):
    bundle = tmp_path / "isic"
    shutil.copytree(REPO / "bundles" / "isic", bundle, ignore=shutil.ignore_patterns("models", "outputs", "cache"))
    checkpoint = write_checkpoint("isic", tmp_path / "model.pt")
    with pytest.raises(FileExistsError, match="is not a package"):
        package_bundle(bundle, checkpoint, out=tmp_path)  # <out>/<name> is the bundle itself
    assert (bundle / "configs" / "train.yaml").is_file()


def test_checkpoint_of_another_task_is_refused_naming_both_tasks(tmp_path):
    checkpoint = write_checkpoint("isic", tmp_path / "model.pt")
    with pytest.raises(ValueError, match=r"trained for task 'isic', but bundle .*rsna is task 'rsna'.*bundles/isic"):
        export_bundle(REPO / "bundles" / "rsna", checkpoint, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_checkpoint_without_stored_settings_is_refused(tmp_path):
    checkpoint = tmp_path / "model.pt"
    torch.save({"model": {}}, checkpoint)
    with pytest.raises(KeyError, match=r"no \['config'\] entry"):
        export_bundle(REPO / "bundles" / "isic", checkpoint, out=tmp_path / "out")


def test_deploy_predictor_on_the_exported_package_matches_the_bundle(packaged, tmp_path):
    """export -> deploy.json -> medbundle.deploy (onnxruntime, no torch) gives the bundle's own probabilities."""
    from medbundle.deploy import Predictor

    task, root, package = packaged
    bundle_run(config_file=str(REPO / "bundles" / task / "configs" / "inference.yaml"), logging_file=False,
               bundle_root=str(root / "bundle"), dataset_dir=str(root / "data"), num_workers=0, **RUN_OVERRIDES[task])
    expected = pd.read_csv(root / "bundle" / PREDICTIONS[task])
    images = write_data(task, tmp_path / "again")  # same seed: the same files as the bundle predicted
    predictor = Predictor(package / "models")
    rows = predictor.predict([image.replace(str(tmp_path / "again"), str(root / "data")) for image in images])
    if task == "chest_xray":
        names = list(CHEST_XRAY_CLASSES)
        got = pd.DataFrame([[row["probabilities"][n] for n in names] for row in rows], columns=names)
        want = expected[[f"prob_{n}" for n in names]].to_numpy()
        assert abs(got.to_numpy() - want).max() < 1e-4
    elif task == "rsna":
        breasts = {row["breast_id"]: row["probability"] for row in predictor.aggregate(rows)}
        assert breasts.keys() == set(expected["prediction_id"])
        assert max(abs(breasts[k] - v) for k, v in zip(expected["prediction_id"], expected["cancer"])) < 1e-4
    else:
        got = {row["image_id"].split("::")[-1]: row["probability"] for row in rows}
        assert max(abs(got[k] - v) for k, v in zip(expected["isic_id"].astype(str), expected["target"])) < 1e-4


def test_console_commands_export_and_predict_with_the_torch_free_runtime(packaged, tmp_path):
    task, root, _ = packaged
    if task != "isic":
        pytest.skip("one task is enough for the console smoke test")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PAGER": "cat"}
    checkpoint = root / "bundle" / "models" / "fold0" / "model.pt"
    command = [sys.executable, "-c", "from medbundle.cli import main; main()", "export", "--bundle",
               str(REPO / "bundles" / task), "--checkpoint", str(checkpoint), "--format", "both", "--out", str(tmp_path / "x")]
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert {"model.ts", "model.onnx", "deploy.json", "parity.json"} <= {p.name for p in (tmp_path / "x").iterdir()}
    command = [sys.executable, "-m", "medbundle.deploy", str(tmp_path / "x"), str(root / "data" / "test-image.hdf5"),
               "--output_csv", str(tmp_path / "pred.csv")]
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(pd.read_csv(tmp_path / "pred.csv")) == 5
