"""Export a bundle's trained network to TorchScript and ONNX, with ``deploy.json`` and a parity check.

Both formats go through MONAI's bundle exporters, so the files are what ``python -m monai.bundle ckpt_export``
and ``onnx_export`` write for the bundle's ``inference.yaml`` (``network_def``, ``ckpt_path`` set to the
checkpoint):

- TorchScript by ``ckpt_export`` with ``use_trace=True`` (timm models rarely script), traced at ``(1, C, H, W)``;
  ``metadata.json`` (its ``network_data_format`` set to the checkpoint's input and output) and the inference
  config are embedded as extra files.
- ONNX by ``onnx_export`` (torch's dynamo exporter under torch >= 2.9) with the input named ``image``, the
  output ``logits`` and a dynamic batch axis. It is traced at batch 2: ``torch.export`` specialises a size-1
  dimension, so a batch-1 example could fix the batch size.

Then every exported file is compared with the eager network (:mod:`medbundle.export.parity`); only when they
agree is ``deploy.json`` written, so a directory with a ``deploy.json`` holds a verified export.
"""

from __future__ import annotations

import copy
import json
import logging
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from monai.bundle import ckpt_export, onnx_export

from medbundle.export.bundle_network import BundleNetwork, load_bundle_network
from medbundle.export.deploy_spec import (
    DEPLOY_FILE,
    INPUT_NAME,
    OUTPUT_NAME,
    deploy_spec,
)
from medbundle.export.parity import (
    BATCH_SIZES,
    DEFAULT_TOLERANCE,
    PARITY_FILE,
    check_parity,
    image_batch,
    runners,
)

__all__ = ["FORMATS", "export_bundle", "export_network", "exported_metadata"]

logger = logging.getLogger(__name__)

#: export format -> file name in the output folder
FORMATS = {"ts": "model.ts", "onnx": "model.onnx"}


def exported_metadata(loaded: BundleNetwork, spec: dict[str, Any]) -> dict[str, Any]:
    """The bundle's ``metadata.json`` with ``network_data_format`` set to the checkpoint's input and output.

    The bundle's metadata describes its default network (e.g. 1024 x 512 images); an export of a checkpoint
    trained at another size must describe that one, for ``verify_net_in_out`` and other MONAI tools.
    """
    meta = copy.deepcopy(loaded.parser.get("_meta_", {}))
    data_format = meta.get("network_data_format", {})
    image = data_format.get("inputs", {}).get(INPUT_NAME)
    if image is not None:
        image["num_channels"] = spec["input"]["shape"][1]
        image["spatial_shape"] = spec["input"]["shape"][2:]
    for output in data_format.get("outputs", {}).values():
        output["num_channels"] = spec["output"]["shape"][1]
    return meta


def _check_formats(formats: Sequence[str] | str) -> tuple[str, ...]:
    formats = (formats,) if isinstance(formats, str) else tuple(formats)
    unknown = [name for name in formats if name not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"unknown export format(s) {unknown or formats}; choose from {sorted(FORMATS)}.")
    return formats


def _export_files(loaded: BundleNetwork, formats: tuple[str, ...], out: Path, meta: dict[str, Any], shape: list[int]) -> None:
    """Write the model files of `formats` into `out` with MONAI's exporters."""
    with tempfile.TemporaryDirectory() as tmp:
        # the weights alone, on the CPU: MONAI's exporters load them without map_location (GPU checkpoints)
        weights, meta_file = Path(tmp) / "weights.pt", Path(tmp) / "metadata.json"
        torch.save({"model": loaded.network.state_dict()}, weights)
        meta_file.write_text(json.dumps(meta))
        common: dict[str, Any] = {
            "net_id": "network_def",
            "ckpt_file": str(weights),
            "meta_file": str(meta_file),
            "config_file": str(loaded.inference_config),
            "key_in_ckpt": "model",
            "use_trace": True,
            # overrides of the parsed inference config, as in inference itself
            "bundle_root": str(loaded.bundle),
            "ckpt_path": str(loaded.checkpoint),
            "device": "$torch.device('cpu')",
        }
        with warnings.catch_warnings():
            # the only traced Python branch is TimmClassifier's grey-to-RGB repeat, fixed by the input channels
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module="medbundle.networks")
            # dynamic_axes works with the TorchScript-based and the dynamo exporter; the latter converts it and warns
            warnings.filterwarnings("ignore", message="# 'dynamic_axes' is not recommended", category=UserWarning)
            if "ts" in formats:
                ckpt_export(filepath=str(out / FORMATS["ts"]), input_shape=[1, *shape], **common)
            if "onnx" in formats:
                onnx_export(
                    filepath=str(out / FORMATS["onnx"]),
                    input_shape=[2, *shape],
                    converter_kwargs={
                        "input_names": [INPUT_NAME],
                        "output_names": [OUTPUT_NAME],
                        "dynamic_axes": {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                        "verbose": False,
                    },
                    **common,
                )


def export_bundle(
    bundle: str | Path,
    checkpoint: str | Path,
    formats: Sequence[str] | str = ("ts", "onnx"),
    out: str | Path = "export",
    parity_images: Sequence[str | Path] | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> dict[str, Any]:
    """Export a bundle's checkpoint to TorchScript and/or ONNX in `out`, check parity, write ``deploy.json``.

    Files in `out`: ``model.ts``, ``model.onnx`` (as `formats` asks), ``parity.json`` (see
    :func:`~medbundle.export.parity.check_parity`) and ``deploy.json`` (see :mod:`medbundle.export.deploy_spec`).

    Args:
        bundle: the bundle folder, e.g. ``bundles/rsna``.
        checkpoint: a best model written by the bundle's training (``models/fold<k>/model.pt``).
        formats: ``"ts"`` and/or ``"onnx"``.
        out: output folder (created).
        parity_images: images in the task's format (DICOM for rsna; PNG/JPEG/DICOM for chest_xray; PNG/JPEG or
            ``"<file>.hdf5::<isic_id>"`` for isic) to compare on after the bundle's preprocessing, besides
            random images.
        tolerance: largest allowed absolute logit difference between an exported model and the eager network.

    Returns:
        ``{"out", "files": {format or "deploy"/"parity": path}, "deploy": deploy.json content, "parity": report}``.

    Raises:
        ValueError: the checkpoint belongs to another task or does not fit the bundle; an unknown format.
        ParityError: an exported model disagrees with the eager network (``parity.json`` is still written).
    """
    formats = _check_formats(formats)
    return export_network(load_bundle_network(bundle, checkpoint), formats, out, parity_images, tolerance)


def export_network(
    loaded: BundleNetwork,
    formats: Sequence[str] | str = ("ts", "onnx"),
    out: str | Path = "export",
    parity_images: Sequence[str | Path] | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> dict[str, Any]:
    """:func:`export_bundle` for a network already loaded by :func:`~medbundle.export.load_bundle_network`."""
    formats = _check_formats(formats)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / DEPLOY_FILE).unlink(missing_ok=True)  # a stale sidecar must not vouch for the new files
    spec = deploy_spec(loaded, {name: FORMATS[name] for name in formats})
    shape = spec["input"]["shape"][1:]
    _export_files(loaded, formats, out, exported_metadata(loaded, spec), shape)

    generator = torch.Generator().manual_seed(0)
    batches = {"random": {size: torch.rand(size, *shape, generator=generator) for size in BATCH_SIZES}}
    if parity_images:
        preprocessing = loaded.parser.get_parsed_content("preprocessing")
        batches["images"] = {size: image_batch(preprocessing, list(parity_images), size) for size in BATCH_SIZES}
    files = {name: out / FORMATS[name] for name in formats}
    parity = check_parity(loaded.network, runners(files), batches, tolerance, out=out)
    (out / DEPLOY_FILE).write_text(json.dumps(spec, indent=2) + "\n")
    logger.info("exported %s to %s; largest logit difference %s", loaded.checkpoint, out, parity["max_abs_diff"])
    return {
        "out": str(out),
        "files": {**{name: str(path) for name, path in files.items()}, "deploy": str(out / DEPLOY_FILE),
                  "parity": str(out / PARITY_FILE)},
        "deploy": spec,
        "parity": parity,
    }
