"""Write a file so that readers, and a run killed mid-write, only ever see the old file or the whole new one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

__all__ = ["atomic_write"]


@contextmanager
def atomic_write(path: str | os.PathLike, text: bool = False) -> Iterator[IO]:
    """Write to a unique temporary file beside `path`, renamed to `path` (atomically) when the block succeeds.

    A process killed mid-write leaves only a hidden ``.<name>.*.tmp`` file, never a truncated `path`;
    concurrent writers of the same file each rename a complete one into place.

    Args:
        path: the final file; its folder must exist.
        text: open in text mode (newline="" so csv writes its own line ends) instead of binary.
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w" if text else "wb", **({"newline": ""} if text else {})) as stream:
            yield stream
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
