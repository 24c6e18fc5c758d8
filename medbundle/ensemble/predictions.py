"""Run every member of an ensemble over one datalist, each at its own preprocessing, with MONAI's EnsembleEvaluator.

Members trained at different image sizes (or channel counts, or with CLAHE) need different inputs. They are
grouped by the stored settings the task bundle's preprocessing reads (:func:`group_members`); each group gets
one dataset whose transforms are the task bundle's own (parsed from its configs with the group's checkpoint
as ``ckpt_path``, so nothing is copied), and one :class:`~monai.engines.EnsembleEvaluator` runs the group's
networks on it, one prediction key per member. The task bundle's post-processing (sigmoid or softmax) turns
logits into probabilities.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from ignite.engine import Engine, Events
from monai.data import DataLoader, Dataset
from monai.engines import EnsembleEvaluator
from monai.inferers import SimpleInferer

from medbundle.ensemble.members import Member, group_members
from medbundle.ensemble.tasks import get_task, task_bundle_dir, task_config
from medbundle.handlers import CropReportHandler, PredictionCollector, prediction_arrays
from medbundle.inferers import FlipTTAInferer

__all__ = ["MemberCollector", "MemberPredictions", "predict_members"]

logger = logging.getLogger(__name__)

#: where a task bundle keeps the preprocessing of labelled evaluation and of unlabelled inference
_PREPROCESSING = {True: (("train.yaml", "evaluate.yaml"), "validate#preprocessing"), False: (("inference.yaml",), "preprocessing")}


@dataclass
class MemberPredictions:
    """Every member's probabilities for the same items, in datalist order.

    Args:
        ids: one row per item with its id columns (``image_id``, and e.g. ``breast_id``).
        labels: the labels (``(N,)`` floats for binary, class indices for multi-class), None without labels.
        probabilities: member name -> ``(N,)`` (binary) or ``(N, K)`` (multi-class) probabilities.
    """

    ids: pd.DataFrame
    labels: np.ndarray | None
    probabilities: dict[str, np.ndarray]


class MemberCollector:
    """Collect the post-processed prediction of each member key of an EnsembleEvaluator, item by item.

    Args:
        pred_keys: the evaluator's prediction keys (the member names).
        id_keys: batch keys kept beside the predictions.
    """

    def __init__(self, pred_keys: Sequence[str], id_keys: Sequence[str]) -> None:
        self.collectors = {key: PredictionCollector(id_keys=id_keys, pred_key=key) for key in pred_keys}

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._add)

    def _reset(self, _: Engine) -> None:
        for collector in self.collectors.values():
            collector.reset()

    def _add(self, engine: Engine) -> None:
        for collector in self.collectors.values():
            collector.add(engine.state.batch, engine.state.output)

    def frames(self) -> dict[str, pd.DataFrame]:
        """Member name -> its rows (ids, ``pred`` or ``pred_<k>``, ``label``), one per item."""
        return {key: collector.frame() for key, collector in self.collectors.items()}


def _network(member: Member, task_bundle: Path, device: torch.device) -> torch.nn.Module:
    """The task bundle's ``network_def`` for this checkpoint, with its trained weights."""
    network = task_config(task_bundle, ("inference.yaml",), ckpt_path=str(member.path)).get_parsed_content("network_def")
    state = torch.load(member.path, map_location="cpu", weights_only=True)["model"]
    network.load_state_dict(state)
    return network.to(device)


def _run_group(
    group: Sequence[Member],
    datalist: Sequence[Mapping],
    task_bundle: Path,
    id_keys: Sequence[str],
    labelled: bool,
    image_size: Sequence[int] | None,
    tta: bool,
    batch_size: int,
    num_workers: int,
    device: torch.device,
    amp: bool,
    crop_report: CropReportHandler | None = None,
) -> dict[str, pd.DataFrame]:
    files, preprocessing_id = _PREPROCESSING[labelled]
    overrides: dict[str, Any] = {"ckpt_path": str(group[0].path)}
    if labelled:  # evaluate.yaml reads the checkpoint's settings without defaults: give the loaded ones
        overrides["stored"] = dict(group[0].config)
    if image_size is not None:
        overrides["image_size"] = list(image_size)
    preprocessing = task_config(task_bundle, files, **overrides).get_parsed_content(preprocessing_id)
    names = [member.name for member in group]
    postprocessing = task_config(task_bundle, ("inference.yaml",), **{"postprocessing#keys": names}).get_parsed_content(
        "postprocessing"
    )
    loader = DataLoader(Dataset(list(datalist), preprocessing), batch_size=batch_size, shuffle=False, num_workers=num_workers)
    collector = MemberCollector(names, id_keys)
    evaluator = EnsembleEvaluator(
        device=device,
        val_data_loader=loader,
        networks=[_network(member, task_bundle, device) for member in group],
        pred_keys=names,
        inferer=FlipTTAInferer() if tta else SimpleInferer(),
        postprocessing=postprocessing,
        val_handlers=[collector, *([crop_report] if crop_report is not None else [])],
        amp=amp,
    )
    evaluator.run()
    return collector.frames()


def predict_members(
    members: Sequence[Member],
    datalist: Sequence[Mapping],
    task: str,
    task_bundle: str | Path | None = None,
    labelled: bool = True,
    image_size: Sequence[int] | None = None,
    tta: bool = False,
    batch_size: int = 32,
    num_workers: int = 0,
    device: str | torch.device | None = None,
    amp: bool = False,
    crop_report_dir: str | Path | None = None,
    crop_fallback_warn: float = 0.05,
) -> MemberPredictions:
    """Each member's probabilities for every item of `datalist`, each member at its own preprocessing.

    Args:
        members: the loaded members (:func:`~medbundle.ensemble.load_members`).
        datalist: the items, in the task's datalist schema.
        task: the task name.
        task_bundle: the task bundle folder; default :func:`~medbundle.ensemble.task_bundle_dir`.
        labelled: use the bundle's evaluation preprocessing (items carry labels) or its inference one.
        image_size: an override of every member's stored image size; None keeps each member's own.
        tta: average each member's logits over flips (:class:`~medbundle.inferers.FlipTTAInferer`).
        batch_size: items per batch.
        num_workers: DataLoader processes per group.
        device: where the networks run; default the first GPU, else the CPU.
        amp: mixed precision on a GPU.
        crop_report_dir: where a task whose preprocessing crops the breast (rsna) logs and writes, per group of
            members, what the crop did (:class:`~medbundle.handlers.CropReportHandler`, ``crop_report.csv``); None
            for no report.
        crop_fallback_warn: the share of images kept whole above which the report warns loudly.

    Raises:
        ValueError: `datalist` is empty.
    """
    if not datalist:
        raise ValueError("the datalist to predict is empty; check dataset_dir, csv/images, eval_split or fold.")
    spec = get_task(task)
    bundle = Path(task_bundle) if task_bundle is not None else task_bundle_dir(task)
    device = torch.device(device) if device is not None else torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    frames: dict[str, pd.DataFrame] = {}
    for group in group_members(members, spec.preprocessing_keys, image_size):
        setting = dict(group[0].preprocessing(spec.preprocessing_keys, image_size))
        logger.info("predicting %d items with %s at %s", len(datalist), [m.name for m in group], setting)
        crop_report = None
        if crop_report_dir is not None:
            split = f"{'validation' if labelled else 'test'} for {', '.join(m.name for m in group)}"
            crop_report = CropReportHandler(crop_report_dir, split, warn_above=crop_fallback_warn)
        frames |= _run_group(group, datalist, bundle, spec.id_keys, labelled, image_size, tta, batch_size, num_workers,
                             device, amp, crop_report)
    first = frames[members[0].name]
    ids = first[[key for key in spec.id_keys if key in first]].reset_index(drop=True)
    labels, _ = prediction_arrays(first)
    return MemberPredictions(
        ids=ids, labels=labels, probabilities={m.name: prediction_arrays(frames[m.name])[1] for m in members}
    )
