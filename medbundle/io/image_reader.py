"""MONAI ``ImageReader`` for 2D grayscale images stored as PNG, JPEG or DICOM.

Public chest X-ray and skin data sets mix 8-bit and 16-bit PNGs, JPEGs (often saved as RGB
with three equal channels) and DICOMs in one folder. This reader gives all of them one
representation, the (H, W) float32 image in [0, 1] that :class:`MammoDicomReader` produces,
so a single transform chain serves every file. The reading and decoding
themselves are torch-free, in :mod:`medbundle.io.image_file` and :mod:`medbundle.imaging.decode`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from monai.config import PathLike
from monai.utils import ensure_tuple

from medbundle.imaging.decode import (
    IMAGE_SUFFIXES,
    ImageReadError,
    suffix,
)
from medbundle.imaging.pairs import as_pair
from medbundle.io.image_file import read_grayscale
from medbundle.io.pixel_reader import PixelSpaceReader

__all__ = ["IMAGE_SUFFIXES", "GrayscaleReader", "ImageReadError"]


class GrayscaleReader(PixelSpaceReader):
    """Load a PNG, JPEG, TIFF or DICOM file as a (H, W) float32 image in [0, 1] for MONAI's ``LoadImage``.

    - DICOM (``.dcm``, ``.dicom``): :func:`~medbundle.io.dicom.read_dicom` (VOI windowing,
      MONOCHROME1 inverted), so the array equals ``read_dicom(path, target_size)[0]``.
    - PNG, JPEG and TIFF: decoded by OpenCV from bytes read by Python (``cv2.imread`` fails on
      non-ASCII paths on Windows). EXIF orientation is applied as image viewers do
      (``IMREAD_ANYDEPTH | IMREAD_ANYCOLOR``; ``IMREAD_UNCHANGED`` would ignore it and
      return a rotated image). Colour images become grayscale (ITU-R BT.601 luma).
      8-bit values are divided by 255. 16-bit values are divided by ``2**b - 1`` for the ``b``
      significant bits the PNG declares in its ``sBIT`` chunk, or without one the smallest ``b``
      (8 <= b <= 16) that holds the image maximum: detectors store 10-, 12- or 14-bit data in
      16-bit PNGs, and dividing by 65535 would leave such images nearly black, while per-image
      min-max scaling would give every image its own contrast. A power-of-two range maps the
      same stored value to the same intensity for all images of a bit depth (as long as an
      image uses more than the lower half of its range, which radiographs do).

    The array keeps the file's (rows, columns) orientation (no axis swap, unlike MONAI's
    ``PILReader``) and is marked channel-less, so ``EnsureChannelFirstd`` yields (1, H, W).
    The affine is the 3x3 identity: the network works in pixel space.

    Given the size the image is fitted into next (a bundle's ``image_size``, for
    :class:`~medbundle.transforms.AspectResizePadd` right after reading), an 8-bit JPEG is decoded by
    libjpeg at 1/2 or 1/4 of its size where that still leaves at least twice the fitted size
    (:func:`~medbundle.imaging.decode.read_raster_grayscale`; ~40 % less CPU for a 2 MP JPEG bound for
    224 x 224, within 0.03 of the full decode after the resize), and a JPEG 2000 DICOM at half resolution
    as in :class:`~medbundle.io.MammoDicomReader`. PNG has no reduced decode and is always read in full.

    Decoding happens in ``get_data`` (see :class:`~medbundle.io.pixel_reader.PixelSpaceReader`),
    so a broken file fails loudly with :class:`ImageReadError`.
    A truncated file is an error even where OpenCV would return a partially decoded image
    with only a logged warning (OpenCV 4 for JPEG): a PNG must reach its IEND chunk and a
    JPEG its end-of-image marker.

    Every format gives the metadata keys ``filename``, ``format`` ("png", "jpeg", "dicom"),
    ``bits_stored``, ``rows``, ``columns`` (of the full-size image), ``inverted`` and ``reduce_level``
    (halvings skipped when decoding, 0: full size) with the same types, so a batch that mixes formats
    collates (MONAI keeps the keys common to all items). DICOM files add the technical fields of
    ``read_dicom`` (None replaced by ``"none"``), raster files ``channels`` (as stored). Nothing
    identifies the patient.

    Args:
        target_size: ``(rows, columns)`` the image is fitted into after reading, keeping its aspect ratio; an
            int for both. None decodes every file at full size.
        reduced_decode: decode JPEG and JPEG 2000 at a reduced size when `target_size` allows it; False
            always decodes at full size.

    Example::

        LoadImaged(keys="image", reader=GrayscaleReader(target_size=(224, 224)), image_only=True)
    """

    def __init__(self, target_size: Sequence[int] | int | None = None, reduced_decode: bool = True) -> None:
        super().__init__()
        self.target_size = None if target_size is None else tuple(int(s) for s in as_pair(target_size, "target_size"))
        self.reduced_decode = reduced_decode

    def verify_suffix(self, filename: Sequence[PathLike] | PathLike) -> bool:
        """Return True when every file name ends in one of ``IMAGE_SUFFIXES`` (case-insensitive).

        Only the last suffix counts: ``scan.dcm.png`` is a PNG.

        Args:
            filename: file name or a sequence of file names.
        """
        return all(suffix(name) in IMAGE_SUFFIXES for name in ensure_tuple(filename))

    def decode(self, filename: str) -> tuple[np.ndarray, dict]:
        """The image and its technical fields: :func:`medbundle.io.image_file.read_grayscale` at `target_size`.

        Raises:
            ImageReadError: the file is missing, empty, truncated, corrupt or not an image.
        """
        return read_grayscale(filename, self.target_size if self.reduced_decode else None)
