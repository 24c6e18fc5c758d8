"""The tasks medbundle knows: its own, installed plug-ins, and task files in folders named by an environment variable.

Three sources, read once per process in this order (a later task of the same name is an error, not a
silent replacement):

- the built-in tasks, one module each in :mod:`medbundle.tasks` (:data:`BUILTIN`);
- installed packages that declare an entry point in the group ``medbundle.tasks`` whose object is a
  :class:`~medbundle.tasks.spec.TaskSpec` (the standard Python plug-in mechanism);
- every ``*.py`` file in the folders of ``MEDBUNDLE_TASK_PATH`` (separated like ``PATH``) that defines
  ``TASK``, a :class:`~medbundle.tasks.spec.TaskSpec`: a team's own task without packaging anything.

:func:`register` adds one more at run time (tests, notebooks).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path

from medbundle.tasks.spec import TaskSpec

__all__ = ["BUILTIN", "ENTRY_POINT_GROUP", "TASK_PATH_ENV", "get_task", "register", "source", "task_names", "tasks"]

#: the modules of the built-in tasks, each defining ``TASK``
BUILTIN = ("medbundle.tasks.rsna", "medbundle.tasks.chest_xray", "medbundle.tasks.isic", "medbundle.tasks.classify")
ENTRY_POINT_GROUP = "medbundle.tasks"
TASK_PATH_ENV = "MEDBUNDLE_TASK_PATH"

_REGISTRY: dict[str, TaskSpec] = {}
_SOURCES: dict[str, str] = {}
_loaded = False


def register(spec: TaskSpec, source: str = "register()") -> TaskSpec:
    """Add `spec` to the registry.

    Raises:
        TypeError: `spec` is not a TaskSpec.
        ValueError: another task of the same name is registered; the message names both sources.
    """
    if not isinstance(spec, TaskSpec):
        raise TypeError(f"{source}: TASK must be a medbundle.tasks.TaskSpec, got {type(spec).__name__}.")
    if spec.name in _REGISTRY and _REGISTRY[spec.name] is not spec:
        raise ValueError(
            f"task {spec.name!r} from {source} is already registered by {_SOURCES[spec.name]}; rename one of them."
        )
    _REGISTRY[spec.name] = spec
    _SOURCES[spec.name] = source
    return spec


def _task_of(module, source: str) -> None:
    if not hasattr(module, "TASK"):
        raise ValueError(f"{source} defines no TASK; set TASK = medbundle.tasks.TaskSpec(...) in it.")
    register(module.TASK, source)


def _load_file(path: Path) -> None:
    name = f"medbundle_task_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    _task_of(module, str(path))


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module_name in BUILTIN:
        _task_of(importlib.import_module(module_name), module_name)
    for point in entry_points(group=ENTRY_POINT_GROUP):
        register(point.load(), f"entry point {point.name} = {point.value}")
    for folder in filter(None, os.environ.get(TASK_PATH_ENV, "").split(os.pathsep)):
        if not Path(folder).is_dir():
            raise FileNotFoundError(f"{TASK_PATH_ENV} names {folder}, which is not a folder; fix the variable.")
        for path in sorted(Path(folder).glob("*.py")):
            _load_file(path)


def tasks() -> dict[str, TaskSpec]:
    """Every registered task by name, built-in ones first."""
    _load()
    return dict(_REGISTRY)


def source(name: str) -> str:
    """Where task `name` was registered from: its module, entry point or file."""
    get_task(name)
    return _SOURCES[name]


def task_names() -> list[str]:
    """The names of every registered task, in registration order."""
    return list(tasks())


def get_task(name: str) -> TaskSpec:
    """The :class:`TaskSpec` called `name`.

    Raises:
        ValueError: no such task; the message lists the known ones and how to add one.
    """
    known = tasks()
    if name not in known:
        raise ValueError(
            f"unknown task {name!r}; choose one of {list(known)}, or add one (docs/ADDING_A_TASK.md; "
            f"a TASK file in a folder of {TASK_PATH_ENV})."
        )
    return known[name]
