"""Where a bundle's evaluation writes its files, for the configs and for the tools that read them back.

``evaluate.yaml`` writes ``metrics.json`` and the prediction CSVs to its ``output_dir`` for the fold's
validation split; evaluations of another split (chest_xray ``--eval_split test``) or with test-time
augmentation (isic, ensemble ``--tta True``) get a folder of their own inside it, so they never overwrite
the plain evaluation's files. ``medbundle compare`` and the sweep's out-of-fold tables read them from there.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["evaluation_dir"]


def evaluation_dir(output_dir: str | os.PathLike, split: str | None = "val", tta: bool = False) -> Path:
    """``<output_dir>[/<split>][/tta]``: the validation split (``"val"`` or None) and no TTA write to `output_dir`.

    Example: ``evaluation_dir("outputs/fold0", "test", tta=True)`` is ``outputs/fold0/test/tta``.
    """
    folder = Path(output_dir)
    if split not in (None, "val"):
        folder = folder / split
    return folder / "tta" if tta else folder
