"""isic's two stages without torch: the exported image model scores each crop, the trees score it with its metadata.

An isic export folder gets the second stage with ``medbundle export ... --tabular runs/isic_tabular`` (or
:func:`add_tabular_stage`): the folder ``medbundle tabular`` wrote is copied to ``<export>/tabular``. Then::

    from medbundle.tabular import StackedPredictor

    predictor = StackedPredictor("exports/isic")
    rows = predictor.predict(metadata, images)   # metadata: DataFrame of test-metadata rows; images: isic_id -> crop

gives per lesion the image score (onnxruntime), the trees' score and the blend, computed by the same
:class:`medbundle.tabular.model.TabularModel` that ``medbundle tabular_predict`` uses. Needs, beyond the deploy
runtime, pandas and the boosters the stage was trained with (``pip install 'medbundle[tabular]'``); still no torch.
Pass all of a patient's lesions in one call: the trees compare each lesion with the patient's others.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from medbundle.deploy.predictor import Predictor
from medbundle.tabular.model import MANIFEST_FILE, TabularModel

__all__ = ["TABULAR_FOLDER", "StackedPredictor", "add_tabular_stage"]

TABULAR_FOLDER = "tabular"


def add_tabular_stage(export_dir: str | os.PathLike, tabular_dir: str | os.PathLike) -> Path:
    """Copy a trained second stage into an export folder (replacing one there); returns the copy's folder.

    Raises:
        FileNotFoundError: `tabular_dir` is not a folder ``medbundle tabular`` wrote, or `export_dir` has no
            ``deploy.json``.
    """
    source, target = Path(tabular_dir), Path(export_dir) / TABULAR_FOLDER
    if not (source / MANIFEST_FILE).is_file():
        raise FileNotFoundError(f"{source / MANIFEST_FILE} not found: pass the --out folder of `medbundle tabular`.")
    if not (Path(export_dir) / "deploy.json").is_file():
        raise FileNotFoundError(f"{export_dir} has no deploy.json: export the isic image model there first.")
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("oof.csv", "predictions.csv", "submission.csv"))
    return target


class StackedPredictor:
    """The image model of an export folder and the trees of its ``tabular/`` folder.

    Args:
        model_dir: an isic export folder with a second stage (:func:`add_tabular_stage`).
        batch_size: images per onnxruntime call.
        threads: onnxruntime intra-op threads.

    Raises:
        FileNotFoundError: the folder has no ``tabular/`` stage.
    """

    def __init__(self, model_dir: str | os.PathLike, batch_size: int = 8, threads: int | None = None) -> None:
        stage = Path(model_dir) / TABULAR_FOLDER
        if not (stage / MANIFEST_FILE).is_file():
            raise FileNotFoundError(
                f"{stage} holds no second stage: add one with `medbundle export ... --tabular <medbundle tabular --out>`."
            )
        self.images = Predictor(model_dir, batch_size=batch_size, threads=threads)
        self.trees = TabularModel.load(stage)

    def predict(self, metadata: pd.DataFrame, images: Mapping[str, str], source: str | None = None) -> pd.DataFrame:
        """``isic_id``, ``image``, ``trees`` and ``target`` (the blend) per metadata row, in row order.

        Args:
            metadata: rows with the test metadata columns (``isic_id``, ``patient_id``, ...).
            images: ``isic_id`` -> the crop (a file or ``"<file>::<isic_id>"``).
            source: the metadata's name, for error messages.

        Raises:
            ValueError: a row's crop is not in `images`, or a metadata column the trees need is missing (named).
        """
        ids = metadata["isic_id"].astype(str).tolist()
        absent = [isic_id for isic_id in ids if isic_id not in images]
        if absent:
            raise ValueError(f"{len(absent)} lesion(s) have no crop in images, e.g. {absent[:5]}; pass every row's crop.")
        rows = self.images.predict([{"image": images[isic_id], "image_id": isic_id} for isic_id in ids])
        scores = [float(row["probability"]) for row in rows]
        return self.trees.predict(metadata, scores, source=source)
