"""medbundle: MONAI bundles and shared components for 2D medical image classification.

The subpackages are imported here so bundle configs can write ``$import medbundle`` and then use
``medbundle.data.rsna_datalist(...)`` or ``_target_: medbundle.transforms.CLAHEd``. Importing it also
makes an uncaught error end with its root cause (see :mod:`medbundle.excepthook`).
"""

from medbundle import (
    data,
    handlers,
    inferers,
    io,
    losses,
    metrics,
    networks,
    overrides,
    preflight,
    transforms,
    visualize,
)
from medbundle.excepthook import install as _install_excepthook

_install_excepthook()

__version__ = "0.1.0"
__all__ = [
    "data",
    "handlers",
    "inferers",
    "io",
    "losses",
    "metrics",
    "networks",
    "overrides",
    "preflight",
    "transforms",
    "visualize",
]
