"""Predict with an exported model (``model.onnx`` + ``deploy.json``) through onnxruntime, without torch or MONAI."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medbundle.deploy.preprocess import Preprocessing, build_preprocessing
from medbundle.deploy.spec import DeploySpec, load_spec

__all__ = ["Item", "Predictor", "aggregate", "flat_row", "item_ids"]

logger = logging.getLogger(__name__)

#: what :meth:`Predictor.predict` takes per image: a path (``"<file>::<key>"`` for an HDF5 member), or a
#: datalist item ``{"image": path, **ids}`` whose other entries (e.g. ``breast_id``) are copied to the result
Item = str | os.PathLike | Mapping[str, Any]


def item_ids(item: Item, meta: Mapping[str, Any] | None = None, group_key: str | None = None) -> dict[str, Any]:
    """The ids of one image: ``image`` and ``image_id``, the item's other entries, and `group_key` if derivable.

    ``image_id`` is the item's, else the HDF5 key of ``"<file>::<key>"`` or the file name without suffix.
    A missing ``breast_id`` group is ``"<patient_id>_<laterality>"`` as :func:`medbundle.data.rsna_datalist`
    builds it, from the item's ``patient_id`` and ``laterality``, or else from the RSNA layout
    ``<patient_id>/<image_id>.dcm`` and the DICOM's Image Laterality (`meta` ``image_laterality``).
    """
    fields = dict(item) if isinstance(item, Mapping) else {"image": item}
    if "image" not in fields:
        raise ValueError(f"a datalist item needs an 'image' entry, got keys {sorted(fields)}.")
    name = os.fspath(fields["image"])
    fields["image"] = name
    if fields.get("image_id") is None:
        _, separator, key = name.rpartition("::")
        fields["image_id"] = key if separator else Path(name).stem
    if group_key == "breast_id" and fields.get("breast_id") is None:
        patient = fields.get("patient_id") or (Path(name).parent.name if "::" not in name else None)
        laterality = fields.get("laterality") or (meta or {}).get("image_laterality")
        if patient and laterality:
            fields["breast_id"] = f"{patient}_{laterality}"
    return fields


def flat_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A result of :meth:`Predictor.predict` or :func:`aggregate` with ``probabilities`` spread into ``prob_<class>``.

    These are the columns of ``python -m medbundle.deploy --output_csv``; the multi-class bundles' own
    ``predictions_image.csv`` names its probabilities the same way.
    """
    flat = {key: value for key, value in row.items() if key != "probabilities"}
    flat |= {f"prob_{name}": value for name, value in row.get("probabilities", {}).items()}
    return flat


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -logits.astype(np.float64)))  # 1 / (1 + exp(-x)) without overflow


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits.astype(np.float64) - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


class Predictor:
    """An exported model ready to predict: ``model_dir/model.onnx`` run by onnxruntime, ``model_dir/deploy.json``.

    Images are read and preprocessed exactly as the bundle's ``inference.yaml`` does (see
    :mod:`medbundle.deploy.preprocess`), batched as float32 ``(N, C, H, W)`` in [0, 1], and the logits turned
    into probabilities with the stored activation; binary models are binarised at the stored threshold
    (``probability >= threshold``), multi-class models give the arg-max class.

    Example::

        predictor = Predictor("exports/rsna")
        rows = predictor.predict(["test_images/10008/1591370361.dcm", ...])
        breasts = predictor.aggregate(rows)  # one row per breast_id, as the Kaggle submission

    Args:
        model_dir: the export folder (``deploy.json`` and the ONNX file it names, default ``model.onnx``).
        batch_size: images per onnxruntime call.
        threads: onnxruntime intra-op threads; None lets onnxruntime choose.
        providers: onnxruntime execution providers; default ``["CPUExecutionProvider"]``.

    Raises:
        medbundle.deploy.DeploySpecError: ``deploy.json`` is missing or invalid.
        medbundle.deploy.PreprocessingError: its preprocessing cannot be reproduced.
        FileNotFoundError: the ONNX file is missing.
    """

    def __init__(
        self,
        model_dir: str | os.PathLike,
        batch_size: int = 8,
        threads: int | None = None,
        providers: Sequence[str] | None = None,
    ) -> None:
        import onnxruntime

        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}.")
        self.spec: DeploySpec = load_spec(model_dir)
        self.preprocessing: Preprocessing = build_preprocessing(self.spec.preprocessing)
        if not self.spec.onnx_file.is_file():
            raise FileNotFoundError(f"{self.spec.onnx_file} not found next to deploy.json; export the model again.")
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(
            str(self.spec.onnx_file), options, providers=list(providers or ["CPUExecutionProvider"])
        )
        self.batch_size = batch_size
        inputs = {node.name: node for node in self.session.get_inputs()}
        outputs = [node.name for node in self.session.get_outputs()]
        self.input_name = self.spec.input_name if self.spec.input_name in inputs else next(iter(inputs))
        self.output_name = self.spec.output_name if self.spec.output_name in outputs else outputs[0]
        shape = inputs[self.input_name].shape
        size = tuple(shape[2:]) if len(shape) == 4 else ()
        if all(isinstance(s, int) for s in size) and size and size != self.preprocessing.spatial_size:
            raise ValueError(
                f"{self.spec.onnx_file} takes {size[0]} x {size[1]} images, deploy.json preprocesses to "
                f"{self.preprocessing.spatial_size[0]} x {self.preprocessing.spatial_size[1]}; export the model again."
            )
        declared = shape[1] if len(shape) == 4 and isinstance(shape[1], int) else None
        self._repeat = 1
        if declared is not None and declared != self.preprocessing.channels:
            if self.preprocessing.channels != 1:
                raise ValueError(
                    f"{self.spec.onnx_file} takes {declared} channels, the preprocessing gives {self.preprocessing.channels}."
                )
            self._repeat = declared  # what TimmClassifier.forward does with a grey image and an RGB stem

    @property
    def group_key(self) -> str | None:
        """The datalist key images are aggregated by (``deploy.json`` ``aggregation.group_key``), or None."""
        return self.spec.group_key

    def preprocess(self, items: Iterable[Item]) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """The float32 batch ``(N, C, H, W)`` of `items` and their ids (see :func:`item_ids`)."""
        images, ids = [], []
        for item in items:
            name = item["image"] if isinstance(item, Mapping) else item
            image, meta = self.preprocessing(name)
            images.append(image)
            ids.append(item_ids(item, meta, self.group_key))
        shape = (0, self.preprocessing.channels, *self.preprocessing.spatial_size)
        return (np.stack(images) if images else np.zeros(shape, np.float32)), ids

    def run(self, batch: np.ndarray) -> np.ndarray:
        """The model's logits ``(N, K)`` for a preprocessed float32 batch ``(N, C, H, W)``."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if self._repeat > 1:
            batch = np.repeat(batch, self._repeat, axis=1)
        logits = self.session.run([self.output_name], {self.input_name: batch})[0]
        return np.asarray(logits).reshape(len(batch), -1)

    def predict(self, items: Iterable[Item]) -> list[dict[str, Any]]:
        """Predict every image of `items` (paths, or datalist items ``{"image": path, **ids}``), in order.

        Returns:
            One dict per image: its ids (:func:`item_ids`), then for a binary (sigmoid, one logit) model
            ``logit``, ``probability`` and ``decision`` (1 when ``probability >= threshold``, None without a
            stored threshold) with ``threshold``; for a softmax model ``probabilities`` (class name -> p),
            ``pred_index`` and ``pred_class``; for a sigmoid model of several logits ``probabilities``.
        """
        items = list(items)
        results = []
        for start in range(0, len(items), self.batch_size):
            batch, ids = self.preprocess(items[start : start + self.batch_size])
            results.extend(self._results(self.run(batch), ids))
        return results

    def _results(self, logits: np.ndarray, ids: list[dict[str, Any]]) -> list[dict[str, Any]]:
        names = self.spec.class_names or tuple(str(k) for k in range(logits.shape[1]))
        if self.spec.activation == "softmax":
            probabilities = _softmax(logits)
            return [
                {**fields, "probabilities": dict(zip(names, map(float, p))), "pred_index": int(p.argmax()),
                 "pred_class": names[int(p.argmax())]}
                for fields, p in zip(ids, probabilities)
            ]  # fmt: skip
        probabilities = _sigmoid(logits)
        if logits.shape[1] != 1:
            return [{**fields, "probabilities": dict(zip(names, map(float, p)))} for fields, p in zip(ids, probabilities)]
        threshold = self.spec.threshold
        return [
            {**fields, "logit": float(z), "probability": float(p), "threshold": threshold,
             "decision": None if threshold is None else int(p >= threshold)}
            for fields, z, p in zip(ids, logits[:, 0], probabilities[:, 0])
        ]  # fmt: skip

    def aggregate(self, predictions: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Per-group results of :meth:`predict` (e.g. per breast for rsna), with the stored key, method and threshold.

        Raises:
            ValueError: the model stores no aggregation, or a prediction lacks the group key.
        """
        if self.group_key is None:
            raise ValueError(f"{self.spec.onnx_file.parent}/deploy.json stores no aggregation: predictions are per image.")
        return aggregate(predictions, self.group_key, self.spec.how, self.spec.threshold)


def aggregate(
    predictions: Sequence[Mapping[str, Any]], group_key: str, how: str = "mean", threshold: float | None = None
) -> list[dict[str, Any]]:
    """One row per group of binary predictions, in order of first appearance, as the bundles' submission writer.

    A group's ``probability`` is the `how` (``"mean"`` or ``"max"``) of its images' probabilities, and its
    ``decision`` is ``probability >= threshold`` (None without a threshold). Multi-class predictions average
    (or max) their ``probabilities`` per class and take the arg-max ``pred_class``.

    Returns:
        Dicts ``{group_key: id, "n_images", "probability", "threshold", "decision"}`` (binary) or
        ``{group_key: id, "n_images", "probabilities", "pred_class"}`` (multi-class).

    Raises:
        ValueError: `how` is unknown or a prediction has no `group_key`.
    """
    if how not in ("mean", "max"):
        raise ValueError(f"how must be 'mean' or 'max', got {how!r}.")
    reduce = np.mean if how == "mean" else np.max
    groups: dict[Any, list[Mapping[str, Any]]] = {}
    for prediction in predictions:
        group = prediction.get(group_key)
        if group is None:
            raise ValueError(
                f"prediction for {prediction.get('image')} has no {group_key!r}; give datalist items with it "
                f"(e.g. {{'image': path, {group_key!r}: ...}})."
            )
        groups.setdefault(group, []).append(prediction)
    rows = []
    for group, members in groups.items():
        row: dict[str, Any] = {group_key: group, "n_images": len(members)}
        if "probabilities" in members[0]:
            names = list(members[0]["probabilities"])
            values = reduce(np.array([[m["probabilities"][n] for n in names] for m in members]), axis=0)
            row |= {"probabilities": dict(zip(names, map(float, values))), "pred_class": names[int(values.argmax())]}
        else:
            probability = float(reduce([m["probability"] for m in members]))
            decision = None if threshold is None else int(probability >= threshold)
            row |= {"probability": probability, "threshold": threshold, "decision": decision}
        rows.append(row)
    return rows
