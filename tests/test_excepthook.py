from __future__ import annotations

import subprocess
import sys

from medbundle.excepthook import root_cause


def test_root_cause_follows_causes_and_unsuppressed_contexts():
    try:
        try:
            raise ValueError("train.csv lacks column 'cancer'")
        except ValueError as inner:
            raise RuntimeError("Failed to instantiate component") from inner
    except RuntimeError as outer:
        assert str(root_cause(outer)) == "train.csv lacks column 'cancer'"
    try:
        try:
            raise KeyError("a")
        except KeyError:
            raise ValueError("b") from None
    except ValueError as suppressed:
        assert root_cause(suppressed) is suppressed


def run(code: str) -> list[str]:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    return result.stderr.strip().splitlines()


def test_the_root_cause_is_printed_last_after_the_whole_traceback():
    lines = run(
        "import medbundle\n"
        "try:\n    raise FileNotFoundError('image file not found: a.dcm; set skip_bad_images: true')\n"
        "except FileNotFoundError as e:\n    raise RuntimeError('Failed to instantiate component') from e\n"
    )
    assert lines[-1] == "medbundle: error: FileNotFoundError: image file not found: a.dcm; set skip_bad_images: true"
    assert lines[0] == "Traceback (most recent call last):" and "RuntimeError: Failed to instantiate component" in lines


def test_a_lone_error_is_not_printed_twice():
    lines = run("import medbundle\nraise ValueError('only once')")
    assert lines[-1] == "ValueError: only once" and sum("only once" in line for line in lines) == 1
