"""Predict with an exported medbundle model through onnxruntime, without torch or MONAI.

An export folder (written by :mod:`medbundle.export`) holds ``model.onnx`` and ``deploy.json``: the input and
output names, the activation, class names, the stored decision threshold, the per-group aggregation (rsna:
per breast) and the bundle's deterministic preprocessing as plain parameters. :class:`Predictor` reads the
images, preprocesses them with the same functions the bundle's MONAI transforms wrap
(:mod:`medbundle.imaging`), and runs the model::

    from medbundle.deploy import Predictor

    predictor = Predictor("exports/rsna")
    rows = predictor.predict([{"image": "test_images/10008/1591370361.dcm", "breast_id": "10008_L"}])
    breasts = predictor.aggregate(rows)

or from the command line::

    python -m medbundle.deploy exports/rsna test_images/ --output_csv predictions.csv --group_csv breasts.csv

Minimal runtime: Python 3.10+ and::

    pip install numpy onnxruntime opencv-python-headless pydicom pylibjpeg pylibjpeg-libjpeg \\
        pylibjpeg-openjpeg h5py
    pip install --no-deps medbundle   # or copy the medbundle package folder onto PYTHONPATH

Nothing here imports torch, MONAI, pandas or timm: ``import medbundle`` is lazy, and this package uses only
:mod:`medbundle.imaging`, :mod:`medbundle.io.dicom` (pydicom, for DICOM) and :mod:`medbundle.io.hdf5` (h5py,
for ISIC HDF5 members). pydicom and h5py are imported only when such an image is read.
"""

from __future__ import annotations

from medbundle.deploy.predictor import Item, Predictor, aggregate, flat_row, item_ids
from medbundle.deploy.preprocess import (
    Preprocessing,
    PreprocessingError,
    build_preprocessing,
)
from medbundle.deploy.spec import DEPLOY_FILE, DeploySpec, DeploySpecError, load_spec

__all__ = [
    "DEPLOY_FILE",
    "DeploySpec",
    "DeploySpecError",
    "Item",
    "Predictor",
    "Preprocessing",
    "PreprocessingError",
    "aggregate",
    "build_preprocessing",
    "flat_row",
    "item_ids",
    "load_spec",
]
