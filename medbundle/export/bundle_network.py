"""The network of a bundle's ``inference.yaml`` with a checkpoint's weights, built exactly as inference builds it.

Exporting must not rebuild the network by other means than the bundle: ``network_def`` in ``inference.yaml``
reads backbone, head, channels, classes and normalisation from the checkpoint's stored config, so parsing that
config with ``ckpt_path`` set to the checkpoint gives the network that was trained. The checkpoint is refused
when it belongs to another task: its weights might load (e.g. an isic network into the rsna bundle) while the
preprocessing and thresholds exported beside it would be the wrong ones.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from monai.bundle import ConfigParser
from torch import nn

from medbundle.tasks import get_task

__all__ = ["BundleNetwork", "bundle_task", "load_bundle_network"]

logger = logging.getLogger(__name__)

#: checkpoint entries kept in an exported or packaged checkpoint (training adds nothing else to the best model)
CHECKPOINT_ENTRIES = ("model", "config", "thresholds")


def bundle_task(bundle: str | Path) -> str:
    """The task a bundle's training stores in its checkpoints (``stored_config#task`` of ``configs/train.yaml``).

    The task must be registered (:mod:`medbundle.tasks`): the export's ``deploy.json`` names it, and the deploy
    runtime reads only registered tasks.

    Raises:
        FileNotFoundError: the bundle has no ``configs/train.yaml``.
        KeyError: ``train.yaml`` stores no task.
        ValueError: the task is not registered; the message lists the registered ones and how to add one.
    """
    train = Path(bundle) / "configs" / "train.yaml"
    if not train.is_file():
        raise FileNotFoundError(f"{train} not found: pass the bundle folder (e.g. bundles/rsna), not a package or a file.")
    parser = ConfigParser()
    parser.read_config(str(train))
    if "stored_config#task" not in parser:
        raise KeyError(f"{train} has no stored_config#task: add `task: <name>` to its stored_config.")
    return get_task(str(parser["stored_config#task"])).name


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class BundleNetwork:
    """A bundle's inference network in eval mode on the CPU, with the checkpoint it was loaded from.

    Attributes:
        bundle: the bundle folder.
        checkpoint: the checkpoint file.
        parser: ``configs/inference.yaml`` (and ``metadata.json`` as ``_meta_``) with ``bundle_root`` and
            ``ckpt_path`` set, for reading any further inference setting.
        network: ``network_def`` with the checkpoint's weights.
        entries: the checkpoint's :data:`CHECKPOINT_ENTRIES` on the CPU (``thresholds`` may be missing).
        task: the task both the bundle and the checkpoint belong to.
        sha256: SHA-256 of the checkpoint file.
    """

    bundle: Path
    checkpoint: Path
    parser: ConfigParser
    network: nn.Module
    entries: dict[str, Any]
    task: str
    sha256: str

    @property
    def inference_config(self) -> Path:
        return self.bundle / "configs" / "inference.yaml"


def load_bundle_network(bundle: str | Path, checkpoint: str | Path) -> BundleNetwork:
    """Build ``network_def`` of ``<bundle>/configs/inference.yaml`` for `checkpoint` and load its weights.

    The checkpoint is read with ``weights_only=True`` onto the CPU (a GPU checkpoint exports on a CPU machine).

    Args:
        bundle: the bundle folder, e.g. ``bundles/rsna``.
        checkpoint: a best-model ``model.pt`` written by the bundle's training.

    Raises:
        FileNotFoundError: the bundle's inference config or the checkpoint does not exist.
        KeyError: the checkpoint lacks the ``model`` or ``config`` entry.
        ValueError: the checkpoint was trained for another task, or its weights do not fit the network.
    """
    bundle, checkpoint = Path(bundle), Path(checkpoint)
    config = bundle / "configs" / "inference.yaml"
    if not config.is_file():
        raise FileNotFoundError(f"{config} not found: pass the bundle folder, e.g. --bundle bundles/rsna.")
    if not checkpoint.is_file():
        raise FileNotFoundError(f"checkpoint {checkpoint} not found: train the bundle first or pass --checkpoint.")
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    missing = [key for key in ("model", "config") if key not in state]
    if missing:
        raise KeyError(
            f"checkpoint {checkpoint} has no {missing} entry (it has {sorted(state)}): export needs the best model "
            "that the bundle's training writes (models/fold<k>/model.pt), which stores the network settings."
        )
    task = bundle_task(bundle)
    stored_task = state["config"].get("task")
    if stored_task is None:
        logger.warning("checkpoint %s stores no task; assuming it is a %s checkpoint", checkpoint, task)
    elif stored_task != task:
        raise ValueError(
            f"checkpoint {checkpoint} was trained for task {stored_task!r}, but bundle {bundle} is task {task!r}: "
            f"export it with the {stored_task} bundle (e.g. --bundle bundles/{get_task(stored_task).bundle})."
        )
    parser = ConfigParser()
    parser.read_config(str(config))
    meta = bundle / "configs" / "metadata.json"
    if meta.is_file():
        parser.read_meta(str(meta))
    # on the CPU: parsing handlers moves @network to @device, which would take the eager network off the CPU
    parser.update({"bundle_root": str(bundle), "ckpt_path": str(checkpoint), "device": "$torch.device('cpu')"})
    network = parser.get_parsed_content("network_def")
    try:
        network.load_state_dict(state["model"])
    except RuntimeError as error:
        raise ValueError(
            f"the weights of {checkpoint} do not fit the network {bundle}/configs/inference.yaml builds from the "
            f"checkpoint's stored config {state['config']}: {error}"
        ) from error
    entries = {key: state[key] for key in CHECKPOINT_ENTRIES if key in state}
    return BundleNetwork(bundle, checkpoint, parser, network.eval(), entries, task, _file_sha256(checkpoint))
