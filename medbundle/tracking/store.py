"""Where a bundle's MLflow runs live by default: one SQLite store under the bundle root, shared by every fold.

MONAI's own default (``<output_dir>/mlruns.db``) would give each fold's output folder its own store, so a sweep's
folds, their evaluations and the registered models could not be compared in one ``mlflow ui``.
"""

from __future__ import annotations

import os

__all__ = ["bundle_store_uri"]


def bundle_store_uri(bundle_root: str | os.PathLike) -> str:
    """``sqlite:///<bundle_root>/eval/mlruns.db`` (absolute); run artifacts go to ``<bundle_root>/eval/mlruns``."""
    from monai.utils import path_to_sqlite_uri

    return path_to_sqlite_uri(os.path.join(os.path.abspath(bundle_root), "eval", "mlruns.db"))
