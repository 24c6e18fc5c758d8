"""Package a trained bundle as a self-contained MONAI bundle (folder and ``.zip``) plus a Triton model repository.

Layout of ``<out>/<name>/`` (the MONAI model-zoo layout)::

    configs/inference.yaml   the bundle's inference config, reading the packaged checkpoint
    configs/metadata.json    its metadata, network_data_format set to the checkpoint's input and output
    configs/logging.conf
    models/model.pt          the checkpoint's weights, stored config and thresholds (on the CPU)
    models/model.ts, models/model.onnx, models/deploy.json, models/parity.json   (see export_bundle)
    docs/README.md           what was packaged, how to run it, parity; then the bundle's README
    LICENSE

and ``<out>/<name>.zip`` of it, and ``<out>/triton/<name>/`` (``config.pbtxt``, ``1/model.onnx``).

The packaged ``inference.yaml`` differs from the bundle's in two keys: ``bundle_root: .`` (the package, as in
zoo bundles) and ``ckpt_dir`` pointing at ``models/`` rather than ``models/fold<k>/``. Every other path derives
from ``bundle_root``, so from any working directory::

    python -m monai.bundle run --config_file <pkg>/configs/inference.yaml --bundle_root <pkg> --dataset_dir DATA
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from medbundle.export.bundle_network import BundleNetwork, load_bundle_network
from medbundle.export.exporter import export_network, exported_metadata
from medbundle.export.triton import write_triton_model

__all__ = ["package_bundle", "packaged_inference_config"]

#: top-level keys of inference.yaml replaced in the package
_PACKAGE_KEYS = {"bundle_root": ".", "ckpt_dir": "\"$@bundle_root + '/models'\""}


def packaged_inference_config(text: str, header: str = "") -> str:
    """The bundle's ``inference.yaml`` text with ``bundle_root`` and ``ckpt_dir`` for the package layout.

    Lines are replaced in place, so the bundle's comments stay.

    Raises:
        ValueError: a key is not defined exactly once at the top level.
    """
    for key, value in _PACKAGE_KEYS.items():
        text, count = re.subn(rf"^{key}:.*$", f"{key}: {value}", text, flags=re.MULTILINE)
        if count != 1:
            raise ValueError(f"inference.yaml defines top-level key {key!r} {count} times; expected once.")
    return header + text


def _clear(folder: Path) -> None:
    """Remove a previous package at `folder`; refuse to remove anything else (e.g. the bundle itself)."""
    if not folder.exists():
        return
    configs = folder / "configs"
    is_package = (configs / "inference.yaml").is_file() and not (configs / "train.yaml").exists()
    if any(folder.iterdir()) and not is_package:
        raise FileExistsError(f"{folder} exists and is not a package: choose another --out or --name.")
    shutil.rmtree(folder)


def _parity_table(parity: dict[str, Any]) -> str:
    rows = [
        f"| {name} | {kind} | {size} | {value:.2e} |"
        for name, kinds in parity["max_abs_diff"].items()
        for kind, sizes in kinds.items()
        for size, value in sizes.items()
    ]
    return "\n".join(["| format | input | batch | max abs logit difference |", "|---|---|---|---|", *rows])


def _readme(loaded: BundleNetwork, name: str, result: dict[str, Any]) -> str:
    spec, config = result["deploy"], loaded.entries["config"]
    key, aggregation = spec["decision_threshold_key"], spec["aggregation"]
    decision = f"probability >= {spec['thresholds'][key]:.4g} ({key})" if key else "the arg-max class"
    if aggregation:
        decision += f" of the image probabilities {aggregation['how']}-aggregated per `{aggregation['group_key']}`"
    lines = [
        f"# {name}: packaged {spec['task']} model",
        "",
        (
            f"Packaged by `medbundle package` (medbundle {spec['source']['medbundle_version']}) from bundle "
            f"`{loaded.bundle.name}` and checkpoint `{loaded.checkpoint.name}` (sha256 `{loaded.sha256[:16]}...`)."
        ),
        "",
        (
            f"- network: backbone `{config.get('backbone')}`, head `{config.get('head')}`; input (N, "
            f"{', '.join(str(s) for s in spec['input']['shape'][1:])}) float32 in [0, 1]; "
            f"{spec['output']['shape'][1]} logits, {spec['output']['activation']}"
        ),
        f"- decision: {decision}",
        "",
        "## Run",
        "",
        "```bash",
        f"python -m monai.bundle run --config_file {name}/configs/inference.yaml --bundle_root {name} --dataset_dir DATA",
        "```",
        "",
        (
            "`models/model.onnx` with `models/deploy.json` (input/output names, preprocessing steps, thresholds) "
            "runs without torch; `models/model.ts` is TorchScript with the metadata and inference config embedded. "
            f"`../triton/{name}` is a Triton model repository entry (ONNX Runtime backend, dynamic batching)."
        ),
        "",
        "## Parity with the eager network",
        "",
        _parity_table(result["parity"]),
        "",
        f"Tolerance {result['parity']['tolerance']:g} on logits.",
        "",
    ]
    original = loaded.bundle / "docs" / "README.md"
    if original.is_file():
        lines += ["---", "", original.read_text()]
    return "\n".join(lines)


def package_bundle(
    bundle: str | Path,
    checkpoint: str | Path,
    out: str | Path,
    name: str | None = None,
    parity_images: Sequence[str | Path] | None = None,
) -> Path:
    """Package `bundle` with `checkpoint` into ``<out>/<name>/``, ``<out>/<name>.zip`` and ``<out>/triton/<name>/``.

    Args:
        bundle: the bundle folder, e.g. ``bundles/rsna``.
        checkpoint: a best model written by the bundle's training.
        out: output folder (created); a previous package of the same name is replaced.
        name: package and Triton model name; default the bundle folder's name.
        parity_images: images to check parity on besides random ones (see :func:`export_bundle`).

    Returns:
        The package folder.

    Raises:
        FileExistsError: ``<out>/<name>`` exists and is not a package.
        ValueError, ParityError: as :func:`~medbundle.export.export_bundle`.
    """
    loaded = load_bundle_network(bundle, checkpoint)
    out = Path(out)
    name = name or loaded.bundle.resolve().name
    root = out / name
    _clear(root)
    models, configs, docs = root / "models", root / "configs", root / "docs"
    result = export_network(loaded, ("ts", "onnx"), models, parity_images)
    torch.save(loaded.entries, models / "model.pt")

    configs.mkdir()
    header = (
        f"# Packaged by medbundle from {loaded.bundle.name}/configs/inference.yaml: bundle_root is this package,\n"
        "# the checkpoint is models/model.pt. Run from anywhere with --bundle_root <package> --dataset_dir DATA.\n"
    )
    (configs / "inference.yaml").write_text(packaged_inference_config(loaded.inference_config.read_text(), header))
    (configs / "metadata.json").write_text(json.dumps(exported_metadata(loaded, result["deploy"]), indent=4) + "\n")
    shutil.copyfile(loaded.bundle / "configs" / "logging.conf", configs / "logging.conf")
    if (loaded.bundle / "LICENSE").is_file():
        shutil.copyfile(loaded.bundle / "LICENSE", root / "LICENSE")
    docs.mkdir()
    (docs / "README.md").write_text(_readme(loaded, name, result))

    shutil.make_archive(str(out / name), "zip", root_dir=out, base_dir=name)
    triton = out / "triton"
    shutil.rmtree(triton / name, ignore_errors=True)
    batch_size = int(loaded.parser.get_parsed_content("batch_size"))
    write_triton_model(triton, name, models / "model.onnx", result["deploy"], batch_size)
    return root
