"""Decode a 2D DICOM image into a display-ready float32 array in [0, 1].

The pipeline follows the DICOM grayscale pipeline (PS3.4 Annex N) using pydicom's own
implementations so that results match what a standards-conforming viewer shows:

1. decode frame 0 of the pixel data (pydicom + pylibjpeg codecs),
2. modality LUT or Rescale Slope/Intercept,
3. VOI LUT Sequence, else Window Center/Width with the VOI LUT Function
   (LINEAR, LINEAR_EXACT or SIGMOID), always the first view (index 0),
4. scale to [0, 1] and invert MONOCHROME1 so that bright always means dense tissue.
"""

from __future__ import annotations

import os

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels import apply_modality_lut, apply_voi, apply_windowing

__all__ = ["DicomReadError", "read_dicom"]

_MONOCHROME = ("MONOCHROME1", "MONOCHROME2")
_CODEC_HINT = (
    "Install the pixel data decoders: pip install pylibjpeg pylibjpeg-openjpeg pylibjpeg-libjpeg"
    " (JPEG 2000 needs pylibjpeg-openjpeg; JPEG Lossless, JPEG Extended and JPEG-LS need pylibjpeg-libjpeg)."
)
_CORRUPT_HINT = "The compressed pixel data is probably corrupt or truncated: re-export the file or exclude it."


class DicomReadError(RuntimeError):
    """Raised when a DICOM file cannot be read, decoded or converted to an image.

    The message names the file and the underlying reason; the original exception is
    chained as ``__cause__``.
    """


def read_dicom(path: str | os.PathLike) -> tuple[np.ndarray, dict]:
    """Read a grayscale DICOM image as a float32 array in [0, 1] plus technical metadata.

    Scaling is deterministic wherever the file defines a VOI transform, so that identical
    pixel values map to identical intensities across images of a scanner:

    - VOI LUT Sequence: divide by the LUT's nominal output range ``2**bits - 1`` (third
      value of the LUT Descriptor).
    - Window Center/Width: map pydicom's windowing output range ``[y_min, y_max]`` (derived
      from Bits Stored, Pixel Representation and the rescale) onto [0, 1].
    - No VOI information: min-max normalise the modality values (a constant image gives zeros).

    MONOCHROME1 images are then inverted (``1 - x``). The array has the same (rows, columns)
    orientation as pydicom's ``pixel_array``; for multi-frame files only frame 0 is decoded.

    Args:
        path: path to the DICOM file (Part 10 format with a 'DICM' preamble).

    Returns:
        ``(image, meta)``: the (H, W) float32 image and a dict of non-identifying technical
        fields (``filename``, ``modality``, ``photometric_interpretation``,
        ``transfer_syntax_uid``, ``bits_stored``, ``pixel_representation``, ``rows``,
        ``columns``, ``number_of_frames``, ``voi`` ("lut", the VOI LUT Function name, or
        None), ``window_center``, ``window_width``, ``inverted``, ``image_laterality``,
        ``view_position``). Absent values are None so every file yields the same keys.

    Raises:
        DicomReadError: the file is missing, not DICOM, has no or undecodable pixel data,
            is not MONOCHROME1/MONOCHROME2, or carries an invalid VOI/modality transform.
    """
    filename = os.fspath(path)
    try:
        ds = pydicom.dcmread(filename, force=False)
        photometric = str(ds.get("PhotometricInterpretation", ""))
        if photometric not in _MONOCHROME:
            raise ValueError(
                f"Photometric Interpretation {photometric!r} is not supported, only MONOCHROME1 and MONOCHROME2"
            )
        ds.pixel_array_options(index=0)
        image, voi = _to_unit_range(ds.pixel_array, ds)
        inverted = photometric == "MONOCHROME1"
        if inverted:
            image = 1.0 - image
        meta = _technical_meta(ds, filename, voi, inverted)
    except Exception as exc:
        raise DicomReadError(_error_message(filename, exc)) from exc
    return image, meta


def _voi_function(ds: Dataset) -> str | None:
    """Name the VOI transform that ``pydicom.pixels.apply_voi_lut(prefer_lut=True)`` would apply.

    Args:
        ds: the dataset whose VOI LUT module is inspected.
    """
    lut_items = ds.get("VOILUTSequence")
    if lut_items and None not in (lut_items[0].get("LUTDescriptor"), lut_items[0].get("LUTData")):
        return "lut"
    if None not in (ds.get("WindowCenter"), ds.get("WindowWidth")):
        return str(ds.get("VOILUTFunction", "LINEAR")).upper()
    return None


def _to_unit_range(pixels: np.ndarray, ds: Dataset) -> tuple[np.ndarray, str | None]:
    """Apply the modality and VOI transforms to ``pixels`` and scale the result to [0, 1].

    Calls ``apply_voi``/``apply_windowing`` directly (the two branches of ``apply_voi_lut``)
    so that the applied transform, and hence its output range, is known.

    Args:
        pixels: the decoded stored values of one frame.
        ds: the dataset holding the Modality LUT and VOI LUT modules.

    Returns:
        The float32 image in [0, 1] (not yet inverted) and the VOI transform applied.
    """
    values = apply_modality_lut(pixels, ds)
    voi = _voi_function(ds)
    if voi == "lut":
        entries, first_mapped, bits = (int(value) for value in ds.VOILUTSequence[0].LUTDescriptor)
        # Clamp to the LUT's input domain and pass integers: pydicom stores (value - first_mapped)
        # in the LUT's output dtype, so with an 8-bit LUT larger inputs would wrap around instead
        # of taking the last entry, and float input (any Rescale Slope/Intercept) logs a warning.
        last_mapped = first_mapped + (entries or 2**16) - 1
        values = np.clip(np.rint(values.astype(np.float64)), first_mapped, last_mapped).astype(np.int64)
        values = apply_voi(values, ds, index=0)
        low, high = 0.0, float(2**bits - 1)
    elif voi is not None:
        values = apply_windowing(values, ds, index=0)
        # Windowing maps everything below the window to y_min and above it to y_max, for
        # every VOI LUT Function, so probing with -inf/+inf returns pydicom's own output range.
        low, high = apply_windowing(np.array([-np.inf, np.inf]), ds, index=0).tolist()
    else:
        low, high = float(values.min()), float(values.max())
    if high == low:
        return np.zeros(values.shape, dtype=np.float32), voi
    scaled = (values.astype(np.float64) - low) / (high - low)
    return np.clip(scaled, 0.0, 1.0).astype(np.float32), voi


def _first_value(ds: Dataset, keyword: str) -> float:
    """Return the first value of a possibly multi-valued numeric element, as pydicom's index 0 does.

    Args:
        ds: the dataset holding the element.
        keyword: the element keyword, e.g. "WindowCenter".
    """
    value = ds[keyword].value
    return float(value[0] if isinstance(value, MultiValue) else value)


def _optional_str(ds: Dataset, keyword: str) -> str | None:
    """Return an element's value as ``str``, or None when it is absent or empty.

    Args:
        ds: the dataset holding the element.
        keyword: the element keyword.
    """
    value = ds.get(keyword)
    return str(value) if value not in (None, "") else None


def _technical_meta(ds: Dataset, filename: str, voi: str | None, inverted: bool) -> dict:
    """Collect acquisition-technical fields; deliberately no patient, study or device identifiers.

    Args:
        ds: the source dataset.
        filename: the path the dataset was read from.
        voi: the VOI transform applied ("lut", a VOI LUT Function name, or None).
        inverted: whether the image was inverted for MONOCHROME1.
    """
    windowed = voi not in (None, "lut")
    return {
        "filename": filename,
        "modality": _optional_str(ds, "Modality"),
        "photometric_interpretation": str(ds.PhotometricInterpretation),
        "transfer_syntax_uid": str(ds.file_meta.TransferSyntaxUID),
        "bits_stored": int(ds.BitsStored),
        "pixel_representation": int(ds.PixelRepresentation),
        "rows": int(ds.Rows),
        "columns": int(ds.Columns),
        "number_of_frames": int(ds.get("NumberOfFrames") or 1),
        "voi": voi,
        "window_center": _first_value(ds, "WindowCenter") if windowed else None,
        "window_width": _first_value(ds, "WindowWidth") if windowed else None,
        "inverted": inverted,
        "image_laterality": _optional_str(ds, "ImageLaterality") or _optional_str(ds, "Laterality"),
        "view_position": _optional_str(ds, "ViewPosition"),
    }


def _error_message(filename: str, exc: Exception) -> str:
    """Build a ``DicomReadError`` message naming the file, the reason and, where known, the fix.

    The hints key on pydicom's message wording; an unrecognised message just gets no hint.

    Args:
        filename: the file that failed.
        exc: the underlying exception.
    """
    reason = str(exc) or type(exc).__name__
    message = f"Cannot read DICOM file '{filename}': {reason}"
    if "missing dependencies" in reason or "No pixel data decoders" in reason:
        return f"{message}\n{_CODEC_HINT}"
    if "exceptions were raised by all available plugins" in reason:
        return f"{message}\n{_CORRUPT_HINT}"
    return message
