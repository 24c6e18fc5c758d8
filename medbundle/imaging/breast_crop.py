"""Find the breast on a mammogram and crop to its bounding box (plain numpy and OpenCV).

Screening mammograms are mostly empty background, and often carry burned-in labels
(laterality/view markers, text), markers and stickers; scanned films add film edges,
frames, rulers and tape along the image border. Cropping to the breast before resizing
spends the network's input pixels on tissue and removes these, which would otherwise be
an easy shortcut for the classifier. :class:`medbundle.transforms.BreastCrop` wraps
:class:`BreastCropper` for MONAI.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, NamedTuple

import cv2
import numpy as np

from medbundle.imaging.canonical_flip import needs_flip

__all__ = ["FALLBACK_MESSAGE", "Box", "BreastCropper", "BreastLocation", "source_scale"]

Box = tuple[int, int, int, int]

logger = logging.getLogger(__name__)

_CHEST_WALL_SIDES = ("left", "right")
# The breast starts within this fraction of the width from the chest-wall edge; on scanned
# film a dark film edge can separate it from the image edge by a few per cent.
_CHEST_WALL_BAND = 0.1
# Rulers and film edges have elongated boxes; frames have boxes that they barely fill.
# A breast's box has an aspect ratio below ~4 and is more than half filled.
_MAX_ASPECT = 6.0
_MIN_FILL = 0.2
#: the warning logged when no breast is found: formatted with the image's source and the reason
FALLBACK_MESSAGE = (
    "BreastCrop found no breast in %s: %s; the whole image is kept. Check that it is a mammogram "
    "with dense tissue bright (MONOCHROME1 inverted), or lower min_threshold/min_area."
)


class BreastLocation(NamedTuple):
    """Where :meth:`BreastCropper.locate` found the breast."""

    #: ``(y0, y1, x0, x1)`` in pixels of the image, end-exclusive, margin included
    box: Box
    #: boolean mask of the breast on the downscaled working copy of the whole image
    region: np.ndarray
    #: the background grey level
    background: float
    #: the margin in pixels of the image: ``margin * scale``
    margin: float


def source_scale(meta: Mapping[str, Any]) -> float:
    """The size of an image relative to its source, from the reader's metadata: ``2**-reduce_level``.

    :func:`medbundle.io.dicom.read_dicom` decodes JPEG 2000 at a reduced resolution when asked for a
    target size, skipping ``meta["reduce_level"]`` wavelet levels (each halves the image); the
    :class:`BreastCropper` parameters given in source pixels (``margin``) then shrink by this factor.

    Args:
        meta: the reader's metadata (a MetaTensor's ``meta``); no ``reduce_level`` (or None, or MONAI's
            ``"none"``) means a full-resolution image.
    """
    level = meta.get("reduce_level")
    return 1.0 if level is None or isinstance(level, str) and level == "none" else 2.0 ** -int(level)


class BreastCropper:
    """
    Crop a channel-first 2D image ``(C, H, W)`` to the bounding box of the breast.

    The input must show dense tissue bright on a dark background (MONOCHROME1 inverted,
    as :func:`medbundle.io.dicom.read_dicom` does). The breast is found on a copy
    downscaled so that its longest side is ``working_size`` (full-resolution mammograms
    are 2000-5000 px; the box only needs to be accurate to a few pixels):

    1. Threshold: pixels of the channel mean at least `min_threshold` brighter than the
       background count. The background level is the most common grey level below Otsu's
       threshold, so it follows a grey film base as well as a black detector background;
       Otsu's threshold itself often splits dense from fatty tissue and would cut off the
       faint edge of the breast. An opening with a disc of `opening_size` removes specks
       and detaches text joined to the breast by thin lines.
    2. Chest-wall side: `chest_wall`, or else the half of the image holding more intensity
       once thin structures are ignored (the rule of
       :func:`~medbundle.imaging.canonical_flip.needs_flip`).
    3. Border structures: pixels in a horizontal run shorter than `line_width` of the width,
       or in a vertical run shorter than `line_width` of the height, are thin. Thin pieces
       that reach the edge opposite the chest wall, both the top and the bottom, or the top
       or bottom away from the chest wall are removed: film frames and edges, rulers and
       tape, even where they touch the breast. The breast's own thin parts (the nipple, the
       skin folds at the chest wall) are kept.
    4. Regions: of the 8-connected components, those smaller than `min_area` of the image,
       elongated ones (rulers) and sparse ones (frames) are dropped. The breast is the
       largest component reaching the chest-wall side, together with any other such
       component of at least `min_relative_area` of its area. Components that only touch
       other edges (the other breast, film edges) or touch none (labels, markers, stickers)
       are left out. If no component reaches the chest-wall side (e.g. a spot view), the
       largest components touching no edge (within `border_band`) are the breast.
    5. Box: the breast's bounding box is mapped back to the image's resolution, grown by `margin`
       on every side and clipped to the image.
    6. With `blank_outside`, pixels of the box farther than `margin` from the breast region are
       set to the background level: a box is a rectangle, so a ruler or label lying beside the
       breast in the same rows (e.g. next to a pectoral muscle reaching the top) would otherwise
       stay in it. The margin-grown region is upsampled (nearest neighbour) over the box only.

    `margin` is in pixels of the source image. An image decoded at a reduced resolution (JPEG 2000
    at ``reduce_level`` L, :func:`medbundle.io.dicom.read_dicom`) is given with ``scale=2**-L``
    (:func:`source_scale` of its metadata), and the margin shrinks with it, so the box covers the
    same part of the breast as at full resolution. The other parameters are relative to the
    image size or apply to the working copy, which is the same for both.

    If the intensities span less than `min_threshold` (a blank or constant image) or no
    breast remains, the input is returned unchanged and :meth:`report_fallback` logs why
    (here a warning per image; the MONAI transform warns once per process).

    Args:
        margin: pixels of the source image (at full resolution) added around the bounding box on each side.
        working_size: longest side, in pixels, of the downscaled copy used to find the mask.
            Images already smaller than this are used as they are.
        min_threshold: how much brighter than the background a pixel must be to count, and
            the least intensity span of an image with a breast, in input intensity units ([0, 1]).
        opening_size: diameter, in pixels of the downscaled copy, of the elliptical
            structuring element of the opening. 0 disables the opening.
        min_area: minimum area of a kept component as a fraction of the image area.
        chest_wall: ``"left"`` or ``"right"`` where the chest wall is known to be (e.g. after
            a canonical flip); ``None`` decides from the pixels.
        line_width: structures thinner than this fraction of the image's width (for vertical
            ones) or height (for horizontal ones) count as lines when they reach the border.
            Bands thicker than this, such as wide film edges, are handled as regions. 0
            disables the removal of border lines.
        border_band: distance from an edge, as a fraction of the image side, within which a
            component counts as touching that edge.
        blank_outside: set the pixels of the box outside the (margin-grown) breast region to the
            background level; for images only, not for masks cropped alongside.
        min_relative_area: least area, relative to the largest, of a further component kept
            as part of the breast (e.g. a breast split by a dark band).

    Raises:
        ValueError: a parameter is out of range.
    """

    def __init__(
        self,
        margin: int = 16,
        working_size: int = 512,
        min_threshold: float = 0.05,
        opening_size: int = 5,
        min_area: float = 0.01,
        chest_wall: str | None = None,
        line_width: float = 0.04,
        border_band: float = 0.02,
        min_relative_area: float = 0.1,
        blank_outside: bool = False,
    ) -> None:
        if margin < 0:
            raise ValueError(f"margin must be non-negative, got {margin}.")
        if working_size < 1:
            raise ValueError(f"working_size must be positive, got {working_size}.")
        if chest_wall not in (None, *_CHEST_WALL_SIDES):
            raise ValueError(f"chest_wall must be None, 'left' or 'right', got {chest_wall!r}.")
        for name, value in (("line_width", line_width), ("border_band", border_band)):
            if not 0.0 <= value < 0.5:
                raise ValueError(f"{name} must be in [0, 0.5), got {value}.")
        if not 0.0 <= min_relative_area <= 1.0:
            raise ValueError(f"min_relative_area must be in [0, 1], got {min_relative_area}.")
        self.margin = margin
        self.working_size = working_size
        self.min_threshold = min_threshold
        self.opening_size = opening_size
        self.min_area = min_area
        self.chest_wall = chest_wall
        self.line_width = line_width
        self.border_band = border_band
        self.min_relative_area = min_relative_area
        self.blank_outside = blank_outside

    def __call__(self, image, source: str | None = None, scale: float | None = None):
        """
        `image` cropped to its breast bounding box (and blanked outside the breast with `blank_outside`).

        Args:
            image: channel-first image ``(C, H, W)`` with intensities in [0, 1].
            source: what the image came from (a file name), for the fallback warning.
            scale: the image's size relative to its source (``2**-reduce_level``, :func:`source_scale`);
                None: 1, the source's resolution.

        Returns:
            The cropped image, or `image` itself when no breast is found.
        """
        found = self.locate(image, source, scale)
        if found is None:
            return image
        cropped = self.crop(image, found.box)
        return self.blank(cropped, found, image.shape[-2:], overwrite=True) if self.blank_outside else cropped

    def compute_bounding_box(self, image, scale: float | None = None) -> Box | None:
        """
        Find the breast bounding box of `image` without cropping.

        Args:
            image: channel-first image ``(C, H, W)`` with intensities in [0, 1].
            scale: the image's size relative to its source (see :meth:`__call__`).

        Returns:
            ``(y0, y1, x0, x1)`` in pixels of `image` (end-exclusive, margin included),
            or ``None`` if no breast was found (see :meth:`report_fallback`).
        """
        found = self.locate(image, scale=scale)
        return None if found is None else found.box

    def locate(self, image, source: str | None = None, scale: float | None = None) -> BreastLocation | None:
        """Find the breast: its box, its region on the working copy, the background level and the margin.

        Args:
            image: channel-first image ``(C, H, W)`` with intensities in [0, 1].
            source: what the image came from (a file name), for the fallback warning.
            scale: the image's size relative to its source (see :meth:`__call__`).

        Returns:
            The :class:`BreastLocation`, or None when no breast is found (after :meth:`report_fallback`).

        Raises:
            ValueError: `image` is not ``(C, H, W)``, or `scale` is not positive.
        """
        image = np.asarray(image, dtype=np.float32)
        if image.ndim != 3:
            raise ValueError(f"expected a channel-first 2D image (C, H, W), got shape {image.shape}.")
        scale = 1.0 if scale is None else float(scale)
        if not scale > 0.0:
            raise ValueError(f"scale must be positive (2**-reduce_level), got {scale}.")
        source = source or f"an image of shape {tuple(image.shape)}"
        height, width = image.shape[1:]
        gray = image.mean(axis=0) if image.shape[0] > 1 else image[0]
        shrink = min(1.0, self.working_size / max(height, width))
        small_w, small_h = max(1, round(width * shrink)), max(1, round(height * shrink))
        if shrink < 1.0:
            gray = _downscale(gray, (small_h, small_w))
        if float(gray.max()) - float(gray.min()) <= self.min_threshold:
            reason = f"its intensities span less than min_threshold={self.min_threshold} (blank or constant image)"
            self.report_fallback(source, reason)
            return None
        mask, background = self._foreground(gray)
        thick = _drop_thin(mask, self.line_width)
        chest_wall = self.chest_wall
        if chest_wall is None:
            chest_wall = "right" if needs_flip((gray * thick)[None]) else "left"
        mask = _drop_thin_border_pieces(mask, thick, chest_wall, self.border_band)
        found = self._breast_box(mask, chest_wall)
        if found is None:
            self.report_fallback(
                source,
                f"no bright region of at least min_area={self.min_area} of the image remains once "
                "border lines, elongated, sparse and stray regions are left out",
            )
            return None
        (y0, y1, x0, x1), region = found
        scale_y, scale_x = height / small_h, width / small_w
        margin = self.margin * scale
        box = (
            max(0, int(np.floor(y0 * scale_y - margin))),
            min(height, int(np.ceil(y1 * scale_y + margin))),
            max(0, int(np.floor(x0 * scale_x - margin))),
            min(width, int(np.ceil(x1 * scale_x + margin))),
        )
        return BreastLocation(box, region, background, margin)

    def report_fallback(self, source: str, reason: str) -> None:
        """Say that the image from `source` is kept uncropped because of `reason` (a warning per image)."""
        logger.warning(FALLBACK_MESSAGE, source, reason)

    def _foreground(self, gray: np.ndarray) -> tuple[np.ndarray, float]:
        """Mask of the working copy above the threshold (see the class docstring), opened, and the background."""
        gray8 = np.round(np.clip(gray, 0.0, 1.0) * 255).astype(np.uint8)
        otsu = cv2.threshold(gray8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)[0]
        background = np.bincount(gray8[gray8 <= otsu]).argmax() / 255.0
        mask = (gray > background + self.min_threshold).astype(np.uint8)
        if self.opening_size > 0:
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (self.opening_size, self.opening_size))
            mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
        return mask, float(background)

    def _breast_box(self, mask: np.ndarray, chest_wall: str) -> tuple[Box, np.ndarray] | None:
        """``(y0, y1, x0, x1)`` on the working copy of the components that make up the breast, and their mask."""
        labels, stats = cv2.connectedComponentsWithStats(mask, connectivity=8)[1:3]
        stats = stats[1:].astype(np.int64)
        x, y, w, h, area = stats.T
        elongated = np.maximum(w, h) >= _MAX_ASPECT * np.minimum(w, h)
        sparse = area < _MIN_FILL * w * h
        valid = (area >= self.min_area * mask.size) & ~elongated & ~sparse
        edges = _edges(stats, mask.shape, chest_wall, self.border_band)
        candidates = valid & edges["chest_wall"]
        if not candidates.any():
            candidates = valid & ~(edges["top"] | edges["bottom"] | edges["far"])
        if not candidates.any():
            return None
        keep = candidates & (area >= self.min_relative_area * area[candidates].max())
        box = int(y[keep].min()), int((y + h)[keep].max()), int(x[keep].min()), int((x + w)[keep].max())
        return box, np.concatenate([[False], keep])[labels]

    @staticmethod
    def crop(image: np.ndarray, box: Box | None) -> np.ndarray:
        """
        `image` cropped to `box`, as a new contiguous array (a copy even when `box` is the whole image).

        Args:
            image: channel-first image ``(C, H, W)``.
            box: ``(y0, y1, x0, x1)`` as returned by :meth:`compute_bounding_box`;
                ``None`` returns `image` unchanged.
        """
        if box is None:
            return image
        y0, y1, x0, x1 = box
        return np.array(np.asarray(image)[:, y0:y1, x0:x1], order="C")

    def blank(
        self, cropped: np.ndarray, location: BreastLocation, shape: tuple[int, int], overwrite: bool = False
    ) -> np.ndarray:
        """`cropped` with the pixels farther than the margin from the breast region set to the background.

        Args:
            cropped: the image cropped to ``location.box``.
            location: what :meth:`locate` found on the whole image.
            shape: ``(H, W)`` of the whole image.
            overwrite: blank `cropped` itself (the new array :meth:`crop` returned) instead of a copy.
        """
        image = np.asarray(cropped) if overwrite else np.array(cropped, copy=True)
        np.copyto(image, location.background, casting="unsafe", where=_outside(location, shape))
        return image


def _outside(location: BreastLocation, shape: tuple[int, int]) -> np.ndarray:
    """Boolean mask of the pixels of ``location.box`` farther than ``location.margin`` from the breast region.

    The region is grown on the working copy, then upsampled by nearest neighbour over the box
    alone: along the columns for every working row (a few hundred rows), then each row of the box
    takes the upsampled working row that OpenCV's nearest-neighbour resize of the whole mask would
    (the row map is that resize of the row numbers), so the mask is the box of the full-size
    resize without making the full-size one.
    """
    height, width = int(shape[0]), int(shape[1])
    region = location.region
    grow = int(np.ceil(location.margin * region.shape[1] / width)) + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    outside = 1 - cv2.dilate(region.astype(np.uint8), kernel)
    y0, y1, x0, x1 = location.box
    columns = cv2.resize(outside, (width, outside.shape[0]), interpolation=cv2.INTER_NEAREST)[:, x0:x1]
    working_rows = np.arange(outside.shape[0], dtype=np.int32)[:, None]
    rows = cv2.resize(working_rows, (1, height), interpolation=cv2.INTER_NEAREST)[y0:y1, 0]
    return columns[rows].view(bool)


def _downscale(gray: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-average `gray` down to `size` ``(rows, columns)``.

    Halving first (OpenCV's fast path for a factor of 2) and then resizing the rest of the
    way is 2-3 times faster than one area resize from full resolution, with the same footprint.
    """
    while gray.shape[0] >= 2 * size[0] and gray.shape[1] >= 2 * size[1]:
        gray = cv2.resize(gray, (gray.shape[1] // 2, gray.shape[0] // 2), interpolation=cv2.INTER_AREA)
    return cv2.resize(gray, (size[1], size[0]), interpolation=cv2.INTER_AREA)


def _drop_thin(mask: np.ndarray, line_width: float) -> np.ndarray:
    """Pixels of `mask` in a horizontal and a vertical run of at least `line_width` of the width/height.

    An opening with a line segment keeps exactly the pixels of runs at least as long as the
    segment; a line thinner than the segments, in any orientation, fails one of the two.
    Outside the image counts as background, so a band along an edge is as thin as it looks.
    """
    if line_width <= 0:
        return mask
    height, width = mask.shape
    runs = []
    for segment in ((1, max(1, round(line_width * width))), (max(1, round(line_width * height)), 1)):
        kernel = np.ones(segment, np.uint8)
        runs.append(cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0))
    return runs[0] & runs[1]


def _drop_thin_border_pieces(
    mask: np.ndarray, thick: np.ndarray, chest_wall: str, border_band: float
) -> np.ndarray:
    """Remove the thin parts of `mask` (not in `thick`) that are border lines rather than breast.

    A thin piece is a border line if it reaches the edge opposite the chest wall, spans from
    the top to the bottom, or reaches the top or bottom and leaves the chest-wall band (the
    breast's skin folds meet the top or bottom only right at the chest wall).
    """
    n_labels, labels, stats, _ = cv2.connectedComponentsWithStats(mask - thick, connectivity=8)
    if n_labels < 2:
        return mask
    edges = _edges(stats[1:], mask.shape, chest_wall, border_band)
    line = edges["far"] | (edges["top"] & edges["bottom"])
    line |= (edges["top"] | edges["bottom"]) & ~edges["within_chest_wall_band"]
    drop = np.concatenate([[False], line])
    return np.where(drop[labels], 0, mask).astype(np.uint8)


def _edges(stats: np.ndarray, shape: tuple[int, int], chest_wall: str, border_band: float) -> dict[str, np.ndarray]:
    """Where components lie relative to the image edges, from their OpenCV stats rows.

    Returns:
        Boolean arrays: ``top``, ``bottom`` and ``far`` (the edge opposite the chest wall):
        within `border_band` of that edge; ``chest_wall``: reaching into the chest-wall band;
        ``within_chest_wall_band``: lying entirely inside it.
    """
    height, width = shape
    x, y, w, h = (stats[:, i] for i in range(4))
    start, end = (x, x + w) if chest_wall == "left" else (width - x - w, width - x)  # from the chest wall
    band, chest_band = border_band * width, _CHEST_WALL_BAND * width
    return {
        "top": y <= border_band * height,
        "bottom": y + h >= height - border_band * height,
        "far": end >= width - band,
        "chest_wall": start <= chest_band,
        "within_chest_wall_band": end <= chest_band,
    }
