"""Catch mistyped command-line overrides of a bundle before they are silently ignored.

``python -m monai.bundle run training --config_file train.yaml --epoch 3`` does not fail: MONAI adds a new
top-level key ``epoch`` that nothing reads, and the run trains for the default number of epochs. Every
medbundle config calls :func:`warn_unknown_overrides` in ``initialize``, which re-reads the command line
and warns about keys the configs do not define, naming the closest valid key.
"""

from __future__ import annotations

import ast
import difflib
import logging
import sys
from collections.abc import Sequence

__all__ = ["unknown_overrides", "warn_unknown_overrides"]

logger = logging.getLogger(__name__)

# arguments of `monai.bundle run` / ConfigWorkflow themselves, not config overrides
_RUNNER_ARGS = {
    "run_id", "init_id", "final_id", "meta_file", "config_file", "logging_file", "tracking", "args_file",
    "workflow_type", "properties_path",
}


def _option_value(argv: Sequence[str], name: str) -> str | None:
    for i, token in enumerate(argv):
        if token == f"--{name}" and i + 1 < len(argv):
            return argv[i + 1]
        if token.startswith(f"--{name}="):
            return token.split("=", 1)[1]
    return None


def _config_files(value: str) -> list[str]:
    if value.strip().startswith(("[", "(")):
        return [str(path) for path in ast.literal_eval(value)]
    return [value]


def unknown_overrides(argv: Sequence[str] | None = None) -> list[tuple[str, str | None]]:
    """Override keys on a ``monai.bundle`` command line that none of its config files define.

    Args:
        argv: the command line; default ``sys.argv``. Without ``--config_file`` nothing is checked (e.g. a
            bundle run from Python, whose overrides are keyword arguments the caller wrote).

    Returns:
        ``(key, closest valid key or None)`` per unknown key, in command-line order.
    """
    from monai.bundle import ConfigParser

    argv = list(sys.argv if argv is None else argv)
    files = _option_value(argv, "config_file")
    if files is None:
        return []
    parser = ConfigParser()
    parser.read_config(_config_files(files))
    top_level = [str(key) for key in parser.get()]
    found = []
    for token in argv:
        if not token.startswith("--"):
            continue
        key = token[2:].split("=", 1)[0]
        if key in _RUNNER_ARGS or key in parser:
            continue
        found.append((key, _closest(parser, key, top_level)))
    return found


def _closest(parser, key: str, top_level: list[str]) -> str | None:
    """The valid id nearest to `key`: a sibling under its existing parent for nested ids, else a top-level key."""
    parent, _, leaf = key.rpartition("#")
    if parent and parent in parser and isinstance(parser[parent], dict):
        close = difflib.get_close_matches(leaf, [str(k) for k in parser[parent]], n=1, cutoff=0.6)
        return f"{parent}#{close[0]}" if close else None
    close = difflib.get_close_matches(key.split("#")[0], top_level, n=1, cutoff=0.6)
    return close[0] if close else None


def warn_unknown_overrides(argv: Sequence[str] | None = None) -> list[tuple[str, str | None]]:
    """Log a warning for each override key that the configs do not define (see :func:`unknown_overrides`)."""
    found = unknown_overrides(argv)
    for key, close in found:
        hint = f"did you mean --{close}?" if close else "check the spelling against the config's top-level keys."
        logger.warning("override --%s matches no key of the bundle configs, so nothing reads it; %s", key, hint)
    return found
