"""Mixed precision for any device: run an inferer under ``torch.autocast``, e.g. bfloat16 on the CPU.

MONAI's trainers and evaluators autocast only on CUDA (``amp``: float16 with a gradient scaler). bfloat16
keeps float32's exponent range, so it needs no loss scaling, and CPUs with AVX512-BF16 or AMX run its
convolutions and matrix products faster than float32 (`scripts/benchmark.py trainer_overhead`). Wrapping the
inferer leaves the engine as it is: the forward pass runs under autocast, the backward pass follows the dtypes
it recorded, and floating-point outputs come back as float32 for the loss, the metrics and post-processing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from monai.inferers import Inferer, SimpleInferer

__all__ = ["AutocastInferer"]


class AutocastInferer(Inferer):
    """Call another inferer under ``torch.autocast(device_type, dtype)`` and return float32 outputs.

    A bundle wires it behind a flag::

        train#inferer:
          _target_: medbundle.inferers.AutocastInferer
          inferer: {_target_: SimpleInferer}
          enabled: "@bf16"
          device_type: "$@device.type"

    Args:
        inferer: the inferer to wrap; default `SimpleInferer`.
        enabled: False calls `inferer` without autocast.
        device_type: ``"cpu"`` or ``"cuda"``, as ``torch.autocast`` takes it.
        dtype: the reduced precision, ``torch.bfloat16`` or ``torch.float16``.
    """

    def __init__(
        self,
        inferer: Inferer | None = None,
        enabled: bool = True,
        device_type: str = "cpu",
        dtype: torch.dtype = torch.bfloat16,
    ) -> None:
        super().__init__()
        self.inferer = SimpleInferer() if inferer is None else inferer
        self.enabled = enabled
        self.device_type = device_type
        self.dtype = dtype

    def __call__(self, inputs: torch.Tensor, network: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """The wrapped inferer's output; a floating-point tensor output is cast to float32.

        Args:
            inputs: the batch.
            network: the model.
            args, kwargs: passed on to the wrapped inferer.
        """
        if not self.enabled:
            return self.inferer(inputs, network, *args, **kwargs)
        with torch.autocast(self.device_type, dtype=self.dtype):
            output = self.inferer(inputs, network, *args, **kwargs)
        if isinstance(output, torch.Tensor) and output.is_floating_point():
            return output.float()
        return output
