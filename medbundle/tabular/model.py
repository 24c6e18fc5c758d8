"""A trained second stage as one folder: score lesions from their metadata rows and image scores.

``medbundle tabular`` writes the folder (``tabular.json``, ``features.json``, ``models/<booster>/fold_<k>/``);
:class:`TabularModel` reads it for ``medbundle tabular_predict`` and for the torch-free predictor of an exported
package, so both compute exactly what training computed: the features of each row among its patient's rows, each
booster's mean over the fold models, the mean over boosters, and the logit blend with the image score.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from medbundle.tabular.bagging import BaggedModel
from medbundle.tabular.features import FeatureSpec, make_features
from medbundle.tabular.image_scores import IMAGE_SCORE

__all__ = ["FEATURES_FILE", "MANIFEST_FILE", "TabularModel", "blend_scores", "model_folder"]

MANIFEST_FILE = "tabular.json"
FEATURES_FILE = "features.json"
_EPS = 1e-7


def model_folder(root: str | Path, booster: str, fold: int) -> Path:
    """Where the bagged model of one (booster, fold) lives in a second-stage folder."""
    return Path(root) / "models" / booster / f"fold_{fold}"


def blend_scores(trees: np.ndarray, image: np.ndarray, image_weight: float) -> np.ndarray:
    """``sigmoid((1 - w) logit(trees) + w logit(image))``: one lesion's blend needs no other lesion's score."""
    def logit(p: np.ndarray) -> np.ndarray:
        p = np.clip(np.asarray(p, dtype=float), _EPS, 1.0 - _EPS)
        return np.log(p) - np.log1p(-p)

    mixed = (1.0 - image_weight) * logit(trees) + image_weight * logit(image)
    return 1.0 / (1.0 + np.exp(-mixed))


@dataclass(frozen=True)
class TabularModel:
    """The tree models of a second-stage folder.

    Attributes:
        spec: the features the trees were trained on.
        models: ``{booster: [bagged model of each fold]}``.
        image_weight: the image score's weight in the blend.
    """

    spec: FeatureSpec
    models: dict[str, list[BaggedModel]]
    image_weight: float

    @classmethod
    def load(cls, folder: str | Path) -> TabularModel:
        """Read a folder that ``medbundle tabular`` wrote.

        Raises:
            FileNotFoundError: the folder has no ``tabular.json`` (the message says how to make one).
        """
        folder = Path(folder)
        manifest_path = folder / MANIFEST_FILE
        if not manifest_path.is_file():
            raise FileNotFoundError(
                f"{manifest_path} not found: pass the --out folder of `medbundle tabular` (it writes {MANIFEST_FILE}, "
                f"{FEATURES_FILE} and models/)."
            )
        manifest = json.loads(manifest_path.read_text())
        spec = FeatureSpec.from_json((folder / manifest["features"]).read_text())
        models = {booster: [BaggedModel.load(model_folder(folder, booster, fold)) for fold in manifest["folds"]]
                  for booster in manifest["boosters"]}  # fmt: skip
        return cls(spec=spec, models=models, image_weight=float(manifest["image_weight"]))

    def predict(self, frame: pd.DataFrame, image_scores, source: str | None = None) -> pd.DataFrame:
        """Score metadata rows: ``isic_id``, ``image`` (the image score), ``trees`` and ``target`` (the blend).

        Args:
            frame: metadata rows with the test-time columns (a test CSV; all of a patient's lesions together, since
                the per-patient features compare each lesion with the patient's others).
            image_scores: one image score per row, in row order (array), or a Series indexed by ``isic_id``.
            source: the CSV's name, for error messages.

        Raises:
            ValueError: a column the features need is missing (named), or a row has no image score.
        """
        if isinstance(image_scores, pd.Series):
            scores = frame["isic_id"].astype(str).map(image_scores)
            if scores.isna().any():
                absent = frame.loc[scores.isna(), "isic_id"].head(5).tolist()
                raise ValueError(
                    f"{int(scores.isna().sum())} rows of {source or 'the metadata'} have no image score (e.g. "
                    f"{absent}): predict every test image with the image model first."
                )
        else:
            scores = pd.Series(np.asarray(image_scores, dtype=float), index=frame.index)
        rows = frame.assign(**{IMAGE_SCORE: scores.to_numpy(float)})
        matrix = make_features(rows, self.spec, source=source)
        per_booster = [np.mean([model.predict(matrix) for model in folds], axis=0) for folds in self.models.values()]
        trees = np.mean(per_booster, axis=0)
        return pd.DataFrame({
            "isic_id": frame["isic_id"].astype(str).to_numpy(),
            "image": scores.to_numpy(float),
            "trees": trees,
            "target": blend_scores(trees, scores.to_numpy(float), self.image_weight),
        })  # fmt: skip
