"""Normalise a per-axis parameter of a 2D operation to an ``(H, W)`` pair."""

from __future__ import annotations

from typing import Any

__all__ = ["as_pair"]


def as_pair(value: Any, name: str = "value") -> tuple[Any, Any]:
    """``(value, value)`` for a scalar or a string, ``tuple(value)`` for a sequence (or array) of two.

    The rule of MONAI's ``ensure_tuple_rep(value, 2)``, without importing MONAI.

    Raises:
        ValueError: `value` is a sequence whose length is not 2.
    """
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        value = value.tolist()
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        return value, value
    if len(value) != 2:
        raise ValueError(f"{name} must be one value or two (H, W), got {value!r}.")
    return tuple(value)  # type: ignore[return-value]
