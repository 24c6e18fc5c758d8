"""Every random-number state a training epoch draws from, for a resume that continues bit for bit."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from monai.transforms import Randomizable, Transform

__all__ = ["RNGState"]


def _numpy_state(state: tuple) -> dict[str, Any]:
    """``RandomState.get_state()`` as plain values that ``torch.load(weights_only=True)`` accepts."""
    kind, keys, position, has_gauss, cached_gaussian = state
    return {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(position),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)}


def _numpy_tuple(state: dict[str, Any]) -> tuple:
    keys = state["keys"].numpy().astype(np.uint32)
    return state["kind"], keys, state["pos"], state["has_gauss"], state["cached_gaussian"]


def _randomizables(obj: Any, seen: set[int] | None = None) -> list[Randomizable]:
    """Every object with its own generator ``R`` reachable from `obj`, in a fixed order.

    A dictionary transform draws from the array transform it wraps (``RandAffined.rand_affine``, and that
    one's ``rand_affine_grid``), so the walk follows attributes and lists the way MONAI's ``set_rnd`` does.
    """
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    found = [obj] if isinstance(obj, Randomizable) else []
    children = obj if isinstance(obj, (list, tuple)) else vars(obj).values()
    for child in children:
        if isinstance(child, (list, tuple, Randomizable, Transform)):
            found.extend(_randomizables(child, seen))
    return found


class RNGState:
    """The Python, NumPy, torch (CPU and CUDA) generators and each random transform's own generator.

    Put it in the "last" checkpoint's ``save_dict``: the checkpoint is written after the epoch's
    validation, and restoring these states when a resumed trainer starts puts every generator where the
    uninterrupted run had it, so dropout, augmentation (MONAI transforms keep their own ``RandomState``
    ``R``), shuffling and the worker seeds of the next epochs come out the same. Transforms in
    DataLoader workers are reseeded from the torch generator each epoch when workers are not persistent,
    which is why the bundles set ``persistent_workers: false``.

    Args:
        transforms: the training ``Compose`` whose random transforms run in this process (``num_workers: 0``);
            None to save only the global generators.
    """

    def __init__(self, transforms: Any = None) -> None:
        self.transforms = [] if transforms is None else _randomizables(transforms)

    def state_dict(self) -> dict[str, Any]:
        version, internal, gauss = random.getstate()
        state: dict[str, Any] = {
            "python": {"version": int(version), "internal": torch.tensor(internal, dtype=torch.int64),
                       "gauss": gauss},
            "numpy": _numpy_state(np.random.get_state()),
            "torch": torch.get_rng_state(),
            "transforms": [_numpy_state(t.R.get_state()) for t in self.transforms],
        }
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        python = state["python"]
        random.setstate((python["version"], tuple(int(v) for v in python["internal"]), python["gauss"]))
        np.random.set_state(_numpy_tuple(state["numpy"]))
        torch.set_rng_state(state["torch"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
        if len(state["transforms"]) != len(self.transforms):
            raise ValueError(
                f"the checkpoint holds {len(state['transforms'])} random-transform states but the training chain has "
                f"{len(self.transforms)} random transforms: resume with the augmentation settings of the original run."
            )
        for transform, saved in zip(self.transforms, state["transforms"]):
            transform.R.set_state(_numpy_tuple(saved))
