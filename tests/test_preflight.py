from __future__ import annotations

import shutil
from collections import namedtuple

import pytest

from medbundle.preflight import check_output_dirs


def test_folders_are_created_and_left_clean(tmp_path):
    check_output_dirs([tmp_path / "models" / "fold0", tmp_path / "cache", None])  # None: a run without cache
    assert (tmp_path / "models" / "fold0").is_dir() and not list((tmp_path / "cache").iterdir())


def test_an_unwritable_folder_is_named_with_the_setting_that_moves_it(tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    with pytest.raises(OSError, match=r"cannot write to .*not_a_folder/models.*--bundle_root"):
        check_output_dirs([blocker / "models"])


def test_a_full_disk_is_reported_before_training(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 * 2**30, 10 * 2**30 - 2**20, 2**20))
    with pytest.raises(OSError, match=r"only 1 MB free on the disk of .*--cache_dir"):
        check_output_dirs([tmp_path])
