"""The ensemble's prediction tables as a single model's: the contract between the ensemble's writer and the report.

The ensemble bundle writes ``predictions_<level>.csv`` with every member's column beside the ensemble's
(``ensemble``, or ``ensemble:<class>`` for a multi-class task); the report reads a single model's schema (``pred`` or
``prob_<class>``). The column name lives here, below both, so that neither package imports the other.
"""

from __future__ import annotations

import pandas as pd

from medbundle.tasks import get_task

__all__ = ["ENSEMBLE", "model_table"]

ENSEMBLE = "ensemble"  # the ensemble's row and column name


def model_table(table: pd.DataFrame, task: str) -> pd.DataFrame:
    """The ensemble's rows of a written ``predictions_<level>.csv`` in a single model's schema, so that what reads a
    task bundle's evaluation (the report) reads the ensemble's: its id and label columns, ``ensemble`` as ``pred``
    (binary) or ``ensemble:<class>`` as ``prob_<class>``; the members' columns and the decision left out.

    Raises:
        ValueError: `table` has no ensemble column (it is not an ensemble's prediction table).
    """
    scores = {"pred": ENSEMBLE} if ENSEMBLE in table else {
        f"prob_{column.removeprefix(ENSEMBLE + ':')}": column for column in table if column.startswith(ENSEMBLE + ":")
    }  # fmt: skip
    if not scores:
        raise ValueError(
            f"this prediction table (columns {list(table.columns)}) has no {ENSEMBLE!r} or '{ENSEMBLE}:<class>' "
            "column: it is not an ensemble evaluation's; read it as a single model's."
        )
    keep = [column for column in table if column in {*get_task(task).ensemble["id_keys"], "label", "label_class"}]
    return table[keep].assign(**{name: table[column] for name, column in scores.items()})
