"""What makes a task a task, declared once as data: :class:`TaskSpec` and the facts each tool reads of it.

A task is a data layout with its bundle, metrics and tools around it (rsna, chest_xray, isic). Every command
that serves several tasks (``medbundle demo``, ``validate``, ``download``, the ensemble, sweeps, export,
deploy, the benchmarks) reads the facts it needs from the task's spec instead of keeping its own table, the
way timm declares a model's pretrained config beside the model. One module per task
(:mod:`medbundle.tasks.rsna`, ...) holds its spec; :mod:`medbundle.tasks.registry` finds them.

Functions are named, not imported: a reference is ``"module:attribute"`` and is imported only when a tool
uses it (:func:`resolve`), so reading the registry imports neither torch nor MONAI (the deploy runtime
reads it too).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["BenchmarkFacts", "DemoFacts", "DownloadFacts", "SweepFacts", "TaskSpec", "resolve"]


def resolve(reference: str | Any) -> Any:
    """The object a ``"package.module:attribute"`` reference names; anything else is returned as it is.

    Raises:
        ValueError: the reference is malformed, or its module or attribute does not exist; the message names it.
    """
    if not isinstance(reference, str):
        return reference
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"task reference {reference!r} is not 'package.module:attribute'; fix it in the task's spec.")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"task reference {reference!r}: cannot import {module_name} ({exc}); fix the task's spec.") from exc
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ValueError(f"task reference {reference!r}: {module_name} has no {attribute!r}; fix the task's spec.") from None


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class DemoFacts:
    """The task's synthetic data, written in the layout real users have.

    Args:
        writer: ``(out, seed=..., **options) -> dict`` writing the demo data set (``medbundle demo_data``).
        options: the writer's options for ``medbundle demo``: enough items for readable metrics in minutes.
        marker: a file or folder, relative to the demo folder, that exists once the demo data are written.
        sized_set: ``(folder, n_images, source_size) -> str`` writing at least `n_images` labelled images of
            ``source_size`` (the benchmarks' sets; see :class:`BenchmarkFacts`); returns the ``dataset_dir``.
    """

    writer: str
    options: Mapping[str, Any] = field(default_factory=dict)
    marker: str = "train"
    sized_set: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", _frozen(self.options))


@dataclass(frozen=True)
class DownloadFacts:
    """Where ``medbundle download`` fetches the task's data from (Kaggle, through kagglehub).

    Args:
        handle: the Kaggle data set (``owner/name``) or competition name.
        competition: a competition (its rules must be accepted on kaggle.com) rather than a data set.
        files: the competition files the bundle reads; a data set is downloaded whole and arranged into
            ``train`` / ``val`` / ``test`` class folders.
    """

    handle: str
    competition: bool = False
    files: tuple[str, ...] = ()


@dataclass(frozen=True)
class SweepFacts:
    """How a sweep scores out-of-fold predictions (:mod:`medbundle.sweep.task_metrics`).

    Args:
        metrics: ``(predictions frame) -> {name: value}``, with ``n`` its rows.
        decide: ``(predictions frame) -> Decision``: the threshold chosen out of fold; None for a task without one.
    """

    metrics: str
    decide: str | None = None


@dataclass(frozen=True)
class BenchmarkFacts:
    """What the benchmarks need to build the task's synthetic sets and its plain reference.

    Args:
        source_size: the real data's source images: ``(rows, columns)`` when ``fixed_shape``, else the
            (smallest, largest) side.
        fixed_shape: every source image has ``source_size`` (mammograms), rather than sides in a range.
        train_share: the share of a sized set that fold 0 trains on (so a training benchmark of n images
            writes ``n / train_share``).
        inference: the plain script's steps, a :class:`medbundle.benchmarks.inference.Task`.
        loader_overrides: config overrides that make an epoch read every image (isic subsamples negatives).
        train_every_layer: overrides that train every layer from the first epoch (chest_xray's stage 1 off).
    """

    source_size: tuple[int, int]
    fixed_shape: bool = False
    train_share: float = 1.0
    inference: str | None = None
    loader_overrides: Mapping[str, Any] = field(default_factory=dict)
    train_every_layer: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "loader_overrides", _frozen(self.loader_overrides))
        object.__setattr__(self, "train_every_layer", _frozen(self.train_every_layer))

    def source_label(self) -> str:
        """``3000x2400`` for a fixed shape, ``100-200 px`` for a range of sides."""
        low, high = self.source_size
        return f"{low}x{high}" if self.fixed_shape else f"{low}-{high} px"


@dataclass(frozen=True)
class TaskSpec:
    """One task, as every tool sees it.

    Args:
        name: the task, as stored in every checkpoint's config (``task``) and typed on command lines.
        title: one line for listings.
        bundle: the bundle folder's name under ``bundles/``.
        demo: its synthetic data.
        dataset_facts: ``(dataset_dir, **options) -> DatasetFacts``: the data set check's adapter
            (:mod:`medbundle.datacheck`).
        sweep: how sweeps score it.
        ensemble: the :class:`~medbundle.ensemble.tasks.EnsembleTask` fields besides ``name``; a
            callable field may be a reference.
        download: where its public data come from; None when there is nothing to download.
        benchmark: what the benchmarks need; None to leave the task out of them.
    """

    name: str
    title: str
    bundle: str
    demo: DemoFacts
    dataset_facts: str
    sweep: SweepFacts
    ensemble: Mapping[str, Any]
    download: DownloadFacts | None = None
    benchmark: BenchmarkFacts | None = None

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"task name {self.name!r} must be a Python identifier (letters, digits, '_').")
        object.__setattr__(self, "ensemble", _frozen(self.ensemble))
