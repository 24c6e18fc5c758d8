"""medbundle register: an exported bundle as a registered MLflow model that predicts what the bundle predicts.

One chest_xray checkpoint (a randomly initialised resnet10t at 48 x 48, BatchNorm statistics set away from 0/1 so
the probabilities differ between images, saved as training saves it) is registered twice under one name in the
bundle's default store: by :func:`register` and by the ``medbundle register`` command. The registered model must
give the probabilities of the bundle's own ``python -m monai.bundle run`` inference, and load in a process that has
neither torch nor an installed medbundle.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from medbundle.cli import main
from medbundle.data import CHEST_XRAY_CLASSES
from medbundle.demo import write_chest_xray_demo
from medbundle.networks import TimmClassifier
from medbundle.tracking.registry import default_tracking_uri, register

mlflow = pytest.importorskip("mlflow")

REPO = Path(__file__).resolve().parents[1]
NAME = "chest"
CONFIG = {"task": "chest_xray", "model": "resnet10t", "backbone": "resnet10t", "head": "linear", "in_chans": 3,
          "num_classes": 5, "class_names": list(CHEST_XRAY_CLASSES), "image_size": [48, 48], "clahe": False,
          "norm_stats": None}  # fmt: skip


def write_checkpoint(path: Path) -> Path:
    torch.manual_seed(0)
    network = TimmClassifier("resnet10t", num_classes=5, in_chans=3, head="linear")
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.2, 1.5)
    path.parent.mkdir(parents=True)
    torch.save({"model": network.state_dict(), "config": CONFIG}, path)
    return path


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """A bundle folder with a checkpoint, its test and val images, and two registrations in its default store."""
    root = tmp_path_factory.mktemp("registry")
    bundle = root / "chest_xray"
    shutil.copytree(REPO / "bundles" / "chest_xray" / "configs", bundle / "configs")
    checkpoint = write_checkpoint(bundle / "models" / "fold0" / "model.pt")
    write_chest_xray_demo(root / "data", n_train=1, n_val=1, n_test=1, size_range=(64, 96), seed=3)
    images = sorted(str(p) for split in ("test", "val") for p in (root / "data" / split).rglob("*.*"))
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        first = register(str(bundle), str(checkpoint), NAME, experiment="registry", out=str(root / "export"))
        printed = io.StringIO()
        patch.setattr(sys, "argv", ["medbundle", "register", "--bundle", str(bundle), "--checkpoint", str(checkpoint),
                                    "--name", NAME, "--parity_images", images[0]])  # fmt: skip
        with contextlib.redirect_stdout(printed):
            main()
        assert "MLFLOW_TRACKING_URI" not in os.environ  # register leaves MLflow's settings as they were
        patch.setenv("MLFLOW_TRACKING_URI", first["tracking_uri"])  # for models:/ URIs
        yield {"root": root, "bundle": bundle, "checkpoint": checkpoint, "images": images, "first": first,
               "printed": printed.getvalue()}  # fmt: skip


def bundle_probabilities(bundle: Path, images: list[str]) -> pd.DataFrame:
    """The bundle's own inference (``inference.yaml``, as ``python -m monai.bundle run``): one row per image id."""
    from monai.bundle import run

    run(config_file=str(bundle / "configs" / "inference.yaml"), logging_file=False, bundle_root=str(bundle),
        input=images, num_workers=0)  # fmt: skip
    return pd.read_csv(bundle / "outputs" / "fold0" / "inference" / "predictions_image.csv").set_index("image_id")


def test_each_registration_is_a_new_version_in_the_bundle_store_tagged_with_its_source(registered):
    bundle, first = registered["bundle"], registered["first"]
    assert first["tracking_uri"] == f"sqlite:///{bundle}/eval/mlruns.db" and (bundle / "eval" / "mlruns.db").is_file()
    assert first["model_uri"] == f"models:/{NAME}/1" and first["version"] == 1
    assert registered["printed"].strip() == f"models:/{NAME}/2"
    assert (registered["root"] / "export" / "model.onnx").is_file()  # out= keeps the export
    client = mlflow.MlflowClient(first["tracking_uri"])
    versions = {int(v.version): v for v in client.search_model_versions(f"name = '{NAME}'")}
    assert sorted(versions) == [1, 2]
    expected = {"task": "chest_xray", "backbone": "resnet10t", "checkpoint": str(registered["checkpoint"])}
    for version in versions.values():
        assert expected.items() <= version.tags.items() and len(version.tags["checkpoint_sha256"]) == 64
    run = client.get_run(first["run_id"])
    assert expected.items() <= run.data.tags.items() and run.info.run_name == f"register {NAME}"
    experiments = {e.name: e for e in client.search_experiments()}
    assert set(experiments) >= {"registry", "chest_xray"}  # the CLI's default: the task's, beside its tracked runs
    assert experiments["registry"].artifact_location == (bundle / "eval" / "mlruns").as_uri()  # as MONAI's handler
    assert any((bundle / "eval" / "mlruns").iterdir())


def test_registered_model_predicts_the_bundle_inference_probabilities(registered):
    images = registered["images"]
    expected = bundle_probabilities(registered["bundle"], images)
    model = mlflow.pyfunc.load_model(f"models:/{NAME}/1")
    rows = model.predict(images)
    assert isinstance(rows, pd.DataFrame) and rows["image"].tolist() == images
    columns = [f"prob_{name}" for name in CHEST_XRAY_CLASSES]
    actual = rows.set_index("image_id").loc[expected.index, columns]
    assert np.ptp(actual.to_numpy(), axis=0).max() > 1e-2  # the images' probabilities differ: the check can fail
    np.testing.assert_allclose(actual.to_numpy(), expected[columns].to_numpy(), rtol=0, atol=1e-4)
    assert rows.set_index("image_id").loc[expected.index, "pred_class"].tolist() == expected["pred_class"].tolist()

    # a DataFrame's other columns are ids passed through; an empty cell is left out
    table = model.predict(pd.DataFrame({"image": images[:2], "patient_id": ["p1", None]}))
    assert table["patient_id"].tolist()[0] == "p1" and pd.isna(table["patient_id"].tolist()[1])
    np.testing.assert_allclose(table[columns].to_numpy(), rows[columns].to_numpy()[:2], rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="give one named 'image'"):
        model.predict(pd.DataFrame({"path": images[:1]}))


def test_registered_model_loads_and_predicts_without_torch_or_an_installed_medbundle(registered, tmp_path):
    """The model carries medbundle (code_paths); loading, predicting and importing the pyfunc module import no torch."""
    code = textwrap.dedent(
        f"""
        import sys
        import mlflow
        model = mlflow.pyfunc.load_model("models:/{NAME}/2")
        rows = model.predict({registered["images"][:3]!r})
        import medbundle, medbundle.tracking.predictor_model
        loaded = [m for m in ("torch", "monai", "timm") if m in sys.modules]
        assert not loaded, loaded
        print(len(rows), medbundle.__file__)
        """
    )
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=tmp_path,
                          env=env, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    count, medbundle_file = done.stdout.split()
    assert count == "3" and "/code/medbundle/__init__.py" in medbundle_file  # the model's copy


def test_without_mlflow_the_error_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(ImportError) as error:
        register(str(REPO / "bundles" / "chest_xray"), str(tmp_path / "model.pt"), NAME)  # fails before exporting
    assert str(error.value).splitlines()[-1] == "Install it with: pip install 'medbundle[tracking]'"
    assert error.value.__suppress_context__  # so medbundle's excepthook prints this message last


def test_default_store_is_mlflow_tracking_uri_else_the_bundle_eval_database(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert default_tracking_uri(tmp_path / "rsna") == f"sqlite:///{tmp_path}/rsna/eval/mlruns.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert default_tracking_uri(tmp_path / "rsna") == "http://mlflow.example:5000"
