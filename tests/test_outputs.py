"""Where an evaluation writes its files (medbundle.outputs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from medbundle.outputs import evaluation_dir


@pytest.mark.parametrize(
    ("split", "tta", "folder"),
    [("val", False, "out"), (None, False, "out"), ("test", False, "out/test"), ("val", True, "out/tta"),
     ("test", True, "out/test/tta")],
)
def test_other_splits_and_tta_get_their_own_folder(split, tta, folder):
    assert evaluation_dir("out", split, tta) == Path(folder)
