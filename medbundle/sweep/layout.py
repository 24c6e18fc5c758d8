"""Where a sweep keeps its runs: ``<runs_dir>/<name>/<model>/fold_<k>/`` and the sweep's own ``sweep.json``.

Each run is trained with ``--bundle_root`` set to its folder, so the bundle writes its usual
``models/fold<k>/`` (``model.pt``, ``last_checkpoint_epoch=N.pt``) and ``outputs/fold<k>/`` (TensorBoard,
evaluation files) inside it; the sweep adds ``train.log``, ``command.txt`` and ``status.json`` beside them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from medbundle.io.atomic_file import atomic_write
from medbundle.outputs import evaluation_dir

__all__ = ["PLAN_FILE", "RunDir", "SweepPlan", "find_runs", "run_dirs"]

PLAN_FILE = "sweep.json"
_FOLD = re.compile(r"fold_(\d+)$")


@dataclass(frozen=True)
class RunDir:
    """The folder of one (model, fold) run of a sweep and the files in it.

    Args:
        sweep: the sweep folder ``<runs_dir>/<name>``.
        model: the model preset (or backbone) the run trains.
        fold: the validation fold.
    """

    sweep: Path
    model: str
    fold: int

    @property
    def name(self) -> str:
        """``<model>/fold_<k>``, the run's name in logs and tables."""
        return f"{self.model}/fold_{self.fold}"

    @property
    def folder(self) -> Path:
        """The run's ``bundle_root``."""
        return self.sweep / self.model / f"fold_{self.fold}"

    @property
    def ckpt_dir(self) -> Path:
        """The bundle's ``ckpt_dir`` for this run."""
        return self.folder / "models" / f"fold{self.fold}"

    @property
    def best_checkpoint(self) -> Path:
        return self.ckpt_dir / "model.pt"

    @property
    def output_dir(self) -> Path:
        """The bundle's ``output_dir`` for this run: TensorBoard events and the evaluation's files."""
        return self.folder / "outputs" / f"fold{self.fold}"

    @property
    def predictions(self) -> Path:
        """The per-image validation predictions written by the bundle's ``evaluate.yaml``."""
        return self.evaluation_predictions()

    def evaluation_predictions(self, tta: bool = False) -> Path:
        """The per-image validation predictions of ``evaluate.yaml``, with ``--tta True`` those in its own folder."""
        return evaluation_dir(self.output_dir, tta=tta) / "predictions_image.csv"

    @property
    def status_file(self) -> Path:
        return self.folder / "status.json"

    @property
    def log_file(self) -> Path:
        return self.folder / "train.log"

    @property
    def command_file(self) -> Path:
        return self.folder / "command.txt"

    @property
    def evaluation_log(self) -> Path:
        return self.folder / "evaluate.log"

    def has_last_checkpoint(self) -> bool:
        """Whether training left an interval checkpoint (``*checkpoint_epoch=N.pt``) that ``--resume`` continues."""
        return any(self.ckpt_dir.glob("*checkpoint_epoch=*.pt"))


@dataclass
class SweepPlan:
    """What ``sweep.json`` records about a sweep, so ``oof`` and ``summary`` need only its folder.

    Args:
        bundle: the bundle folder the runs were trained with.
        model_key: the bundle key each model name sets (``model`` for presets, ``backbone`` for rsna).
        overrides: the bundle overrides every run was trained with (e.g. ``dataset_dir``, ``epochs``).
        models: every model trained in the sweep so far.
        folds: every fold trained in the sweep so far.
        nproc: processes (GPUs) per run.
        tracking: a tracked sweep's facts (:mod:`medbundle.sweep.tracking`): tracker, store, experiment, parent run.
    """

    bundle: str
    model_key: str
    overrides: dict[str, Any] = field(default_factory=dict)
    models: list[str] = field(default_factory=list)
    folds: list[int] = field(default_factory=list)
    nproc: int = 1
    tracking: dict[str, Any] | None = None

    @classmethod
    def read(cls, sweep: str | Path) -> SweepPlan:
        """The plan of the sweep folder `sweep`.

        Raises:
            FileNotFoundError: `sweep` holds no ``sweep.json``; the message says how to create it.
        """
        path = Path(sweep) / PLAN_FILE
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} not found: pass --runs the folder `sweep.py train` wrote (runs/<name>), or train first."
            )
        return cls(**json.loads(path.read_text()))

    def merged(self, other: SweepPlan) -> SweepPlan:
        """This plan with the models and folds of `other` added and its settings taking over."""
        return SweepPlan(
            bundle=other.bundle,
            model_key=other.model_key,
            overrides=dict(other.overrides),
            models=list(dict.fromkeys([*self.models, *other.models])),
            folds=sorted({*self.folds, *other.folds}),
            nproc=other.nproc,
            tracking=other.tracking or self.tracking,
        )

    def write(self, sweep: str | Path) -> None:
        Path(sweep).mkdir(parents=True, exist_ok=True)
        with atomic_write(Path(sweep) / PLAN_FILE, text=True) as stream:
            stream.write(json.dumps(asdict(self), indent=2) + "\n")


def run_dirs(sweep: str | Path, models: Sequence[str], folds: Sequence[int]) -> list[RunDir]:
    """The runs of every model on every fold, model by model."""
    return [RunDir(Path(sweep), model, int(fold)) for model in models for fold in folds]


def find_runs(sweep: str | Path) -> list[RunDir]:
    """Every ``<model>/fold_<k>`` folder of a sweep, sorted by model and fold.

    Models are folders holding ``fold_<k>`` folders, so a preset named ``org/name`` is not supported.
    """
    sweep = Path(sweep)
    found = [
        RunDir(sweep, folder.parent.name, int(match.group(1)))
        for folder in sweep.glob("*/fold_*")
        if folder.is_dir() and (match := _FOLD.search(folder.name))
    ]
    return sorted(found, key=lambda run: (run.model, run.fold))
