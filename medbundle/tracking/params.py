"""What a tracked run records besides its metrics: the bundle's top-level keys as parameters, and its tags.

MONAI's ``MLFlowHandler`` logs two parameters (``max_epochs``, ``epoch_length``). A team comparing runs needs
every key the run was configured with. The config as run (``--tracking`` saves it, overrides applied, as
``save_execute_config``) holds each top-level key; a literal one is logged as written, an expression
(``$@preset['batch_size']``) by the value the bundle resolved, which it passes in `resolved`. Objects
(the network, the data loaders, handler lists) are not parameters and are left out.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["git_commit", "run_params", "run_tags"]

_MAX_VALUE = 6000  # MLflow's limit on a parameter value
_REFERENCE = ("$", "@", "%")


def _is_literal(value: Any) -> bool:
    if isinstance(value, str):
        return not value.startswith(_REFERENCE)
    if isinstance(value, (list, tuple)):
        return all(not isinstance(v, (dict, list, tuple)) and _is_literal(v) for v in value)
    return value is None or isinstance(value, (bool, int, float))


def _key(name: str) -> str:
    """A config id as a parameter name (MLflow allows letters, digits, ``_ - . / `` and space)."""
    return re.sub(r"[^0-9A-Za-z_\-. /]", "/", str(name))


def _text(value: Any) -> str:
    if isinstance(value, Path):
        value = str(value)
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:_MAX_VALUE]


def run_params(
    config_file: str | os.PathLike | bool | None,
    resolved: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """Every scalar top-level key of the config as run, with the resolved value of the derived ones.

    Args:
        config_file: the JSON the ``--tracking`` patch saved (MONAI's ``save_execute_config``); a bool or a
            missing file (no tracking patch ran) contributes nothing.
        resolved: ``{key: value}`` of keys whose configured value is an expression, as the bundle resolved them.

    Returns:
        ``{name: text}``; values cut to MLflow's 6,000 characters.
    """
    params: dict[str, str] = {}
    if isinstance(config_file, (str, os.PathLike)) and Path(config_file).is_file():
        config = json.loads(Path(config_file).read_text())
        params = {_key(k): _text(v) for k, v in config.items() if _is_literal(v) and k not in ("_meta_", "imports")}
    for key, value in (resolved or {}).items():
        params[_key(key)] = _text(value)
    return params


def git_commit(folder: str | os.PathLike = ".") -> str | None:
    """The commit checked out in `folder`, or None outside a git work tree (or without git)."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def run_tags(tags: Mapping[str, Any], stage: str, parent_run_id: str | None = None) -> dict[str, str]:
    """The run's tags: the bundle's (task, fold, backbone), its stage, the git commit and a sweep's parent run.

    ``mlflow.source.git.commit`` and ``mlflow.parentRunId`` are MLflow's own names, so its UI shows the commit
    and nests a sweep's runs under the sweep.
    """
    out = {str(k): _text(v) for k, v in tags.items() if v is not None}
    out["stage"] = stage
    commit = git_commit()
    if commit:
        out["mlflow.source.git.commit"] = commit
    if parent_run_id:
        out["mlflow.parentRunId"] = parent_run_id
    return out
