"""Common base of medbundle's MONAI image readers: one 2D file to a grey image in [0, 1], in pixel space."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from monai.config import PathLike
from monai.data import ImageReader
from monai.utils import MetaKeys, SpaceKeys, TraceKeys, ensure_tuple

__all__ = ["PixelSpaceReader"]


class PixelSpaceReader(ImageReader):
    """A MONAI ``ImageReader`` that decodes one 2D file into a channel-less (H, W) float32 image in [0, 1].

    Subclasses implement :meth:`decode` (and ``verify_suffix``). ``read`` only resolves the path and
    decoding happens in ``get_data``: ``LoadImage`` catches exceptions raised by ``read`` and silently
    retries the file with its other registered readers (e.g. ITK), which would yield a differently
    oriented and scaled array, while errors from ``get_data`` propagate, so a broken file fails loudly.

    The metadata holds the decoder's technical fields (None replaced by ``"none"`` so batches collate),
    ``spatial_shape``, identity ``affine`` and ``original_affine`` (the network works in pixel space),
    ``space`` and ``original_channel_dim`` = :attr:`channel_dim`: NaN, so ``EnsureChannelFirstd`` yields
    (1, H, W), unless a colour subclass returns (H, W, C) and sets it to -1 (then (C, H, W)). Only one
    file per image is supported: several paths (MONAI's channel stacking) raise ``NotImplementedError``.
    """

    #: what the reader calls a file in its error messages ("DICOM", "image")
    file_kind = "image"
    #: axis of the decoded array that holds colour channels (-1 for (H, W, C)), NaN for a channel-less image
    channel_dim: float = float("nan")

    def read(self, data: Sequence[PathLike] | PathLike, **kwargs) -> tuple[PathLike, ...]:
        """Return the file names to decode in :meth:`get_data`; no I/O happens here (see class docs).

        Args:
            data: file name or a sequence of file names.
            kwargs: unused; accepted for ``ImageReader`` API compatibility.
        """
        return ensure_tuple(data)

    def get_data(self, img: Sequence[PathLike] | PathLike) -> tuple[np.ndarray, dict]:
        """Decode the file and return the (H, W) float32 image and its MONAI metadata.

        Args:
            img: the output of :meth:`read`, or a single file name.

        Raises:
            NotImplementedError: more than one file name was given.
        """
        filenames = ensure_tuple(img)
        if len(filenames) != 1:
            raise NotImplementedError(
                f"{type(self).__name__} reads one {self.file_kind} file per image, got {len(filenames)}: {filenames}."
            )
        image, fields = self.decode(str(filenames[0]))
        meta = {key: str(TraceKeys.NONE) if value is None else value for key, value in fields.items()}
        spatial_shape = list(image.shape)
        if not np.isnan(self.channel_dim):
            del spatial_shape[int(self.channel_dim)]
        meta[MetaKeys.SPATIAL_SHAPE] = np.asarray(spatial_shape)
        meta[MetaKeys.AFFINE] = np.eye(len(spatial_shape) + 1)
        meta[MetaKeys.ORIGINAL_AFFINE] = np.eye(len(spatial_shape) + 1)
        meta[MetaKeys.SPACE] = SpaceKeys.RAS
        meta[MetaKeys.ORIGINAL_CHANNEL_DIM] = self.channel_dim
        return image, meta

    def decode(self, filename: str) -> tuple[np.ndarray, dict]:
        """The (H, W), or (H, W, C) per :attr:`channel_dim`, float32 image in [0, 1] of `filename` and its
        technical, non-identifying fields."""
        raise NotImplementedError
