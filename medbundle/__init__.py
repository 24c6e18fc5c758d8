"""medbundle: MONAI bundles and shared components for 2D medical image classification.

The subpackages are imported on first access (PEP 562), so bundle configs can write
``$import medbundle`` and then use ``medbundle.data.rsna_datalist(...)`` or
``_target_: medbundle.transforms.CLAHEd``, while ``import medbundle`` itself stays light: torch and
MONAI are imported only by the subpackages that need them, and not at all by the ONNX predictor
:mod:`medbundle.deploy` and the preprocessing it shares, :mod:`medbundle.imaging`. Importing it also
makes an uncaught error end with its root cause (see :mod:`medbundle.excepthook`) and silences MONAI's
nvImageCodec notices, which do not concern medbundle's readers (see :mod:`medbundle.warning_filters`).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from medbundle.excepthook import install as _install_excepthook
from medbundle.warning_filters import install as _install_warning_filters

if TYPE_CHECKING:
    from medbundle import (
        data,
        deploy,
        ensemble,
        export,
        handlers,
        imaging,
        inferers,
        io,
        losses,
        metrics,
        networks,
        overrides,
        preflight,
        tabular,
        tracking,
        transforms,
        visualize,
    )

_install_excepthook()
_install_warning_filters()

__version__ = "0.1.0"
__all__ = [
    "data",
    "deploy",
    "ensemble",
    "export",
    "handlers",
    "imaging",
    "inferers",
    "io",
    "losses",
    "metrics",
    "networks",
    "overrides",
    "preflight",
    "tabular",
    "tracking",
    "transforms",
    "visualize",
]


def __getattr__(name: str) -> Any:
    """Import the subpackage or submodule `name` on first access (PEP 562)."""
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
