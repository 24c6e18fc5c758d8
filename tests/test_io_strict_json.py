"""Strict JSON (medbundle.io.strict_json): NaN and infinities as null, so non-Python parsers read metrics.json."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from medbundle.io.strict_json import to_strict_json


def strict_loads(text: str):
    """json.loads as JSON.parse or jq read: bare NaN / Infinity are errors."""

    def reject(constant: str):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=reject)


def test_non_finite_numbers_at_any_depth_become_null():
    value = {"auroc": math.nan, "per_class": {"a": {"f1": np.float64("nan"), "n": 3}}, "range": (-math.inf, 1.5)}
    text = to_strict_json(value, indent=2)
    assert strict_loads(text) == {"auroc": None, "per_class": {"a": {"f1": None, "n": 3}}, "range": [None, 1.5]}
    with pytest.raises(ValueError, match="NaN is not JSON"):
        strict_loads(json.dumps(value))  # what metrics.json held before
