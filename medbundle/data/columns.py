"""Reading a dataset's label CSV with its required columns checked up front.

Every bundle's datalist starts from a CSV; a renamed or missing column should fail at load time
with the file and the columns it does have, not as a ``KeyError`` deep inside a transform.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

__all__ = ["check_binary_cells", "dataset_folder", "read_csv_checked"]


def dataset_folder(dataset_dir: str | Path, holds: str) -> Path:
    """``dataset_dir`` as a Path, checked to be an existing folder before any of its files is read.

    Args:
        dataset_dir: the bundle's ``dataset_dir``.
        holds: what the folder should hold, for the message (e.g. "train.csv and train_images/").

    Raises:
        FileNotFoundError: it does not exist or is a file; the message names the key and what it should hold.
    """
    folder = Path(dataset_dir)
    if not folder.is_dir():
        state = "is not a directory" if folder.exists() else "does not exist"
        raise FileNotFoundError(f"dataset_dir {folder} {state}; set dataset_dir to the folder that holds {holds}.")
    return folder


def read_csv_checked(
    path: str | Path,
    required: Sequence[str],
    dtype: Mapping[str, object] | None = None,
) -> pd.DataFrame:
    """Read a CSV and check that it has the required columns.

    Args:
        path: the CSV file.
        required: column names the caller uses.
        dtype: optional ``pandas.read_csv`` dtypes per column, e.g. ``{"patient_id": str}`` to keep
            ids as written (columns absent from the file are ignored here and reported as missing).

    Returns:
        The CSV as a DataFrame.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: required columns are missing; the message names them, the file and the
            columns the file has.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CSV file not found: {path}; check the dataset directory and CSV name.")
    frame = pd.read_csv(path, dtype=dtype)
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise ValueError(
            f"{path} lacks required column(s) {missing}; it has {list(frame.columns)}. "
            "Point to the right CSV or rename its columns."
        )
    return frame


def check_binary_cells(frame: pd.DataFrame, columns: list[str], label_column: str | None, csv_path: Path) -> None:
    """Reject empty cells in `columns` and labels other than 0/1, naming up to 10 CSV lines.

    Args:
        frame: the CSV as read by :func:`read_csv_checked` (line = index + 2).
        columns: the columns every row must fill.
        label_column: the 0/1 label column, or None for an unlabelled CSV.
        csv_path: the CSV's path, for the message.

    Raises:
        ValueError: an empty cell or a label that is not 0 or 1.
    """
    empty = frame[columns].isna().any(axis=1)
    if empty.any():
        lines = (frame.index[empty] + 2).tolist()[:10]
        raise ValueError(f"{csv_path} has empty cells in columns {columns} on line(s) {lines}; fix or drop those rows.")
    if label_column is not None:
        invalid = ~frame[label_column].isin((0, 1))
        if invalid.any():
            lines = (frame.index[invalid] + 2).tolist()[:10]
            raise ValueError(
                f"{csv_path} column {label_column!r} must be 0 or 1; line(s) {lines} hold "
                f"{frame.loc[invalid, label_column].unique()[:5].tolist()}."
            )
