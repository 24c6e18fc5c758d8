"""JSON text that strict parsers accept: NaN and infinities written as ``null``.

Undefined metrics are NaN (an AUROC over labels of one class, a sensitivity without positives), and Python's
``json.dumps`` writes them as bare ``NaN``, which is not JSON: ``JSON.parse``, ``jq`` and most non-Python
readers reject the whole file. ``metrics.json`` files are written with :func:`to_strict_json`.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["to_strict_json"]


def to_strict_json(value: Any, indent: int | None = None) -> str:
    """`value` as JSON text, every non-finite float (NaN, inf, -inf) at any depth written as ``null``.

    Raises:
        ValueError: a non-finite number json cannot see as a float (e.g. a numpy float32) is still in `value`.
    """
    return json.dumps(_finite_or_none(value), indent=indent, allow_nan=False)


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(item) for item in value]
    return value
