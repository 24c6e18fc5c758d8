"""A CSV that several splits of one run share (skipped images, crop report): each split replaces its own rows."""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from medbundle.io.atomic_file import atomic_write

__all__ = ["replace_split_rows"]


def replace_split_rows(
    path: str | os.PathLike, split: str, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]
) -> None:
    """Replace the rows of ``split`` in the CSV at ``path``, keeping other splits' rows.

    A training run writes its train and validation rows, an evaluation only the validation rows of the same
    file; each run's rows are its own. Replaced atomically, so a reader never sees a partial file. No file is
    created when there is nothing to list.

    Args:
        path: the CSV file; its ``split`` column names the split of each row.
        split: the split whose rows are replaced.
        rows: the new rows of ``split`` (their ``split`` value is set here).
        columns: the CSV's columns, ``split`` first.
    """
    path = Path(path)
    kept = []
    if path.is_file():
        with path.open(newline="") as stream:
            kept = [row for row in csv.DictReader(stream) if row.get("split") != split]
    rows = kept + [{**row, "split": split} for row in rows]
    if not rows and not path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, text=True) as stream:
        writer = csv.DictWriter(stream, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
