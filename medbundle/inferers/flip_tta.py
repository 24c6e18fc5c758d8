"""Flip test-time augmentation: average a classifier's logits over mirrored copies of each image.

A lesion crop has no canonical orientation, so a classifier should score an image and its mirror
images alike; averaging over the flips cancels part of the noise of single views (the skin-lesion seed
evaluates with horizontal and vertical flips). MONAI's ``TestTimeAugmentation`` targets segmentation
with random transforms and inversion; for classification, a fixed set of flips needs no inversion.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from monai.inferers import Inferer

__all__ = ["FlipTTAInferer"]


class FlipTTAInferer(Inferer):
    """Run the network on flipped copies of the batch and return the mean of its outputs (logits).

    Logits are averaged, not probabilities, so the bundles' post-processing (sigmoid or softmax) and
    losses apply unchanged; for a sigmoid this is the geometric mean of the odds.

    Args:
        spatial_axes: one tuple of spatial axes per view, counted from the first spatial dimension
            (0 = rows, 1 = columns of a 2D image); ``()`` is the unflipped image. The default adds the
            horizontal, vertical and both-axes mirrors to the original.
    """

    def __init__(self, spatial_axes: Sequence[Sequence[int]] = ((), (1,), (0,), (0, 1))) -> None:
        super().__init__()
        self.spatial_axes = [tuple(int(axis) for axis in axes) for axes in spatial_axes]
        if not self.spatial_axes:
            raise ValueError("spatial_axes needs at least one view, e.g. [[], [1]] for the image and its mirror.")

    def __call__(self, inputs: torch.Tensor, network: Callable[..., torch.Tensor], *args: Any, **kwargs: Any) -> torch.Tensor:
        """Mean network output over the views of ``inputs`` ``(B, C, *spatial)``.

        Args:
            inputs: the batch.
            network: the model.
            args, kwargs: passed on to ``network``.
        """
        total = None
        for axes in self.spatial_axes:
            view = torch.flip(inputs, dims=[2 + axis for axis in axes]) if axes else inputs
            output = network(view, *args, **kwargs)
            total = output if total is None else total + output
        return total / len(self.spatial_axes)
