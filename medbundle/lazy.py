"""PEP 562 lazy exports: a package whose public names are imported on first use, not when the package is.

``medbundle.io`` and ``medbundle.tracking`` hold torch-free modules (the deploy runtime's decoders, the registered
MLflow model) beside ones that need torch; importing a name only when it is used keeps the light ones light.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, str], submodules: Iterable[str] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for `package`: each name of `exports` from its module, and the `submodules`.

    Args:
        package: the package's ``__name__``.
        exports: public name -> the module (absolute) that defines it.
        submodules: submodule names importable as attributes.
    """
    namespace = importlib.import_module(package).__dict__
    submodules = tuple(submodules)

    def __getattr__(name: str) -> Any:
        if name in exports:
            value = getattr(importlib.import_module(exports[name]), name)
        elif name in submodules:
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *exports, *submodules})

    return __getattr__, __dir__
