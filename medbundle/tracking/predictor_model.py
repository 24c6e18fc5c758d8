"""The MLflow pyfunc model of an exported bundle: :class:`medbundle.deploy.Predictor` behind ``predict``.

It imports neither torch nor MONAI, so a registered model loads and predicts wherever the torch-free
:mod:`medbundle.deploy` runtime is installed (onnxruntime, OpenCV, pydicom, h5py), e.g. in ``mlflow models serve``.
:func:`medbundle.tracking.registry.register` logs this file as an MLflow "model from code": MLflow runs it to build
the model (the ``set_model`` call at its end) instead of unpickling an object.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import pandas as pd

from medbundle.deploy import Predictor, flat_row

__all__ = ["EXPORT_ARTIFACT", "PredictorModel"]

#: the key of the export folder (``model.onnx`` + ``deploy.json``) among the logged model's artifacts
EXPORT_ARTIFACT = "export"


class PredictorModel(mlflow.pyfunc.PythonModel):
    """Predict image files with the ONNX model and preprocessing of the logged export folder.

    ``predict`` takes image paths (a str or a list of them, as :meth:`medbundle.deploy.Predictor.predict`) or a pandas
    DataFrame with an ``image`` column whose other columns (e.g. ``patient_id`` and ``laterality``, from which
    rsna derives ``breast_id``) are ids copied to the result; empty cells are left out, as in
    ``python -m medbundle.deploy --datalist``. It returns a DataFrame with one row per image, in order: the ids,
    then ``logit``, ``probability``, ``threshold`` and ``decision`` (binary models) or ``pred_index``,
    ``pred_class`` and one ``prob_<class>`` column per class (multi-class), as the deploy command's CSV.
    """

    # predict has no input type hint, and MLflow is told not to look for one: it would read a hint as the input
    # schema and convert every input to it (a DataFrame to its first column, for list[str]), losing the ids
    _skip_type_hint_validation = True

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        """Build the predictor from the export folder logged under :data:`EXPORT_ARTIFACT`."""
        self.predictor = Predictor(context.artifacts[EXPORT_ARTIFACT])

    def predict(
        self, context: mlflow.pyfunc.PythonModelContext, model_input, params: dict | None = None
    ) -> pd.DataFrame:
        """Predict every image of `model_input`: a list of image paths or a DataFrame with an ``image`` column."""
        if isinstance(model_input, pd.DataFrame):
            if "image" not in model_input.columns:
                raise ValueError(
                    f"the input DataFrame has columns {list(model_input.columns)}; give one named 'image' with "
                    "the image paths."
                )
            items: list[Any] = [
                {key: value for key, value in row.items() if not pd.isna(value)}
                for row in model_input.to_dict("records")
            ]
        else:
            items = [str(path) for path in ([model_input] if isinstance(model_input, str) else model_input)]
        return pd.DataFrame([flat_row(row) for row in self.predictor.predict(items)])


mlflow.models.set_model(PredictorModel())
