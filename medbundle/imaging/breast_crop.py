"""Find the breast on a mammogram and crop to its bounding box (plain numpy and OpenCV).

Screening mammograms are mostly empty background, and often carry burned-in labels
(laterality/view markers, text), markers and stickers; scanned films add a dark border around the
film, film edges, frames, rulers and tape. Cropping to the breast before resizing spends the
network's input pixels on tissue and removes these, which would otherwise be an easy shortcut for
the classifier. :class:`medbundle.transforms.BreastCrop` wraps :class:`BreastCropper` for MONAI.

The breast is found from the tissue itself, never from where the image edges are: on a digitised
film the breast meets the film's edge, which can lie anywhere inside the image, and labels can be
brighter than a fatty breast. A crop that finds no breast keeps the whole image and says why
(:meth:`BreastCropper.find`); :func:`crop_record` turns either outcome into one row of a crop report.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, NamedTuple

import cv2
import numpy as np

__all__ = ["FALLBACK_MESSAGE", "Box", "BreastCropper", "BreastLocation", "crop_record", "source_scale"]

Box = tuple[int, int, int, int]

logger = logging.getLogger(__name__)

_CHEST_WALL_SIDES = ("left", "right")
# The breast's skin folds meet the top or bottom edge only this close (a fraction of the width) to
# its chest-wall edge; thin pieces there are breast, thin pieces farther out are film edges or rulers.
_CHEST_WALL_BAND = 0.1
# Rulers and film edges have elongated boxes; frames have boxes that they barely fill.
# A breast's box has an aspect ratio below ~4 and is more than half filled.
_MAX_ASPECT = 6.0
# Background is flat: a local standard deviation (5x5 working pixels) under this; tissue's is 10-30 times more.
_FLAT = 1.5 / 255
# A film base brighter than the dark border around the film covers at least this much of the image.
_FILM_BASE = 0.01
# The background surface is smoothed from background pixels at least this far (a fraction of the longest side)
# from the breast found at the background's median level.
_BREAST_CLEARANCE = 0.02
_MIN_FILL = 0.2
# The chest wall is the side of the breast where it is tallest (cut by the detector or film edge),
# measured over this fraction of its width at each end; the nipple side tapers.
_PROFILE_BAND = 0.1
# Markers: bright objects (regions above _MARKER_EXTENT of the way from the background to the brightest
# pixel, holding one above _MARKER_LEVEL) no larger than _MARKER_AREA of the image whose surroundings, a
# ring _MARKER_RING of the image side wide, are on average no more than _MARKER_SURROUND as far above the
# background as the object is.
_MARKER_EXTENT = 0.5
_MARKER_RIM = 0.25  # a marker's dimmer strokes and edges, above this fraction, go with it
_MARKER_LEVEL = 0.75
_MARKER_AREA = 0.03
_MARKER_RING = 0.02
_MARKER_SURROUND = 0.25
_MARKER_OPEN = 0.5  # at least this share of a marker's surroundings is background, not tissue
_MARKER_FILL = 0.85  # a label is a rectangle: then a surround up to twice as bright still makes it one
_MARKER_SIDE = 3  # working pixels: a thinner streak is a line, not a label
#: the warning logged when no breast is found: formatted with the image's source and the reason
FALLBACK_MESSAGE = (
    "BreastCrop found no breast in %s: %s; the whole image is kept. Check that it is a mammogram "
    "with dense tissue bright (MONOCHROME1 inverted), or lower min_threshold/min_breast_area."
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
    #: the side of the chest wall, ``"left"`` or ``"right"``, as found from the tissue (or given)
    chest_wall: str = "left"
    #: boolean mask, on the working copy, of labels and markers touching the breast (blanked, never cropped to)
    markers: np.ndarray | None = None


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


def crop_record(location: BreastLocation | None, reason: str, shape: tuple[int, int]) -> dict[str, Any]:
    """One row of a crop report: whether the breast was found, why not, and the box relative to the image.

    Plain Python values only, so the record can travel in a data item through a disk cache
    (``torch.load(weights_only=True)``) and a DataLoader's collation.

    Args:
        location: what :meth:`BreastCropper.find` returned; None when the whole image was kept.
        reason: why no breast was found ("" when one was).
        shape: ``(H, W)`` of the image.

    Returns:
        ``found``, ``reason``, ``chest_wall`` ("" when not found), the ``box`` ``[y0, y1, x0, x1]`` (the whole
        image when not found), ``height`` and ``width`` of the image, and ``box_height``, ``box_width`` and
        ``box_area``: the box's height, width and area as fractions of the image's.
    """
    height, width = int(shape[0]), int(shape[1])
    y0, y1, x0, x1 = (0, height, 0, width) if location is None else (int(v) for v in location.box)
    return {
        "found": location is not None,
        "reason": reason,
        "chest_wall": "" if location is None else location.chest_wall,
        "box": [y0, y1, x0, x1],
        "height": height,
        "width": width,
        "box_height": (y1 - y0) / height,
        "box_width": (x1 - x0) / width,
        "box_area": (y1 - y0) * (x1 - x0) / (height * width),
    }


class BreastCropper:
    """
    Crop a channel-first 2D image ``(C, H, W)`` to the bounding box of the breast.

    The input must show dense tissue bright on a dark background (MONOCHROME1 inverted,
    as :func:`medbundle.io.dicom.read_dicom` does). The breast is found on a copy
    downscaled so that its longest side is ``working_size`` (full-resolution mammograms
    are 2000-5000 px; the box only needs to be accurate to a few pixels). Every rule reads the
    tissue, none the image edges' position: on a digitised film the breast ends at the film's
    edge, inside a dark border, and labels may be brighter than a fatty breast.

    1. Background: the dark (at most Otsu's threshold) and flat (5x5 standard deviation under
       1.5/255) pixels; tissue is textured even where it is as dark. Their level, smoothed over an
       eighth of the image, is a background surface that follows a grey film base or one brighter at
       one end. On a film inside a dark border (full border columns or rows ending at the film's
       straight edge) a base brighter than the border is the background, not the border.
    2. Threshold: pixels at least `min_threshold` above the surface count; an opening with a disc of
       `opening_size` removes specks and detaches text joined to the breast by thin lines.
    3. Markers: bright objects (labels, stickers, lead letters, film numbers) much brighter than their
       surroundings and lying on the background, however bright, are taken out of the mask, so that
       one touching the skin line neither joins the breast nor stretches its box.
    4. Breast: pixels in a horizontal run shorter than `line_width` of the width, or in a vertical
       run shorter than `line_width` of the height, are thin (lines, rulers, film edges, text). Of
       the 8-connected regions of the rest, those smaller than `min_area` of the image, elongated
       ones (rulers, film edge strips) and sparse ones (frames) are dropped; the breast is the
       largest one left, whatever edges it touches (with `chest_wall` given: the largest reaching
       into that half of the image).
    5. Chest-wall side: `chest_wall`, or else the end of the breast where it is tallest: the
       breast is cut straight by the detector or film edge at the chest wall and tapers to the nipple.
    6. Border structures: thin pieces that reach the edge opposite the chest wall, narrow lines from
       the top to the bottom, and pieces running along the top or bottom edge are removed: film frames
       and edges, rulers and tape, even where they touch the breast. The breast's own thin parts (the
       nipple, the skin line, the tissue narrowing to the chest wall) are kept. Further regions of at
       least `min_relative_area` of the breast's area whose chest-wall end lies within a tenth of the
       width of the breast's (a breast split by a dark band) are part of it; regions anywhere else
       (the other breast, film edges, labels) are not.
    7. Skin: the breast thins towards the skin and fades into the background below the threshold;
       pixels within `skin_reach` of the breast and at least `skin_threshold` above the background
       just beyond it are added (:func:`_grow_into_skin`).
    8. A breast smaller than `min_breast_area` of the image is no breast (a label, a marker or a
       film edge was all that remained): the image is kept whole and the reason given.
    9. Box: the breast's bounding box is mapped back to the image's resolution, grown by `margin`
       on every side and clipped to the image.
    10. With `blank_outside`, pixels of the box farther than `margin` from the breast region, and the
        markers touching it, are set to the background level: a box is a rectangle, so a ruler or
        label lying beside the breast in the same rows (e.g. next to a pectoral muscle reaching the
        top) would otherwise stay in it. The masks are upsampled (nearest neighbour) over the box only.

    `margin` is in pixels of the source image. An image decoded at a reduced resolution (JPEG 2000
    at ``reduce_level`` L, :func:`medbundle.io.dicom.read_dicom`) is given with ``scale=2**-L``
    (:func:`source_scale` of its metadata), and the margin shrinks with it, so the box covers the
    same part of the breast as at full resolution. The other parameters are relative to the
    image size or apply to the working copy, which is the same for both.

    If the intensities span less than `min_threshold` (a blank or constant image) or no
    breast remains, the input is returned unchanged and :meth:`report_fallback` logs why
    (here a warning per image; the MONAI transform counts them for the run's crop report).

    Args:
        margin: pixels of the source image (at full resolution) added around the bounding box on each side.
        working_size: longest side, in pixels, of the downscaled copy used to find the mask.
            Images already smaller than this are used as they are.
        min_threshold: how much brighter than the background a pixel must be to count, and
            the least intensity span of an image with a breast, in input intensity units ([0, 1]).
        opening_size: diameter, in pixels of the downscaled copy, of the elliptical
            structuring element of the opening. 0 disables the opening.
        min_area: minimum area of a kept region as a fraction of the image area.
        chest_wall: ``"left"`` or ``"right"`` where the chest wall is known to be (e.g. after
            a canonical flip); ``None`` decides from the pixels.
        line_width: structures thinner than this fraction of the image's width (for vertical
            ones) or height (for horizontal ones) count as lines.
            Bands thicker than this, such as wide film edges, are handled as regions. 0
            disables the removal of border lines.
        border_band: distance from an edge, as a fraction of the image side, within which a
            region counts as touching that edge.
        blank_outside: set the pixels of the box outside the (margin-grown) breast region, and the
            markers touching it, to the background level; for images only, not for masks cropped alongside.
        min_relative_area: least area, relative to the breast, of a further region at its chest-wall
            edge kept as part of it (a breast split by a dark band).
        min_breast_area: least area of the breast as a fraction of the image; anything smaller is a
            failure to find it (a label or marker), not a crop.
        skin_reach: how far beyond the thresholded breast its faint skin edge is followed, as a fraction
            of the longest side; 0 disables it.
        skin_threshold: how much brighter than the background just beyond it a pixel of the skin edge is,
            in input intensity units.

    Raises:
        ValueError: a parameter is out of range.
    """

    #: bumped when the crop of an image changes for the same settings, so disk caches are rebuilt
    cache_version = 2

    def __init__(
        self,
        margin: int = 16,
        working_size: int = 256,
        min_threshold: float = 0.05,
        opening_size: int = 5,
        min_area: float = 0.01,
        chest_wall: str | None = None,
        line_width: float = 0.04,
        border_band: float = 0.02,
        min_relative_area: float = 0.1,
        blank_outside: bool = False,
        min_breast_area: float = 0.05,
        skin_reach: float = 0.04,
        skin_threshold: float = 0.01,
    ) -> None:
        if margin < 0:
            raise ValueError(f"margin must be non-negative, got {margin}.")
        if working_size < 1:
            raise ValueError(f"working_size must be positive, got {working_size}.")
        if chest_wall not in (None, *_CHEST_WALL_SIDES):
            raise ValueError(f"chest_wall must be None, 'left' or 'right', got {chest_wall!r}.")
        for name, value in (("line_width", line_width), ("border_band", border_band), ("skin_reach", skin_reach)):
            if not 0.0 <= value < 0.5:
                raise ValueError(f"{name} must be in [0, 0.5), got {value}.")
        for name, value in (("min_relative_area", min_relative_area), ("min_breast_area", min_breast_area)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}.")
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
        self.min_breast_area = min_breast_area
        self.skin_reach = skin_reach
        self.skin_threshold = skin_threshold

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
        return image if found is None else self.apply(image, found)

    def apply(self, image, location: BreastLocation):
        """`image` cropped to ``location.box``, and blanked outside the breast with `blank_outside`."""
        cropped = self.crop(image, location.box)
        return self.blank(cropped, location, image.shape[-2:], overwrite=True) if self.blank_outside else cropped

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
        """Find the breast (:meth:`find`), and :meth:`report_fallback` when there is none.

        Args:
            image: channel-first image ``(C, H, W)`` with intensities in [0, 1].
            source: what the image came from (a file name), for the fallback warning.
            scale: the image's size relative to its source (see :meth:`__call__`).

        Returns:
            The :class:`BreastLocation`, or None when no breast is found.
        """
        found, reason = self.find(image, scale)
        if found is None:
            self.report_fallback(self.source_name(image, source), reason)
        return found

    def source_name(self, image, source: str | None = None) -> str:
        """What a warning calls `image`: `source` (a file name), else its shape."""
        return source or f"an image of shape {tuple(np.shape(image))}"

    def find(self, image, scale: float | None = None) -> tuple[BreastLocation | None, str]:
        """Find the breast: its box, its region on the working copy, the background level and the margin.

        Args:
            image: channel-first image ``(C, H, W)`` with intensities in [0, 1].
            scale: the image's size relative to its source (see :meth:`__call__`).

        Returns:
            ``(location, "")``, or ``(None, reason)`` when no breast is found, the reason in words.

        Raises:
            ValueError: `image` is not ``(C, H, W)``, or `scale` is not positive.
        """
        image = np.asarray(image, dtype=np.float32)
        if image.ndim != 3:
            raise ValueError(f"expected a channel-first 2D image (C, H, W), got shape {image.shape}.")
        scale = 1.0 if scale is None else float(scale)
        if not scale > 0.0:
            raise ValueError(f"scale must be positive (2**-reduce_level), got {scale}.")
        height, width = image.shape[1:]
        gray = image.mean(axis=0) if image.shape[0] > 1 else image[0]
        shrink = min(1.0, self.working_size / max(height, width))
        small_w, small_h = max(1, round(width * shrink)), max(1, round(height * shrink))
        if shrink < 1.0:
            gray = _downscale(gray, (small_h, small_w))
        if float(gray.max()) - float(gray.min()) <= self.min_threshold:
            return None, f"blank or constant image (its intensities span less than min_threshold={self.min_threshold})"
        mask, surface, background = self._foreground(gray)
        markers = _markers(gray, background, mask.astype(bool))
        mask[markers] = 0
        thick = _drop_thin(mask, self.line_width)
        core = self._largest_region(thick)
        if core is None:
            return None, (
                f"no bright region left (none of min_area={self.min_area} of the image once lines, markers, "
                "elongated and sparse regions are left out)"
            )
        chest_wall = self.chest_wall or _chest_wall_side(core, gray)
        mask = _drop_thin_border_pieces(mask, thick, chest_wall, self.border_band)
        region = _fill_holes(self._breast(mask, core, chest_wall))
        if self.skin_reach > 0:
            limit = surface + self.min_threshold
            region = _grow_into_skin(gray, region, limit, markers, self.skin_reach, self.skin_threshold)
        if region.mean() < self.min_breast_area:
            return None, (
                f"region too small for a breast ({region.mean():.1%} of the image, under "
                f"min_breast_area={self.min_breast_area}): a label, marker or film edge?"
            )
        rows, columns = np.flatnonzero(region.any(axis=1)), np.flatnonzero(region.any(axis=0))
        scale_y, scale_x = height / small_h, width / small_w
        margin = self.margin * scale
        box = (
            max(0, int(np.floor(rows[0] * scale_y - margin))),
            min(height, int(np.ceil((rows[-1] + 1) * scale_y + margin))),
            max(0, int(np.floor(columns[0] * scale_x - margin))),
            min(width, int(np.ceil((columns[-1] + 1) * scale_x + margin))),
        )
        touching = _touching(markers, region, max(1, round(_MARKER_RING * max(region.shape))))
        return BreastLocation(box, region, background, margin, chest_wall, touching if touching.any() else None), ""

    def report_fallback(self, source: str, reason: str) -> None:
        """Say that the image from `source` is kept uncropped because of `reason` (a warning per image)."""
        logger.warning(FALLBACK_MESSAGE, source, reason)

    def _foreground(self, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """Mask of the working copy above the background by `min_threshold`, opened; the background surface
        and its typical level.

        Background is what is dark and flat (:func:`_flat_background`); on a digitised film inside a dark
        border (:func:`_inside_border`) whose base is brighter than the border, the base without the border.
        A first mask above the background's median finds where the breast is; the surface is then smoothed
        from the background pixels away from it, so it follows a film base brighter at one end, but never
        rises under the breast, where smooth fat can look as flat as background.
        """
        flat = _flat_background(gray)
        border = gray <= float(gray.min()) + 0.5 / 255
        if _inside_border(border) and (flat & ~border).sum() >= _FILM_BASE * gray.size:
            flat &= ~border
        level = float(np.median(gray[flat]))
        first = self._opened(gray > level + self.min_threshold)
        n_labels, labels, stats, _ = cv2.connectedComponentsWithStats(first, connectivity=8)
        if n_labels > 1:
            reach = 2 * max(1, round(_BREAST_CLEARANCE * max(gray.shape))) + 1
            breast = (labels == 1 + int(stats[1:, 4].argmax())).astype(np.uint8)
            away = flat & ~cv2.dilate(breast, np.ones((reach, reach), np.uint8)).astype(bool)
            if away.sum() >= _FILM_BASE * gray.size:
                flat = away
        surface = _smooth_fill(gray, flat, max(gray.shape) / 8)
        surface = np.where(np.isfinite(surface), surface, level).astype(np.float32)
        return self._opened(gray > surface + self.min_threshold), surface, level

    def _opened(self, mask: np.ndarray) -> np.ndarray:
        """`mask` as uint8, opened with a disc of `opening_size` (specks and thin joins removed)."""
        mask = mask.astype(np.uint8)
        if self.opening_size > 0:
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (self.opening_size, self.opening_size))
            mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
        return mask

    def _largest_region(self, mask: np.ndarray) -> np.ndarray | None:
        """The largest region of `mask` that can be a breast (big enough, neither elongated nor sparse), or None.

        With `chest_wall` given, only regions reaching into that half of the image count.
        """
        labels, stats = cv2.connectedComponentsWithStats(mask, connectivity=8)[1:3]
        valid = _plausible(stats[1:].astype(np.int64), self.min_area * mask.size)
        if self.chest_wall is not None:
            x, w = stats[1:, 0], stats[1:, 2]
            half = mask.shape[1] / 2
            valid &= x < half if self.chest_wall == "left" else x + w > half
        if not valid.any():
            return None
        areas = np.where(valid, stats[1:, 4], -1)
        return labels == 1 + int(areas.argmax())

    def _breast(self, mask: np.ndarray, core: np.ndarray, chest_wall: str) -> np.ndarray:
        """The region of `mask` holding `core`, with further plausible regions at its chest-wall edge."""
        labels, stats = cv2.connectedComponentsWithStats(mask, connectivity=8)[1:3]
        main = int(np.bincount(labels[core]).argmax())
        stats = stats.astype(np.int64)
        keep = np.zeros(len(stats), bool)
        keep[main] = True
        x, w, area = stats[:, 0], stats[:, 2], stats[:, 4]
        edge = x if chest_wall == "left" else x + w  # each region's end nearest the chest wall
        near = np.abs(edge - edge[main]) <= _CHEST_WALL_BAND * mask.shape[1]
        plausible = np.concatenate([[False], _plausible(stats[1:], self.min_area * mask.size)])
        keep |= plausible & near & (area >= self.min_relative_area * area[main])
        return keep[labels]

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
        """`cropped` with the pixels farther than the margin from the breast region, and markers, set to the background.

        Args:
            cropped: the image cropped to ``location.box``.
            location: what :meth:`locate` found on the whole image.
            shape: ``(H, W)`` of the whole image.
            overwrite: blank `cropped` itself (the new array :meth:`crop` returned) instead of a copy.
        """
        image = np.asarray(cropped) if overwrite else np.array(cropped, copy=True)
        np.copyto(image, location.background, casting="unsafe", where=_outside(location, shape))
        return image


def _flat_background(gray: np.ndarray) -> np.ndarray:
    """The pixels that look like background: at most Otsu's threshold and flat, a local standard deviation (5x5)
    under _FLAT (tissue is textured even where it is as dark, as fatty tissue under a dense breast's Otsu split).
    All pixels up to Otsu's threshold when none is flat."""
    gray8 = np.round(np.clip(gray, 0.0, 1.0) * 255).astype(np.uint8)
    dark = gray8 <= cv2.threshold(gray8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)[0]
    mean = cv2.blur(gray, (5, 5))
    spread = np.sqrt(np.maximum(cv2.blur(gray * gray, (5, 5)) - mean * mean, 0.0))
    flat = dark & (spread < _FLAT)
    return flat if flat.any() else dark


def _inside_border(border: np.ndarray) -> bool:
    """Whether the image is a digitised film inside a dark border: full columns (or rows) of the border's
    level along an image edge, ending at a straight edge where the film, not the border, fills the next
    columns (rows) from top to bottom. A digital detector's background ends at the breast's curved
    outline instead, so the column after its last full one is still mostly background."""
    for fraction in (border.mean(axis=0), border.mean(axis=1)):
        for line in (fraction, fraction[::-1]):
            full = int(np.argmin(line >= 0.95)) if not line.all() else 0
            if 0 < full and line[full : full + 3].max() <= 0.1:
                return True
    return False


def _plausible(stats: np.ndarray, min_area: float) -> np.ndarray:
    """Which regions (OpenCV stats rows) can be (part of) a breast: big enough, neither elongated nor sparse."""
    w, h, area = stats[:, 2], stats[:, 3], stats[:, 4]
    elongated = np.maximum(w, h) >= _MAX_ASPECT * np.minimum(w, h)
    sparse = area < _MIN_FILL * w * h
    return (area >= min_area) & ~elongated & ~sparse


def _fill_holes(region: np.ndarray) -> np.ndarray:
    """`region` with every hole it encloses filled: tissue inside the breast darker than the threshold (fat), or a
    marker taken out of it, is breast, and must not be blanked."""
    outside = np.pad(~region, 1, constant_values=True).astype(np.uint8)
    cv2.floodFill(outside, None, (0, 0), 2)
    return outside[1:-1, 1:-1] != 2


def _columns(region: np.ndarray) -> tuple[int, int]:
    """First and end-exclusive last column of a non-empty mask."""
    columns = np.flatnonzero(region.any(axis=0))
    return int(columns[0]), int(columns[-1]) + 1


def _chest_wall_side(region: np.ndarray, gray: np.ndarray) -> str:
    """The side where the breast `region` is tallest: its chest wall, cut straight, while the nipple side tapers.

    The heights are compared over a tenth of the region's width at each end; when they are within 20 %
    of each other (a breast filling the image), the half of the region holding more intensity wins.
    """
    x0, x1 = _columns(region)
    heights = region[:, x0:x1].sum(axis=0, dtype=np.int64)
    band = max(1, round(_PROFILE_BAND * (x1 - x0)))
    left, right = heights[:band].mean(), heights[-band:].mean()
    if max(left, right) >= 1.2 * min(left, right):
        return "left" if left > right else "right"
    tissue = np.where(region, gray, 0.0)[:, x0:x1]
    half = (x1 - x0) // 2
    return "right" if tissue[:, x1 - x0 - half :].sum() > tissue[:, :half].sum() else "left"


def _grow_into_skin(
    gray: np.ndarray, region: np.ndarray, limit: np.ndarray, markers: np.ndarray, reach: float, threshold: float
) -> np.ndarray:
    """`region` grown into the faint skin edge around it: the fade from tissue to film or detector background.

    The breast thins towards the skin, so its edge fades into the background over a few millimetres,
    below the threshold that finds it robustly. Pixels within `reach` (a fraction of the longest side) of
    the region, no brighter than `limit` (brighter ones were left out for a reason: lines, markers, other
    regions), at least `threshold` above the local background and connected to the region are added. The
    local background is the background around the region, just beyond `reach`, smoothed over the image:
    it follows a film base brighter at one end than the other. The dark border around a digitised film
    (the image's lowest level) is left out of it when the film base around the breast is brighter.
    """
    reach_px = max(1.0, reach * max(gray.shape))
    distance = cv2.distanceTransform((~region).astype(np.uint8), cv2.DIST_L2, 3)
    band = (distance > 0) & (distance <= reach_px) & (gray <= limit) & ~markers
    ring = (distance > reach_px) & (distance <= 2 * reach_px) & (gray <= limit) & ~markers
    border = gray <= float(gray.min()) + 0.5 / 255
    if (ring & ~border).sum() >= 0.2 * ring.sum():
        ring &= ~border
    if not ring.any() or not band.any():
        return region
    local = _smooth_fill(gray, ring, reach_px)
    faint = (band & (gray > local + threshold)).astype(np.uint8)
    faint = cv2.morphologyEx(faint, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n_labels, labels = cv2.connectedComponents(faint | region.astype(np.uint8), connectivity=8)
    keep = np.zeros(n_labels, bool)
    keep[np.unique(labels[region])] = True
    keep[0] = False
    return keep[labels]


def _smooth_fill(gray: np.ndarray, known: np.ndarray, sigma: float) -> np.ndarray:
    """`gray` averaged over the `known` pixels with a Gaussian of `sigma`, everywhere (normalised convolution).

    Computed on a copy four times smaller and upsampled: the background varies slowly. Where no known
    pixel is near, the result is +inf.
    """
    factor = 4
    small = (max(1, gray.shape[1] // factor), max(1, gray.shape[0] // factor))
    weight = cv2.resize(known.astype(np.float32), small, interpolation=cv2.INTER_AREA)
    value = cv2.resize(np.where(known, gray, 0.0).astype(np.float32), small, interpolation=cv2.INTER_AREA)
    weight = cv2.GaussianBlur(weight, (0, 0), max(0.5, sigma / factor))
    value = cv2.GaussianBlur(value, (0, 0), max(0.5, sigma / factor))
    local = np.where(weight > 1e-3, value / np.maximum(weight, 1e-3), np.inf).astype(np.float32)
    return cv2.resize(local, (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_LINEAR)


def _markers(gray: np.ndarray, background: float, foreground: np.ndarray) -> np.ndarray:
    """Boolean mask of labels and markers: bright, small objects on a dark surround.

    An object is a region above half the way from the background to the brightest pixel that holds a
    pixel above three quarters of the way, is at least 3 working pixels wide and tall (thinner streaks
    are lines) and covers at most 3 % of the image. A label, a lead letter or a film number lies on the
    background, or at most overlaps the faint skin line: at least half its surroundings are outside the
    `foreground` mask, and they are barely above the background (a rectangular label may lie against
    bright tissue on one side). A mass, dense tissue, the pectoral muscle and calcifications are as
    bright and as compact, but lie within tissue, even where the film's edge cuts them.
    """
    span = float(gray.max()) - background
    bright = (gray >= background + _MARKER_EXTENT * span).astype(np.uint8)
    n_labels, labels, stats, _ = cv2.connectedComponentsWithStats(bright, connectivity=8)
    cores = np.unique(labels[gray >= background + _MARKER_LEVEL * span])
    w, h, area = stats[:, 2], stats[:, 3], stats[:, 4]
    small = (area <= _MARKER_AREA * gray.size) & (np.minimum(w, h) >= _MARKER_SIDE)
    markers = np.zeros(gray.shape, bool)
    ring = max(1, round(_MARKER_RING * max(gray.shape)))
    kernel = np.ones((2 * ring + 1, 2 * ring + 1), np.uint8)
    for index in cores[(cores > 0) & small[cores]]:
        x, y, w, h = stats[index, :4]
        y0, y1 = max(0, y - ring), min(gray.shape[0], y + h + ring)
        x0, x1 = max(0, x - ring), min(gray.shape[1], x + w + ring)
        obj = labels[y0:y1, x0:x1] == index
        around = cv2.dilate(obj.astype(np.uint8), kernel).astype(bool) & ~bright[y0:y1, x0:x1].astype(bool)
        if not around.any():
            continue
        if foreground[y0:y1, x0:x1][around].mean() > 1.0 - _MARKER_OPEN:
            continue  # within tissue: a mass or a calcification, the very signal, never a marker
        window = gray[y0:y1, x0:x1]
        surround = (window[around].mean() - background) / max(window[obj].mean() - background, 1e-6)
        if surround <= _MARKER_SURROUND or surround <= 2 * _MARKER_SURROUND and _rectangular(obj):
            markers[y0:y1, x0:x1] |= _with_rim(obj, window >= background + _MARKER_RIM * span)
    if markers.any():  # the object's anti-aliased edge and letters' counters go with it
        markers = cv2.dilate(markers.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    return markers


def _with_rim(obj: np.ndarray, rim: np.ndarray) -> np.ndarray:
    """`obj` with the pixels of `rim` connected to it: a marker's dimmer strokes and edges."""
    n_labels, labels = cv2.connectedComponents((rim | obj).astype(np.uint8), connectivity=8)
    keep = np.zeros(n_labels, bool)
    keep[np.unique(labels[obj])] = True
    keep[0] = False
    return keep[labels]


def _rectangular(obj: np.ndarray) -> bool:
    """Whether the object, its holes (a label's letters) filled, fills at least 85 % of its bounding box."""
    ys, xs = np.nonzero(obj)
    box = obj[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.uint8)
    outside = np.pad(1 - box, 1, constant_values=1)
    cv2.floodFill(outside, None, (0, 0), 2)
    return float((outside[1:-1, 1:-1] != 2).mean()) >= _MARKER_FILL


def _touching(markers: np.ndarray, region: np.ndarray, distance: int) -> np.ndarray:
    """The markers within `distance` working pixels of the breast `region` (those the margin would keep)."""
    if not markers.any():
        return markers
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * distance + 1, 2 * distance + 1))
    near = cv2.dilate(region.astype(np.uint8), kernel).astype(bool)
    n_labels, labels = cv2.connectedComponents(markers.astype(np.uint8), connectivity=8)
    hit = np.zeros(n_labels, bool)
    hit[np.unique(labels[near & markers])] = True
    hit[0] = False
    return hit[labels]


def _outside(location: BreastLocation, shape: tuple[int, int]) -> np.ndarray:
    """Boolean mask of the pixels of ``location.box`` farther than ``location.margin`` from the breast region,
    or on a marker touching it.

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
    if location.markers is not None:
        outside |= location.markers.astype(np.uint8)
    y0, y1, x0, x1 = location.box
    columns = cv2.resize(outside, (width, outside.shape[0]), interpolation=cv2.INTER_NEAREST)[:, x0:x1]
    working_rows = np.arange(outside.shape[0], dtype=np.int32)[:, None]
    rows = cv2.resize(working_rows, (1, height), interpolation=cv2.INTER_NEAREST)[y0:y1, 0]
    return columns[rows].view(bool)


def _downscale(gray: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`gray` reduced to `size` ``(rows, columns)``: sampled to twice the size, then area-averaged by 2.

    The working copy only has to locate the breast to a working pixel; averaging 2x2 samples of the image
    instead of every pixel under a working pixel reads a fraction of a large mammogram (0.3 instead of
    1.9 ms for 3000x2400 to 512), and the breast, the background and the labels are far larger than the
    gaps between samples.
    """
    rows, cols = size
    if gray.shape[0] >= 2 * rows and gray.shape[1] >= 2 * cols:
        gray = cv2.resize(gray, (2 * cols, 2 * rows), interpolation=cv2.INTER_NEAREST)
    return cv2.resize(gray, (cols, rows), interpolation=cv2.INTER_AREA)


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
    # odd lengths: OpenCV anchors an even kernel off centre, and the opening would then drop the edge row
    lengths = (2 * round(line_width * width / 2) + 1, 2 * round(line_width * height / 2) + 1)
    for segment in ((1, lengths[0]), (lengths[1], 1)):
        kernel = np.ones(segment, np.uint8)
        runs.append(cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0))
    return runs[0] & runs[1]


def _drop_thin_border_pieces(mask: np.ndarray, thick: np.ndarray, chest_wall: str, border_band: float) -> np.ndarray:
    """Remove the thin parts of `mask` (not in `thick`) that are border lines rather than breast.

    A thin piece is a border line if it reaches the edge opposite the chest wall; if it is a narrow
    vertical line from the top to the bottom; or if, within `border_band` of the top or the bottom
    edge, it runs along that edge for more than a tenth of the width: a ruler or a film edge. The
    breast's own thin parts are kept: its skin line, which may run from the top of a film to its
    bottom but only crosses those edges, and the narrow tissue where it meets the chest wall there.
    """
    n_labels, labels, stats, _ = cv2.connectedComponentsWithStats(mask - thick, connectivity=8)
    if n_labels < 2:
        return mask
    height, width = mask.shape
    x, y, w, h = (stats[:, i] for i in range(4))
    far = x + w >= width - border_band * width if chest_wall == "left" else x <= border_band * width
    top, bottom = y <= border_band * height, y + h >= height - border_band * height
    narrow = w <= max(1, round(_CHEST_WALL_BAND * width / 2))
    line = far | (top & bottom & narrow)
    band = max(1, int(np.ceil(border_band * height)))
    for strip in (labels[:band], labels[height - band :]):
        first, last = np.full(n_labels, width), np.full(n_labels, -1)
        columns = np.broadcast_to(np.arange(width), strip.shape)
        np.minimum.at(first, strip, columns)
        np.maximum.at(last, strip, columns)
        line |= last - first >= _CHEST_WALL_BAND * width
    line[0] = False
    return np.where(line[labels], 0, mask).astype(np.uint8)
