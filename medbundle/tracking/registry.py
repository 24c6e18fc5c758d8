"""Register a trained bundle in the MLflow model registry as a model that predicts without torch.

``medbundle register --bundle bundles/rsna --checkpoint bundles/rsna/models/fold0/model.pt --name rsna`` exports the
checkpoint to ONNX with ``deploy.json`` (:func:`medbundle.export.export_bundle`, parity-checked against the eager
network), logs that folder as an MLflow pyfunc model whose ``predict`` is :class:`medbundle.deploy.Predictor`
(:mod:`medbundle.tracking.predictor_model`), and registers it as a new version of ``rsna``::

    mlflow.pyfunc.load_model("models:/rsna/1").predict(["test_images/10008/1591370361.dcm"])

The logged model carries what it runs and nothing of training:

- code: the ``medbundle`` package itself (``code_paths``), so the model loads where medbundle is not installed and
  preprocesses with exactly the code it was exported and checked with; the part that runs imports no torch.
- requirements: the torch-free deploy runtime, pinned to the versions installed here, so ``mlflow models serve``
  builds a small environment without torch or MONAI. They are declared, not inferred: MLflow infers them from the
  modules that loading the model imports, in a subprocess, which costs seconds and misses the decoders
  (pydicom, h5py) that are imported only when a first image is read.
- no signature or input example: a column schema would reject a plain list of paths and drop the id columns of a
  DataFrame, and an example would need readable images at logging time.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote

from medbundle.tracking.store import bundle_store_uri

__all__ = ["default_tracking_uri", "register"]

logger = logging.getLogger(__name__)

#: what :mod:`medbundle.deploy` needs (its README's "Minimal runtime"), and pandas for the table predict returns
_RUNTIME = (
    "numpy", "pandas", "onnxruntime", "opencv-python-headless", "pillow", "h5py", "pydicom", "pylibjpeg",
    "pylibjpeg-libjpeg", "pylibjpeg-openjpeg",
)  # fmt: skip


def _require_mlflow() -> ModuleType:
    try:
        import mlflow
    except ImportError:
        # raised from None: medbundle's excepthook prints an error's root cause last, and this line says what to do
        raise ImportError(
            "the MLflow model registry needs mlflow, which is not installed (an optional dependency of medbundle).\n"
            "Install it with: pip install 'medbundle[tracking]'"
        ) from None
    return mlflow


def default_tracking_uri(bundle: str | os.PathLike) -> str:
    """The MLflow store a bundle's models are registered in when none is given.

    ``MLFLOW_TRACKING_URI`` if set, else the bundle's own store (:func:`~medbundle.tracking.store.bundle_store_uri`,
    ``<bundle>/eval/mlruns.db``), where ``--tracking mlflow`` puts its training, evaluation and inference runs:
    ``mlflow ui --backend-store-uri sqlite:///<bundle>/eval/mlruns.db`` shows them and the registered models together.
    """
    return os.environ.get("MLFLOW_TRACKING_URI") or bundle_store_uri(bundle)


def _experiment_id(mlflow: ModuleType, experiment: str, tracking_uri: str) -> str:
    """The id of `experiment` in the current store, created if new.

    A new experiment of a local SQLite store keeps its artifacts in ``<database folder>/mlruns``, as MONAI's
    ``MLFlowHandler`` does; in other stores MLflow chooses.
    """
    from monai.utils import path_to_uri

    artifact_location = None
    if tracking_uri.startswith("sqlite:///"):
        folder = Path(unquote(tracking_uri[len("sqlite:///") :])).parent
        folder.mkdir(parents=True, exist_ok=True)  # SQLite creates the database file, not its folder
        artifact_location = path_to_uri(folder / "mlruns")
    found = mlflow.get_experiment_by_name(experiment)
    return found.experiment_id if found else mlflow.create_experiment(experiment, artifact_location=artifact_location)


@contextmanager
def _using(mlflow: ModuleType, tracking_uri: str) -> Iterator[None]:
    """Make `tracking_uri` MLflow's tracking URI inside the block only.

    ``mlflow.set_tracking_uri`` also exports it as ``MLFLOW_TRACKING_URI``, which MONAI's ``MLFlowHandler`` prefers
    to its own argument: left set, it would send this process's later training runs to the registry's store.
    """
    previous = os.environ.get("MLFLOW_TRACKING_URI")  # mirrors MLflow's own setting; None unsets both
    mlflow.set_tracking_uri(tracking_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)


def _pinned(name: str) -> str:
    try:
        return f"{name}=={version(name)}"
    except PackageNotFoundError:
        return name


def register(
    bundle: str | os.PathLike,
    checkpoint: str | os.PathLike,
    name: str,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    out: str | os.PathLike | None = None,
    parity_images: str | Sequence[str] | None = None,
) -> dict[str, Any]:
    """Export `checkpoint` to ONNX, log it as an MLflow model and register it as a new version of `name`.

    The run (named ``register <name>``) and the model version are tagged with the checkpoint's ``task``,
    ``backbone``, ``checkpoint`` path and ``checkpoint_sha256``. A new experiment gets MONAI's artifact folder for
    a SQLite store (``<database folder>/mlruns``).

    Args:
        bundle: the bundle folder, e.g. ``bundles/rsna``.
        checkpoint: a best model written by its training.
        name: the registered model's name.
        tracking_uri: the MLflow store; default :func:`default_tracking_uri`.
        experiment: the experiment of the logging run; default the checkpoint's task (``rsna``), the experiment of
            the bundle's tracked runs.
        out: a folder to keep the export in; default a temporary one (the model holds a copy either way).
        parity_images: an image path, or a list of them, in the task's format, to check the export on.

    Returns:
        ``{"model_uri": "models:/<name>/<version>", "version", "run_id", "tracking_uri"}``.

    Raises:
        ImportError: mlflow is not installed.
        medbundle.export.ParityError: the ONNX model disagrees with the eager network (nothing is logged).
    """
    mlflow = _require_mlflow()
    from medbundle.export.exporter import export_bundle
    from medbundle.tracking import predictor_model

    tracking_uri = tracking_uri or default_tracking_uri(bundle)
    images = [parity_images] if isinstance(parity_images, str) else parity_images
    with tempfile.TemporaryDirectory() as tmp:
        exported = export_bundle(bundle, checkpoint, "onnx", out or Path(tmp) / "export", images)
        source = exported["deploy"]["source"]
        tags = {
            "task": exported["deploy"]["task"],
            "backbone": str(source["config"].get("backbone")),
            "checkpoint": str(Path(checkpoint).resolve()),
            "checkpoint_sha256": source["checkpoint_sha256"],
        }
        with _using(mlflow, tracking_uri):
            experiment_id = _experiment_id(mlflow, experiment or tags["task"], tracking_uri)
            with mlflow.start_run(experiment_id=experiment_id, run_name=f"register {name}", tags=tags) as run:
                logged = mlflow.pyfunc.log_model(
                    name="model",
                    python_model=predictor_model.__file__,  # MLflow's "model from code": nothing is pickled
                    artifacts={predictor_model.EXPORT_ARTIFACT: exported["out"]},
                    code_paths=[str(Path(__file__).resolve().parents[1])],  # the medbundle package
                    pip_requirements=[_pinned(package) for package in _RUNTIME],
                )
            registered = mlflow.register_model(logged.model_uri, name, tags=tags)
    model_uri = f"models:/{name}/{registered.version}"
    logger.info("registered %s (run %s) in %s", model_uri, run.info.run_id, tracking_uri)
    return {"model_uri": model_uri, "version": int(registered.version), "run_id": run.info.run_id,
            "tracking_uri": tracking_uri}  # fmt: skip
