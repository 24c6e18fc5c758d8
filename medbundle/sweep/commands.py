"""The ``python -m monai.bundle`` command lines a sweep runs: training (one process or torchrun) and evaluation.

Every run is the bundle's own command with ``--bundle_root`` set to the run's folder and ``--config_dir`` to the
bundle's configs (where train.yaml finds inference.yaml's preprocessing, from any working directory), so a line
of ``command.txt`` can be pasted into a shell to repeat the run by hand.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from medbundle.sweep.layout import RunDir

__all__ = [
    "RESERVED_KEYS",
    "bundle_n_folds",
    "evaluation_command",
    "format_override",
    "model_key",
    "override_args",
    "shared_cache",
    "shell_line",
    "training_command",
]

#: Keys the sweep sets for every run itself; overriding them would break the layout or resume semantics.
RESERVED_KEYS = (
    "fold", "bundle_root", "resume", "model", "backbone", "ckpt_dir", "output_dir", "config_file", "config_dir",
    "run_name",
)  # fmt: skip
# evaluation must score the whole validation fold, whatever training watched
_NOT_EVALUATION_KEYS = ("val_data_fraction",)


def _train_config(bundle: str | Path) -> dict[str, Any]:
    path = Path(bundle) / "configs" / "train.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: pass --bundle a bundle folder such as bundles/isic.")
    return yaml.safe_load(path.read_text()) or {}


def model_key(bundle: str | Path) -> str:
    """The key a sweep's model names set: ``model`` where train.yaml selects presets by it, else ``backbone``."""
    return "model" if "model" in _train_config(bundle) else "backbone"


def bundle_n_folds(bundle: str | Path, overrides: Mapping[str, Any]) -> int:
    """The number of folds the runs split into: the ``n_folds`` override or train.yaml's."""
    value = overrides.get("n_folds", _train_config(bundle).get("n_folds"))
    if not isinstance(value, int):
        raise TypeError(f"{Path(bundle) / 'configs' / 'train.yaml'} has no integer n_folds; pass --n_folds K.")
    return value


def shared_cache(bundle: str | Path, sweep: str | Path, overrides: Mapping[str, Any]) -> dict[str, str]:
    """``{"cache_dir": "<sweep>/cache"}`` where the bundle caches below ``bundle_root`` and no cache_dir is given.

    Each run has its own ``bundle_root``, so the bundle's default would decode and cache the whole data set once
    per run; the runs of a sweep share one cache instead (its files are named by a fingerprint of the
    preprocessing and written atomically, so models of other image sizes and concurrent runs can share it).
    """
    default = _train_config(bundle).get("cache_dir")
    if "cache_dir" in overrides or not (isinstance(default, str) and "@bundle_root" in default):
        return {}
    return {"cache_dir": str(Path(sweep) / "cache")}


def format_override(value: Any) -> str:
    """A parsed command-line value back as the text ``monai.bundle`` (python-fire) parses into it again."""
    return value if isinstance(value, str) else repr(value)


def override_args(overrides: Mapping[str, Any]) -> list[str]:
    """``--key value`` arguments, in the order given."""
    return [item for key, value in overrides.items() for item in (f"--{key}", format_override(value))]


def _config_list(bundle: Path, names: Sequence[str]) -> str:
    """``["a.yaml","b.yaml"]``: a list python-fire parses, and that a shell quotes readably."""
    return json.dumps([str(bundle / "configs" / name) for name in names], separators=(",", ":"))


def training_command(
    bundle: str | Path,
    run: RunDir,
    key: str,
    overrides: Mapping[str, Any],
    resume: bool = False,
    nproc: int = 1,
    python: str = sys.executable,
) -> list[str]:
    """The training command of one run.

    Args:
        bundle: the bundle folder.
        run: the run; its folder becomes ``bundle_root``, its model the value of `key`, its fold ``fold``.
        key: ``model`` or ``backbone`` (:func:`model_key`). A model name that is not a preset of
            :data:`medbundle.networks.MODEL_PRESETS` (e.g. ``tf_efficientnet_lite0``) is passed as ``--backbone``: the
            bundle then trains it at its own input size with batch 32, as ``--backbone`` alone does.
        overrides: further bundle overrides, e.g. ``{"epochs": 3, "image_size": [64, 64]}``.
        resume: continue from the newest last checkpoint (``--resume True``).
        nproc: processes per run; above 1, ``torch.distributed.run --standalone`` with the bundle's
            ``multi_gpu_train.yaml`` overlay.
        python: the interpreter.
    """
    bundle = Path(bundle)
    if key == "model":
        from medbundle.networks.presets import MODEL_PRESETS

        key = "model" if run.model in MODEL_PRESETS else "backbone"  # a timm name without a preset: its own defaults
    if nproc > 1:
        launcher = [python, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", "-m"]
        configs = _config_list(bundle, ("train.yaml", "multi_gpu_train.yaml"))
    else:
        launcher = [python, "-m"]
        configs = str(bundle / "configs" / "train.yaml")
    return [
        *launcher, "monai.bundle", "run", "training", "--config_file", configs,
        f"--{key}", run.model, "--fold", str(run.fold), "--bundle_root", str(run.folder),
        "--config_dir", str(bundle / "configs"), *override_args(overrides), *(["--resume", "True"] if resume else []),
    ]  # fmt: skip


def evaluation_command(
    bundle: str | Path, run: RunDir, overrides: Mapping[str, Any], python: str = sys.executable
) -> list[str]:
    """The command scoring a run's best checkpoint on its validation fold with the bundle's ``evaluate.yaml``.

    The network, ``n_folds`` and ``seed`` come from ``model.pt``; `overrides` carries what the checkpoint does
    not store (``dataset_dir``, ``num_workers``, ...). ``val_data_fraction`` is dropped: the out-of-fold table
    needs every validation item.
    """
    kept = {k: v for k, v in overrides.items() if k not in _NOT_EVALUATION_KEYS}
    return [
        python, "-m", "monai.bundle", "run", "evaluating",
        "--config_file", _config_list(Path(bundle), ("train.yaml", "evaluate.yaml")),
        "--fold", str(run.fold), "--bundle_root", str(run.folder), "--config_dir", str(Path(bundle) / "configs"),
        *override_args(kept),
    ]  # fmt: skip


def shell_line(command: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """`command` quoted for a POSIX shell, prefixed by ``NAME=value`` for each of `env`."""
    return " ".join([*(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items()), shlex.join(command)])
