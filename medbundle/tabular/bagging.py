"""Seed-bagged tree models on negative-subsampled rows, saved as one file per model beside a JSON manifest.

ISIC 2024 holds ~400 malignant lesions among ~400,000: a tree fitted to every row spends nearly all its time on
benign lesions it already separates. The top solutions kept every positive, drew a fresh share of the negatives per
model (imblearn's ``RandomUnderSampler(sampling_strategy=0.01)``: 100 negatives per positive) and averaged models
fitted with different seeds, which costs a hundredth of the rows per model and recovers the dropped negatives'
information across the bag. :func:`fit_bagged` does that with one :mod:`~medbundle.tabular.boosters` library;
:class:`BaggedModel` predicts, reports feature importance and round-trips through a folder that the torch-free
predictor loads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from medbundle.tabular.boosters import default_threads, get_booster

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MANIFEST", "NEG_PER_POS", "BaggedModel", "bag_rows", "fit_bagged"]

#: negatives drawn per positive by default: the ratio of the top ISIC 2024 solutions (``sampling_strategy=0.01``)
NEG_PER_POS = 100.0

#: the manifest file of a saved :class:`BaggedModel`
MANIFEST = "bagged_model.json"


def bag_rows(y: npt.ArrayLike, neg_per_pos: float | None, seed: int) -> np.ndarray:
    """Sorted row indices of one bag: every positive and ``round(neg_per_pos * positives)`` negatives drawn
    without replacement by `seed` (all of them when there are fewer, or when `neg_per_pos` is None).

    Raises:
        ValueError: labels other than 0 and 1, no positive or no negative, or `neg_per_pos` not above 0.
    """
    labels = np.asarray(y)
    if not np.isin(labels, (0, 1)).all():
        raise ValueError(f"labels must be 0 or 1, found {np.unique(labels)[:5].tolist()}; pass the target column.")
    positives, negatives = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    if positives.size == 0 or negatives.size == 0:
        raise ValueError(f"labels hold {positives.size} positives and {negatives.size} negatives; a booster needs "
                         "both. Check the target column and the fold.")
    if neg_per_pos is not None and neg_per_pos <= 0:
        raise ValueError(f"neg_per_pos must be above 0 (or None to keep every negative), got {neg_per_pos}.")
    count = negatives.size if neg_per_pos is None else min(negatives.size, round(neg_per_pos * positives.size))
    drawn = np.random.default_rng(seed).choice(negatives, size=count, replace=False)
    return np.sort(np.concatenate([positives, drawn]))


def _matrix(
    X: pd.DataFrame | Mapping[str, npt.ArrayLike], columns: Sequence[str], rows: np.ndarray | None = None
) -> np.ndarray:
    """`X`'s `columns` in that order (and only its `rows`, when given) as a float32 matrix.

    Raises:
        ValueError: `X` lacks some of `columns`, holds others, or holds a column that is not numeric; the message
            names them.
    """
    names, wanted = [str(c) for c in X], set(columns)
    missing, extra = [c for c in columns if c not in set(names)], [c for c in names if c not in wanted]
    if missing or extra:
        raise ValueError(f"the feature table's columns differ from the model's: missing {missing}, extra {extra}; "
                         "build the table with the feature code the model was trained on.")
    arrays = [np.atleast_1d(np.asarray(X[c])) for c in columns]
    text = [c for c, array in zip(columns, arrays, strict=True) if array.dtype.kind not in "biuf"]
    if text:
        raise ValueError(f"feature columns {text} are not numeric; encode them as numbers (NaN for a missing cell).")
    return np.stack([array if rows is None else array[rows] for array in arrays], axis=1).astype(np.float32, copy=False)


@dataclass
class BaggedModel:
    """Models of one library fitted on different negative subsamples with different seeds; predicts their mean.

    The mean probability ranks lesions (AUROC, ISIC's partial AUC) but is not calibrated: a model that saw 1 % of
    the negatives (and ``scale_pos_weight``) predicts probabilities far above the true ~0.1 % prior. Recalibrate
    before reading it as a risk.

    Attributes:
        booster: the :data:`~medbundle.tabular.boosters.BOOSTERS` name.
        columns: the feature columns, in the order the models were fitted on.
        params: the settings every member was fitted with (the library's keys).
        seeds: one per member: its negative draw and its library seed.
        neg_per_pos: negatives drawn per positive, or None for all.
        models: the fitted library models, one per seed.
        threads: threads used to predict.
    """

    booster: str
    columns: list[str]
    params: dict[str, Any]
    seeds: list[int]
    neg_per_pos: float | None
    models: list[Any] = field(repr=False)
    threads: int = field(default_factory=default_threads)

    def predict(self, X: pd.DataFrame | Mapping[str, npt.ArrayLike]) -> np.ndarray:
        """Mean positive-class probability of the members, one per row of `X` (float64).

        `X` is a feature table, or a mapping of column name to values (one value per column for one lesion): the
        torch-free predictor scores a metadata row without pandas. Columns are matched by name, so their order does
        not matter.

        Raises:
            ValueError: `X`'s columns are not the model's; the message names the missing and the extra ones.
        """
        booster, matrix = get_booster(self.booster), _matrix(X, self.columns)
        return np.mean([booster.predict(model, matrix, self.threads) for model in self.models], axis=0)

    def importance(self) -> pd.Series:
        """Each feature's split gain (CatBoost: its prediction-value change), averaged over the members and
        normalised to sum 1, largest first."""
        import pandas as pd

        booster = get_booster(self.booster)
        gains = np.mean([np.asarray(booster.importance(model, self.columns), float) for model in self.models], axis=0)
        total = gains.sum()
        shares = pd.Series(gains / total if total > 0 else gains, index=self.columns, name="importance")
        return shares.sort_values(ascending=False, kind="stable")

    def save(self, folder: str | Path) -> Path:
        """Write one model file per member and the :data:`MANIFEST` into `folder`; the manifest's path."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        booster = get_booster(self.booster)
        files = [f"{self.booster}_seed{seed}{booster.suffix}" for seed in self.seeds]
        for model, name in zip(self.models, files, strict=True):
            booster.save(model, folder / name)
        manifest = {"booster": self.booster, "files": files, "seeds": self.seeds, "neg_per_pos": self.neg_per_pos,
                    "columns": self.columns, "params": self.params}  # fmt: skip
        path = folder / MANIFEST
        path.write_text(json.dumps(manifest, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, folder: str | Path, threads: int | None = None) -> BaggedModel:
        """The model :meth:`save` wrote into `folder`, predicting exactly as it did, with `threads` threads
        (default: :func:`~medbundle.tabular.boosters.default_threads`).

        Raises:
            FileNotFoundError: the manifest or a model file it lists is missing; the message names it.
            ImportError: the library is not installed; the message gives the install command.
        """
        folder = Path(folder)
        path = folder / MANIFEST
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no bagged tree model here; save one with BaggedModel.save(folder).")
        manifest = json.loads(path.read_text())
        booster = get_booster(manifest["booster"])
        module = booster.module()
        missing = [name for name in manifest["files"] if not (folder / name).is_file()]
        if missing:
            raise FileNotFoundError(f"{path} lists model files missing from {folder}: {missing}; copy the whole "
                                    "folder.")
        models = [booster.load(module, folder / name) for name in manifest["files"]]
        return cls(booster=booster.name, columns=manifest["columns"], params=manifest["params"],
                   seeds=manifest["seeds"], neg_per_pos=manifest["neg_per_pos"], models=models,
                   threads=threads or default_threads())  # fmt: skip


def fit_bagged(
    name: str,
    X: pd.DataFrame,
    y: npt.ArrayLike,
    seeds: Sequence[int] = (0,),
    neg_per_pos: float | None = NEG_PER_POS,
    params: Mapping[str, Any] | None = None,
    threads: int | None = None,
) -> BaggedModel:
    """Fit one `name` model per seed, each on every positive and its own draw of negatives (:func:`bag_rows`).

    Args:
        name: a :data:`~medbundle.tabular.boosters.BOOSTERS` name.
        X: the feature table: numeric columns, NaN for a missing cell (the trees learn where missing cells go).
        y: 0/1 labels, one per row of `X`.
        seeds: one member per seed; a seed drives both the member's negative draw and its library's randomness, so
            the same data and seeds give the same predictions.
        neg_per_pos: negatives drawn per positive (default 100, the top ISIC 2024 solutions' 1 %), or None to fit
            every member on all rows.
        params: settings overriding the library's defaults (:attr:`Booster.params`, in the library's own keys).
        threads: threads per fit and for predicting; default the cores this process may use.

    Raises:
        ValueError: an unknown booster, no seed, labels that do not match `X`'s rows, or a non-numeric column.
        ImportError: the library is not installed; the message gives the install command.
    """
    booster = get_booster(name)
    module = booster.module()
    if not seeds:
        raise ValueError("seeds is empty; give one seed per bagged model, e.g. seeds=[0, 1, 2].")
    labels = np.asarray(y)
    if labels.shape != (len(X),):
        raise ValueError(f"y holds {labels.shape} labels for {len(X)} rows of X; pass one 0/1 label per row.")
    columns, threads = [str(c) for c in X.columns], threads or default_threads()
    settings = {**booster.params, **(params or {})}
    models = []
    for seed in seeds:
        rows = bag_rows(labels, neg_per_pos, seed)  # only a bag's rows become a float matrix, never the whole table
        models.append(booster.fit(module, _matrix(X, columns, rows), labels[rows].astype(np.float32), columns,
                                  settings, seed, threads))  # fmt: skip
    return BaggedModel(booster=name, columns=columns, params=settings, seeds=[int(s) for s in seeds],
                       neg_per_pos=neg_per_pos, models=models, threads=threads)  # fmt: skip
