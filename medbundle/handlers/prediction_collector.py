"""Per-image predictions gathered over one evaluation epoch, with the ids that group them.

A binary model (one sigmoid output) gives one ``pred`` column; a multi-class model (softmax over K
classes) gives ``pred_0 .. pred_{K-1}``. :func:`prediction_arrays` turns either back into arrays, so
metrics, threshold handlers and writers share one reading of the collected rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import ignite.distributed as idist
import numpy as np
import pandas as pd
from ignite.engine import Engine, Events
from monai.data import decollate_batch
from monai.utils import convert_to_numpy

__all__ = ["CollectingHandler", "PredictionCollector", "prediction_arrays"]


def _as_items(data: Any) -> list[Mapping]:
    """Return a batch as a list of per-item dicts, whether or not the engine decollated it."""
    if isinstance(data, Mapping):
        return decollate_batch(data, detach=True)
    return list(data)


def _vector(value: Any) -> np.ndarray:
    return np.atleast_1d(convert_to_numpy(value, wrap_sequence=True)).astype(np.float64).ravel()


class PredictionCollector:
    """Collect per-image predictions, labels and identifier columns from an evaluator.

    MONAI's evaluators keep only `image`, `label` and `pred` in `engine.state.output`; scores that group
    images (one breast = several views, one patient = several images) also need ids such as
    `breast_id`, which stay in `engine.state.batch`. This collector zips both, item by item, and gathers
    the rows of every rank when running distributed, so each metric or writer sees the whole split.

    Args:
        id_keys: keys copied from each batch item (missing keys are skipped, e.g. no `patient_id` when a
            dataset has none); the shared item schema has ``image_id`` and optional ``patient_id``, and a
            task adds its own extras (RSNA: ``laterality``, ``breast_id``).
        pred_key: key of the (post-processed, probability) prediction in `engine.state.output`.
        label_key: key of the label in `engine.state.output`; absent labels (inference) are allowed.
    """

    def __init__(
        self,
        id_keys: Sequence[str] = ("image_id", "patient_id"),
        pred_key: str = "pred",
        label_key: str = "label",
    ) -> None:
        self.id_keys = tuple(id_keys)
        self.pred_key = pred_key
        self.label_key = label_key
        self._rows: list[dict] = []

    def reset(self) -> None:
        self._rows = []

    def add(self, batch: Any, output: Any) -> None:
        """Append one row per item of an evaluator iteration (`engine.state.batch`, `engine.state.output`)."""
        for item, out in zip(_as_items(batch), _as_items(output)):
            row = {k: str(item[k]) for k in self.id_keys if k in item}
            pred = _vector(out[self.pred_key])
            row.update({"pred": float(pred[0])} if pred.size == 1 else {f"pred_{i}": float(p) for i, p in enumerate(pred)})
            label = out.get(self.label_key)
            if label is not None:
                label = _vector(label)
                row["label"] = float(label[0]) if label.size == 1 else int(label.argmax())
            self._rows.append(row)

    def frame(self) -> pd.DataFrame:
        """All rows collected so far on every rank, one row per image."""
        rows = self._rows
        if idist.get_world_size() > 1:
            rows = [row for part in idist.all_gather(rows) for row in part]
        return pd.DataFrame(rows)


def prediction_arrays(frame: pd.DataFrame) -> tuple[np.ndarray | None, np.ndarray]:
    """Labels and predictions of collected rows: ``(N,)`` / ``(N,)`` for binary, ``(N,)`` int / ``(N, K)`` for K classes.

    Args:
        frame: the rows of :meth:`PredictionCollector.frame`.

    Returns:
        ``(labels, predictions)``; labels are None when the rows have none (inference).
    """
    class_columns = sorted((c for c in frame.columns if c.startswith("pred_")), key=lambda c: int(c[5:]))
    multiclass = bool(class_columns)
    predictions = frame[class_columns].to_numpy(float) if multiclass else frame["pred"].to_numpy(float)
    if "label" not in frame:
        return None, predictions
    labels = frame["label"].to_numpy(float)
    return (labels.astype(np.int64) if multiclass else labels), predictions


class CollectingHandler:
    """Base of handlers that act on all predictions of an evaluation epoch (metrics images, writers).

    It resets a :class:`PredictionCollector` when an epoch starts, adds every iteration's batch and output,
    and calls :meth:`epoch_completed` with the rows of every rank once the epoch completes (or, for writers
    that also report the run's timing, on `completion_event` ``Events.COMPLETED``).

    Args:
        id_keys: batch keys collected beside each prediction.
    """

    completion_event: Events = Events.EPOCH_COMPLETED

    def __init__(self, id_keys: Sequence[str] = ()) -> None:
        self._collector = PredictionCollector(id_keys=id_keys)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, lambda _: self._collector.reset())
        engine.add_event_handler(
            Events.ITERATION_COMPLETED, lambda e: self._collector.add(e.state.batch, e.state.output)
        )
        engine.add_event_handler(self.completion_event, self)

    def __call__(self, engine: Engine) -> None:
        self.epoch_completed(engine, self._collector.frame())

    def epoch_completed(self, engine: Engine, frame: pd.DataFrame) -> None:
        """Act on the epoch's rows (one per image, gathered from every rank)."""
        raise NotImplementedError
