"""Tests for medbundle.deploy: torch-free ONNX prediction that reproduces each bundle's preprocessing.

- importing medbundle.deploy and predicting puts neither torch nor MONAI in ``sys.modules``;
- the predictor's preprocessing equals the bundle's MONAI chain (parsed from its ``inference.yaml``) on demo images;
- end to end, an exported TimmClassifier predicts through onnxruntime what the eager network predicts;
- ``import medbundle`` stays lazy and the bundle configs still resolve.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from medbundle.deploy import (
    DeploySpecError,
    Predictor,
    PreprocessingError,
    build_preprocessing,
    load_spec,
)

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"rsna": [64, 48], "chest_xray": [40, 56], "isic": [48, 48]}


def steps(task: str, clahe: bool = False) -> dict:
    """deploy.json "preprocessing" of a bundle's inference.yaml chain, as medbundle.export writes it."""
    size = SIZES[task]
    if task == "rsna":
        chain = [
            {"op": "read", "reference": "medbundle.io.MammoDicomReader", "reader": "mammo_dicom", "channels": 1,
             "target_size": size, "reduced_decode": True},  # JPEG 2000 decoded at the bundle's reduced resolution
            {"op": "breast_crop", "reference": "medbundle.transforms.BreastCrop", "margin": 16, "working_size": 256,
             "min_threshold": 0.05, "opening_size": 5, "min_area": 0.01, "chest_wall": None, "line_width": 0.04,
             "border_band": 0.02, "min_relative_area": 0.1, "blank_outside": True, "min_breast_area": 0.05,
             "skin_reach": 0.04, "skin_threshold": 0.01},
            {"op": "canonical_flip", "reference": "medbundle.transforms.CanonicalFlip"},
            {"op": "aspect_resize_pad", "reference": "medbundle.transforms.AspectResizePad", "spatial_size": size,
             "pad_position": ["center", "end"], "padding_mode": "constant"},
            {"op": "clahe", "reference": "medbundle.transforms.CLAHE", "clip_limit": 2.0, "tile_grid_size": [8, 8],
             "bits": 8},
        ]  # fmt: skip
    elif task == "chest_xray":
        chain = [
            {"op": "read", "reader": "grayscale", "channels": 1},
            {"op": "aspect_resize_pad", "spatial_size": size, "pad_position": ["center", "center"]},
            *([{"op": "clahe"}] if clahe else []),
        ]
    else:
        chain = [
            {"op": "read", "reader": "rgb", "channels": 3},
            {"op": "aspect_resize_pad", "spatial_size": size, "pad_position": "center", "padding_mode": "reflect"},
        ]
    return {"channels": chain[0]["channels"], "spatial_size": size, "steps": chain}


def deploy_json(task: str, clahe: bool = False, num_classes: int | None = None) -> dict:
    """A deploy.json in the schema of medbundle.export.deploy_spec."""
    classes = ["Bacterial Pneumonia", "Corona Virus Disease", "Normal", "Tuberculosis", "Viral Pneumonia"]
    preprocessing = steps(task, clahe)
    k = num_classes or (len(classes) if task == "chest_xray" else 1)
    return {
        "format_version": 1,
        "task": task,
        "input": {"name": "image", "shape": [None, preprocessing["channels"], *SIZES[task]], "dtype": "float32"},
        "output": {"name": "logits", "shape": [None, k], "activation": "softmax" if task == "chest_xray" else "sigmoid"},
        "class_names": classes if task == "chest_xray" else None,
        "thresholds": {} if task == "chest_xray" else {"pf1_threshold": 0.45, "roc_threshold": 0.5, "auroc": 0.7},
        "decision_threshold_key": {"rsna": "pf1_threshold", "isic": "roc_threshold"}.get(task),
        "aggregation": {"group_key": "breast_id", "how": "mean"} if task == "rsna" else None,
        "preprocessing": preprocessing,
        "files": {"onnx": "model.onnx"},
        "source": {"bundle": f"bundles/{task}"},
    }


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Tiny demo data of every task: image names as the bundles' datalists give them."""
    from medbundle.data import rsna_datalist
    from medbundle.demo import write_chest_xray_demo, write_isic_demo, write_rsna_demo
    from medbundle.io import hdf5_keys, hdf5_member

    root = tmp_path_factory.mktemp("demo")
    write_rsna_demo(root / "rsna", n_patients=2, n_test_patients=1, image_shape=(600, 480))
    write_chest_xray_demo(root / "chest", n_train=3, n_val=1, n_test=1, size_range=(64, 96))
    isic = write_isic_demo(root / "isic", n_patients=3, n_test=4, lesions_per_patient=(1, 2), size_range=(40, 70))
    rsna_items = rsna_datalist(root / "rsna", csv="test.csv", image_dir="test_images", label_column=None)
    rsna_items += rsna_datalist(root / "rsna", csv="train.csv", image_dir="train_images", label_column=None)[:4]
    return {
        "root": root,
        "rsna": rsna_items,
        "chest_xray": [{"image": str(p)} for p in sorted((root / "chest").rglob("*")) if p.suffix in (".png", ".jpg", ".dcm")],
        "isic": [{"image": hdf5_member(isic["test_hdf5"], key)} for key in sorted(hdf5_keys(isic["test_hdf5"]))],
    }  # fmt: skip


def bundle_chain(task: str, clahe: bool = False):
    """The bundle's own MONAI preprocessing, parsed from its inference.yaml with the test's image size."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(ROOT / "bundles" / task / "configs" / "inference.yaml"))
    parser["image_size"] = SIZES[task]
    if task == "chest_xray":
        parser["clahe"] = clahe
    return parser.get_parsed_content("preprocessing")


def bundle_images(task: str, items: list[dict], clahe: bool = False) -> np.ndarray:
    chain = bundle_chain(task, clahe)
    return np.stack([np.asarray(chain({"image": item["image"]})["image"]) for item in items])


# ------------------------------------------------------------------------------------------- parity


@pytest.mark.parametrize("task, clahe", [("rsna", False), ("chest_xray", False), ("chest_xray", True), ("isic", False)])
def test_preprocessing_equals_the_bundle_chain(demo, task, clahe):
    items = demo[task]
    expected = bundle_images(task, items, clahe)
    preprocessing = build_preprocessing(steps(task, clahe))
    actual = np.stack([preprocessing(item["image"])[0] for item in items])
    assert actual.dtype == np.float32 and actual.shape == expected.shape == (len(items), *actual.shape[1:])
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-6)


def test_resize_step_equals_monai_resized_area(demo):
    """The "resize" op (MONAI Resized, mode "area": torch adaptive average pooling), exact without torch."""
    from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged, Resized

    from medbundle.io import RGBReader

    chain = Compose(
        [
            LoadImaged(keys="image", reader=RGBReader, image_only=True),
            EnsureChannelFirstd(keys="image"),
            Resized(keys="image", spatial_size=SIZES["isic"], mode="area"),
        ]
    )
    description = {
        "channels": 3,
        "spatial_size": SIZES["isic"],
        "steps": [
            {"op": "read", "reader": "rgb", "channels": 3},
            {"op": "resize", "reference": "monai.transforms.Resize", "spatial_size": SIZES["isic"], "size_mode": "all",
             "mode": "area", "align_corners": None, "anti_aliasing": False, "anti_aliasing_sigma": None},
        ],
    }  # fmt: skip
    preprocessing = build_preprocessing(description)
    for item in demo["isic"]:
        expected = np.asarray(chain({"image": item["image"]})["image"])
        np.testing.assert_allclose(preprocessing(item["image"])[0], expected, rtol=0, atol=1e-6)


def test_chest_demo_covers_every_format(demo):
    suffixes = {Path(item["image"]).suffix for item in demo["chest_xray"]}
    assert {".png", ".jpg", ".dcm"} <= suffixes


@pytest.mark.parametrize("task", ["rsna", "chest_xray", "isic"])
def test_preprocessing_described_by_the_exporter_equals_the_bundle_chain(demo, task):
    """The contract with medbundle.export: its description of the parsed chain rebuilds the same preprocessing."""
    spec = pytest.importorskip("medbundle.export.preprocessing_spec")
    chain = bundle_chain(task)
    preprocessing = build_preprocessing(spec.describe_preprocessing(chain))
    items = demo[task][:3]
    actual = np.stack([preprocessing(item["image"])[0] for item in items])
    np.testing.assert_allclose(actual, bundle_images(task, items), rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------ torch-free prediction


def mean_model(path: Path, channels: int, num_classes: int = 1) -> None:
    """A tiny ONNX model: logits = mean of each image * (1, 2, ...) - 0.25, with a dynamic batch."""
    weight = helper.make_tensor("w", TensorProto.FLOAT, [1, num_classes], list(range(1, num_classes + 1)))
    bias = helper.make_tensor("b", TensorProto.FLOAT, [num_classes], [-0.25] * num_classes)
    axes = helper.make_tensor("axes", TensorProto.INT64, [3], [1, 2, 3])
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["image", "axes"], ["mean"], keepdims=1),
            helper.make_node("Flatten", ["mean"], ["flat"]),
            helper.make_node("Gemm", ["flat", "w", "b"], ["logits"]),
        ],
        "mean",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", channels, None, None])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", num_classes])],
        initializer=[weight, bias, axes],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def write_export(folder: Path, task: str, **kwargs) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "deploy.json").write_text(json.dumps(deploy_json(task, **kwargs)))
    return folder


def test_deploy_predicts_without_importing_torch_or_monai(demo, tmp_path):
    export = write_export(tmp_path / "rsna_export", "rsna")
    mean_model(export / "model.onnx", channels=1)
    images = sorted(str(p) for p in (demo["root"] / "rsna" / "test_images").rglob("*.dcm"))
    isic_export = write_export(tmp_path / "isic_export", "isic")
    mean_model(isic_export / "model.onnx", channels=3)
    isic_file = demo["isic"][0]["image"].rpartition("::")[0]
    code = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        import medbundle.deploy
        from medbundle.deploy import Predictor
        from medbundle.deploy.__main__ import main

        predictor = Predictor({str(export)!r}, batch_size=3)
        rows = predictor.predict({images!r})
        batch, _ = predictor.preprocess({images!r})
        expected = batch.mean(axis=(1, 2, 3)) - 0.25
        np.testing.assert_allclose([r["logit"] for r in rows], expected, atol=1e-6)
        assert all(r["decision"] == int(r["probability"] >= 0.45) for r in rows)
        breasts = predictor.aggregate(rows)
        assert sorted(b["n_images"] for b in breasts) == [2, 2], breasts
        assert main([{str(isic_export)!r}, {isic_file!r}, "--output_csv", {str(tmp_path / "isic.csv")!r}]) == 0
        loaded = [m for m in ("torch", "monai", "timm", "pandas") if m in sys.modules]
        assert not loaded, loaded
        print("ok", len(rows))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "ok 4" in done.stdout
    assert len((tmp_path / "isic.csv").read_text().splitlines()) == 1 + len(demo["isic"])


def test_breast_ids_come_from_the_rsna_layout_and_dicom_laterality(demo, tmp_path):
    export = write_export(tmp_path / "export", "rsna")
    mean_model(export / "model.onnx", channels=1)
    predictor = Predictor(export)
    paths = [item["image"] for item in demo["rsna"]]
    rows = predictor.predict(paths)
    assert [r["breast_id"] for r in rows] == [item["breast_id"] for item in demo["rsna"]]
    assert [r["image_id"] for r in rows] == [item["image_id"] for item in demo["rsna"]]
    with_ids = predictor.predict(demo["rsna"])  # datalist items: their ids are kept
    assert [r["patient_id"] for r in with_ids] == [item["patient_id"] for item in demo["rsna"]]


def test_command_line_writes_image_and_breast_csvs(demo, tmp_path):
    export = write_export(tmp_path / "export", "rsna")
    mean_model(export / "model.onnx", channels=1)
    out, groups = tmp_path / "out" / "pred.csv", tmp_path / "out" / "breasts.csv"
    folder = demo["root"] / "rsna" / "test_images"
    done = subprocess.run(
        [sys.executable, "-m", "medbundle.deploy", str(export), str(folder), "--output_csv", str(out),
         "--group_csv", str(groups), "--batch_size", "2"],
        check=False, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    header, *rows = out.read_text().splitlines()
    assert header.split(",")[:2] == ["image", "image_id"] and "probability" in header and len(rows) == 4
    header, *rows = groups.read_text().splitlines()
    assert header.split(",") == ["breast_id", "n_images", "probability", "threshold", "decision"] and len(rows) == 2


def test_a_grey_model_with_an_rgb_stem_gets_the_channel_repeated(demo, tmp_path):
    export = write_export(tmp_path / "export", "chest_xray")
    mean_model(export / "model.onnx", channels=3, num_classes=5)
    rows = Predictor(export).predict(demo["chest_xray"][:2])
    assert set(rows[0]["probabilities"]) == set(deploy_json("chest_xray")["class_names"])
    assert rows[0]["pred_class"] == max(rows[0]["probabilities"], key=rows[0]["probabilities"].get)
    np.testing.assert_allclose(sum(rows[0]["probabilities"].values()), 1.0)


# ------------------------------------------------------------------------------------ end to end


@pytest.mark.parametrize("task", ["rsna", "chest_xray", "isic"])
def test_exported_network_predicts_as_the_eager_network(demo, tmp_path, task):
    import torch

    from medbundle.metrics.grouping import aggregate_groups
    from medbundle.networks import TimmClassifier

    spec = deploy_json(task)
    num_classes = spec["output"]["shape"][1]
    torch.manual_seed(0)
    network = TimmClassifier(
        "resnet10t", num_classes=num_classes, in_chans=1 if task == "rsna" else 3, pretrained=False
    ).eval()
    export = write_export(tmp_path / "export", task)
    example = torch.rand(2, spec["input"]["shape"][1], *SIZES[task])
    torch.onnx.export(
        network, (example,), str(export / "model.onnx"), input_names=["image"], output_names=["logits"],
        dynamic_shapes=({0: torch.export.Dim("batch")},), dynamo=True, verbose=False,
    )  # fmt: skip

    items = demo[task][:5]
    rows = Predictor(export, batch_size=2).predict(items)
    with torch.no_grad():
        logits = network(torch.from_numpy(bundle_images(task, items))).numpy()
    if task == "chest_xray":
        probabilities = torch.softmax(torch.from_numpy(logits), dim=1).numpy()
        actual = np.array([list(r["probabilities"].values()) for r in rows])
        np.testing.assert_allclose(actual, probabilities, atol=1e-5)
        assert [r["pred_index"] for r in rows] == probabilities.argmax(axis=1).tolist()
        return
    np.testing.assert_allclose([r["logit"] for r in rows], logits[:, 0], atol=1e-4)
    probabilities = torch.sigmoid(torch.from_numpy(logits[:, 0])).numpy()
    np.testing.assert_allclose([r["probability"] for r in rows], probabilities, atol=1e-5)
    if task == "rsna":  # per breast, as the bundle's SubmissionWriter
        predictor = Predictor(export)
        groups, _, expected = aggregate_groups([i["breast_id"] for i in items], None, probabilities, how="mean")
        breasts = predictor.aggregate(rows)
        assert [b["breast_id"] for b in breasts] == groups
        np.testing.assert_allclose([b["probability"] for b in breasts], expected, atol=1e-5)
        assert [b["decision"] for b in breasts] == [int(p >= 0.45) for p in expected]


# ------------------------------------------------------------------------------------ deploy.json


def test_unknown_versions_ops_and_parameters_are_clear_errors(tmp_path):
    with pytest.raises(DeploySpecError, match="format_version 2"):
        load_spec({**deploy_json("isic"), "format_version": 2})
    with pytest.raises(DeploySpecError, match="not found"):
        load_spec(tmp_path)
    with pytest.raises(DeploySpecError, match="decision_threshold_key 'missing'"):
        load_spec({**deploy_json("isic"), "decision_threshold_key": "missing"})
    described = steps("rsna")
    with pytest.raises(PreprocessingError, match="step 3.*unknown op"):
        build_preprocessing({**described, "steps": [*described["steps"][:2], {"op": "sharpen"}]})
    described["steps"][1] = {**described["steps"][1], "radius": 3}
    with pytest.raises(PreprocessingError, match=r"step 2.*unknown parameter\(s\) \['radius'\]"):
        build_preprocessing(described)
    isic = steps("isic")
    isic["steps"][1] = {"op": "resize", "spatial_size": SIZES["isic"], "mode": "bilinear"}
    with pytest.raises(PreprocessingError, match="cannot be reproduced without torch"):
        build_preprocessing(isic)
    with pytest.raises(PreprocessingError, match="unknown entries"):
        build_preprocessing({**steps("isic"), "normalize": True})


def test_spec_reads_the_decision_threshold_and_aggregation(tmp_path):
    spec = load_spec(write_export(tmp_path, "rsna"))
    assert (spec.threshold, spec.threshold_key, spec.group_key, spec.how) == (0.45, "pf1_threshold", "breast_id", "mean")
    assert spec.onnx_file == tmp_path / "model.onnx" and spec.input_name == "image"


# -------------------------------------------------------------------------------- lazy medbundle


def test_import_medbundle_is_lazy_and_bundle_configs_resolve():
    code = textwrap.dedent(
        f"""
        import sys
        import medbundle
        assert "torch" not in sys.modules and "monai" not in sys.modules
        assert sys.excepthook is not sys.__excepthook__
        assert callable(medbundle.data.isic_datalist)
        from medbundle.io import RGBReader
        from monai.bundle import ConfigParser
        from monai.transforms import Compose
        for task, extra in (("isic", {{}}), ("rsna", {{}}), ("chest_xray", {{"clahe": True}})):
            parser = ConfigParser()
            parser.read_config({str(ROOT)!r} + f"/bundles/{{task}}/configs/inference.yaml")
            parser["image_size"] = [32, 32]
            for key, value in extra.items():
                parser[key] = value
            chain = parser.get_parsed_content("preprocessing")
            assert isinstance(chain, Compose), chain
        reader = chain.transforms[0]._loader.readers[-1]
        print(type(reader).__module__, medbundle.transforms.CLAHEd.__module__)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["medbundle.io.image_reader", "medbundle.transforms.clahe"]


# ------------------------------------------------------------------- chest_xray: reduced-size JPEG decode


@pytest.fixture(scope="module")
def large_chest_images(tmp_path_factory) -> list[Path]:
    """Grey, colour and EXIF-rotated JPEGs large enough to be decoded at 1/4 for 64 x 64, and a PNG."""
    import struct

    import cv2

    folder = tmp_path_factory.mktemp("large_chest")
    y, x = np.mgrid[:600, :480]
    grey = np.rint(127 + 100 * np.sin(x / 37) * np.cos(y / 53)).astype(np.uint8)
    tiff = b"II*\x00" + struct.pack("<IH", 8, 1) + struct.pack("<HHIHH", 0x0112, 3, 1, 6, 0) + struct.pack("<I", 0)
    app1 = b"Exif\x00\x00" + tiff
    jpeg = cv2.imencode(".jpg", grey, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    files = {
        "grey.jpg": jpeg,
        "colour.jpeg": cv2.imencode(".jpg", cv2.merge([grey, grey // 2, 255 - grey]))[1].tobytes(),
        "rotated.jpg": jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpeg[2:],
        "plain.png": cv2.imencode(".png", grey)[1].tobytes(),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return [folder / name for name in files]


def chest_chain(image_size: list[int], reduced_decode: bool | None = None):
    """chest_xray's inference.yaml preprocessing at `image_size`, with its `reduced_decode` unless given."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(ROOT / "bundles" / "chest_xray" / "configs" / "inference.yaml"))
    parser["image_size"] = image_size
    if reduced_decode is not None:
        parser["reduced_decode"] = reduced_decode
    return parser.get_parsed_content("preprocessing")


@pytest.mark.parametrize("reduced_decode", [None, False])
def test_chest_xray_reduced_jpeg_decode_is_carried_into_deploy_json(large_chest_images, reduced_decode):
    """The exporter's description of the chain decodes each JPEG at the bundle's size, to the same arrays."""
    from medbundle.export.preprocessing_spec import describe_preprocessing

    chain = chest_chain([64, 64], reduced_decode)
    description = describe_preprocessing(chain)
    assert description["steps"][0]["target_size"] == [64, 64]
    assert description["steps"][0]["reduced_decode"] is (reduced_decode is None)
    preprocessing = build_preprocessing(description)
    for path in large_chest_images:
        image, meta = preprocessing(path)
        expected = np.asarray(chain({"image": str(path)})["image"])
        np.testing.assert_allclose(image, expected, rtol=0, atol=1e-6)
        assert meta["reduce_level"] == (2 if path.suffix != ".png" and reduced_decode is None else 0), path.name


def test_chest_xray_configs_pass_the_reduced_decode_key_to_the_reader():
    from monai.bundle import ConfigParser

    configs = ROOT / "bundles" / "chest_xray" / "configs"
    for files, stored in (
        ([configs / "train.yaml"], False),
        ([configs / "inference.yaml"], True),
        ([configs / "train.yaml", configs / "evaluate.yaml"], True),
    ):
        for value in (True, False):
            parser = ConfigParser()
            parser.read_config([str(f) for f in files])
            parser["image_size"] = [96, 80]
            parser["reduced_decode" if not stored else "stored"] = value if not stored else {"reduced_decode": value, "clahe": False}
            reader = parser.get_parsed_content("deterministic_transforms")[0]._loader.readers[-1]
            assert (reader.target_size, reader.reduced_decode) == ((96, 80), value), (files, value)
    parser = ConfigParser()
    parser.read_config(str(configs / "train.yaml"))
    assert parser.get_parsed_content("reduced_decode") is True
    assert parser["stored_config"]["reduced_decode"] == "@reduced_decode"  # saved in model.pt for evaluation, inference
