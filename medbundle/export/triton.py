"""A Triton Inference Server model repository entry for an exported ONNX model.

Layout: ``<repository>/<name>/config.pbtxt`` and ``<repository>/<name>/1/model.onnx`` (version 1), served by
Triton's ONNX Runtime backend with dynamic batching. With ``max_batch_size > 0`` Triton adds the batch axis
itself, so ``dims`` list the per-image shape: the model's ``(-1, C, H, W)`` input is ``dims: [C, H, W]``.
Preprocessing stays outside Triton (see ``deploy.json``): the server receives preprocessed float32 images.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["triton_config", "write_triton_model"]

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def _tensor(name: str, dims: list[int]) -> str:
    return f'  {{\n    name: "{name}"\n    data_type: TYPE_FP32\n    dims: [ {", ".join(str(d) for d in dims)} ]\n  }}'


def triton_config(name: str, spec: Mapping[str, Any], max_batch_size: int) -> str:
    """The ``config.pbtxt`` text of model `name` for a ``deploy.json`` `spec`.

    Args:
        name: the model name; it must equal the model's folder name in the repository.
        spec: the ``deploy.json`` content (input/output names and shapes).
        max_batch_size: the largest batch Triton forms; dynamic batching groups requests up to it.

    Raises:
        ValueError: `name` has characters other than letters, digits, ``_``, ``.``, ``-``, or `max_batch_size` < 1.
    """
    if not _NAME.match(name):
        raise ValueError(f"Triton model name {name!r} may hold only letters, digits, '_', '.' and '-'.")
    if max_batch_size < 1:
        raise ValueError(f"max_batch_size must be at least 1 for dynamic batching, got {max_batch_size}.")
    inputs, outputs = spec["input"], spec["output"]
    return (
        f'name: "{name}"\n'
        'platform: "onnxruntime_onnx"\n'
        f"max_batch_size: {max_batch_size}\n"
        f"input [\n{_tensor(inputs['name'], inputs['shape'][1:])}\n]\n"
        f"output [\n{_tensor(outputs['name'], outputs['shape'][1:])}\n]\n"
        "dynamic_batching { }\n"
    )


def write_triton_model(
    repository: str | Path, name: str, onnx_file: str | Path, spec: Mapping[str, Any], max_batch_size: int
) -> Path:
    """Write ``<repository>/<name>/{config.pbtxt, 1/model.onnx}`` and return the model folder.

    Args:
        repository: the model repository folder (created).
        name: the model name.
        onnx_file: the exported ONNX model, copied.
        spec: its ``deploy.json`` content.
        max_batch_size: see :func:`triton_config`.
    """
    model = Path(repository) / name
    config = triton_config(name, spec, max_batch_size)
    (model / "1").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(onnx_file, model / "1" / "model.onnx")
    (model / "config.pbtxt").write_text(config)
    return model
