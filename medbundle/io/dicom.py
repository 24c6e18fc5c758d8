"""Decode a 2D DICOM image into a display-ready float32 array in [0, 1].

The pipeline follows the DICOM grayscale pipeline (PS3.4 Annex N) using pydicom's own
implementations so that results match what a standards-conforming viewer shows:

1. decode frame 0 of the pixel data (pydicom + pylibjpeg codecs); JPEG 2000 optionally at a
   reduced resolution when the image is to be shrunk to a known size anyway (see ``read_dicom``),
2. modality LUT or Rescale Slope/Intercept,
3. VOI LUT Sequence, else Window Center/Width with the VOI LUT Function
   (LINEAR, LINEAR_EXACT or SIGMOID), always the first view (index 0),
4. scale to [0, 1] and invert MONOCHROME1 so that bright always means dense tissue.
"""

from __future__ import annotations

import logging
import os
import re
import struct
from collections.abc import Sequence

import numpy as np
import pydicom
from pydicom.datadict import dictionary_description
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.encaps import get_frame
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.pixels import apply_modality_lut, apply_voi, apply_windowing
from pydicom.pixels.decoders.base import get_decoder
from pydicom.tag import Tag
from pydicom.uid import UID

from medbundle.imaging.j2k_reduce import decode_reduced, read_header, reduction_level

__all__ = ["DicomReadError", "read_dicom"]

logger = logging.getLogger(__name__)

_MONOCHROME = ("MONOCHROME1", "MONOCHROME2")
# attributes pydicom needs to decode the pixel data, and this reader to interpret them
_IMAGE_ATTRIBUTES = (
    "Rows", "Columns", "SamplesPerPixel", "BitsAllocated", "BitsStored", "PixelRepresentation",
    "PhotometricInterpretation",
)
_META_START = 144  # 128-byte preamble, "DICM", then the 12-byte File Meta Information Group Length element
_UNDEFINED_LENGTH = 0xFFFFFFFF
_SKIP = "or set skip_bad_images: true to skip and count such files."
_FIX_FILE = f"Re-export or re-download it, remove it from the data set, {_SKIP}"
_FIX_NOT_DICOM = f"Check that it is the right file, re-export it as DICOM, remove it from the data set, {_SKIP}"
_FIX_PATH = f"Check the path (dataset_dir, image folder, datalist), remove the item, {_SKIP}"
_FIX_COLOUR = f"Remove it from the data set (only grayscale images are supported), {_SKIP}"
# pip packages of the pydicom "pylibjpeg" decoder plugin, per compressed transfer syntax
_DECODER_PACKAGES = {
    **dict.fromkeys(
        (
            pydicom.uid.JPEG2000Lossless,
            pydicom.uid.JPEG2000,
            pydicom.uid.HTJ2KLossless,
            pydicom.uid.HTJ2KLosslessRPCL,
            pydicom.uid.HTJ2K,
        ),
        "pylibjpeg pylibjpeg-openjpeg",
    ),
    **dict.fromkeys(
        (
            pydicom.uid.JPEGBaseline8Bit,
            pydicom.uid.JPEGExtended12Bit,
            pydicom.uid.JPEGLossless,
            pydicom.uid.JPEGLosslessSV1,
            pydicom.uid.JPEGLSLossless,
            pydicom.uid.JPEGLSNearLossless,
        ),
        "pylibjpeg pylibjpeg-libjpeg",
    ),
    pydicom.uid.RLELossless: "pylibjpeg pylibjpeg-rle",
}
# the fastest decoding plugin per transfer syntax where it is not pydicom's first choice (gdcm when installed):
# `python scripts/benchmark.py decoders` measured CharLS (pyjpegls) 1.35-1.6x gdcm and 4x pylibjpeg on JPEG-LS, and
# OpenJPEG (pylibjpeg) 1.2x gdcm on lossy JPEG 2000 (gdcm stays first for lossless JPEG 2000, where it is 1.3x faster)
_PREFERRED_PLUGINS = {
    **dict.fromkeys((pydicom.uid.JPEGLSLossless, pydicom.uid.JPEGLSNearLossless), "pyjpegls"),
    pydicom.uid.JPEG2000: "pylibjpeg",
}
# transfer syntaxes whose pixel data read_dicom can decode at a reduced resolution (JPEG 2000 Part 1)
_REDUCIBLE = (pydicom.uid.JPEG2000Lossless, pydicom.uid.JPEG2000)


class DicomReadError(RuntimeError):
    """Raised when a DICOM file cannot be read, decoded or converted to an image.

    The message is one line: the file, what is wrong with it and what to do. The underlying
    exception, if any, is chained as ``__cause__``.
    """


def read_dicom(path: str | os.PathLike, target_size: Sequence[int] | None = None) -> tuple[np.ndarray, dict]:
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

    With `target_size`, JPEG 2000 pixel data (most screening mammograms) is decoded with
    OpenJPEG's ``reduce``, skipping the finest wavelet levels
    (:mod:`medbundle.imaging.j2k_reduce`), as long as the image's shorter side stays at least the
    target's longer side (:func:`~medbundle.imaging.j2k_reduce.reduction_level`); a 4096 x 3328
    mammogram bound for 1024 x 512 is decoded at 2048 x 1664, several times faster. The modality
    and VOI transforms are then applied to the reduced stored values: each approximates a local
    mean of full-resolution values, so near sharp edges, where windowing saturates, the result
    differs a little from shrinking the full-resolution output. Every other case, and any refusal
    of the reduced decoder, takes the full decode; pixel data damaged only in the skipped levels
    is then not noticed.

    A bad file raises an error that names the first of these problems it has: the file does
    not exist, is empty, is not DICOM, is truncated, has no Pixel Data, lacks image attributes,
    is not grayscale, holds less pixel data than its header promises, needs a decoder that is
    not installed, has compressed pixel data the decoders reject, or has an invalid VOI/modality
    transform.

    Args:
        path: path to the DICOM file (Part 10 format with a 'DICM' preamble).
        target_size: ``(rows, columns)`` the image will be shrunk to (after cropping); None
            decodes at full resolution.

    Returns:
        ``(image, meta)``: the (H, W) float32 image and a dict of non-identifying technical
        fields (``filename``, ``modality``, ``photometric_interpretation``,
        ``transfer_syntax_uid``, ``bits_stored``, ``pixel_representation``, ``rows``,
        ``columns``, ``number_of_frames``, ``voi`` ("lut", the VOI LUT Function name, or
        None), ``window_center``, ``window_width``, ``inverted``, ``image_laterality``,
        ``view_position``, ``reduce_level``: resolution levels skipped, the image being
        ``ceil(rows / 2**reduce_level) x ceil(columns / 2**reduce_level)``). Absent values are
        None so every file yields the same keys.

    Raises:
        DicomReadError: the file cannot be read or converted; the one-line message names the
            file, the problem and what to do.
    """
    filename = os.fspath(path)
    ds, size = _read_dataset(filename)
    try:
        _check_image(filename, ds, size)
        reduced = _decode_reduced(filename, ds, target_size) if target_size is not None else None
        pixels, level = reduced if reduced is not None else (_decode_first_frame(filename, ds), 0)
        inverted = ds.PhotometricInterpretation == "MONOCHROME1"
        image, voi = _to_unit_range(pixels, ds, inverted)
        meta = _technical_meta(ds, filename, voi, inverted, level)
    except DicomReadError:
        raise
    except Exception as exc:
        reason = f"invalid image attributes or Modality/VOI LUT ({_one_line(exc)})"
        raise DicomReadError(_message(filename, reason, _FIX_FILE)) from exc
    return image, meta


def _message(filename: str, reason: str, fix: str) -> str:
    """The one-line ``DicomReadError`` message: the file, what is wrong, what to do."""
    return f"Cannot read DICOM file '{filename}': {reason}. {fix}"


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line (pydicom lists per-plugin errors on separate lines)."""
    text = re.sub(r"\s*\n\s*", "; ", str(exc).strip()).replace(":; ", ": ")
    return text or type(exc).__name__


def _read_dataset(filename: str) -> tuple[Dataset, int]:
    """Parse the file with pydicom; return the dataset and the file size in bytes.

    Raises:
        DicomReadError: the file does not exist, cannot be opened, is empty or is not DICOM.
    """
    try:
        size = os.stat(filename).st_size
    except FileNotFoundError as exc:
        raise DicomReadError(_message(filename, "the file does not exist", _FIX_PATH)) from exc
    except OSError as exc:
        reason = f"the file cannot be accessed ({exc.strerror or exc})"
        raise DicomReadError(_message(filename, reason, _FIX_PATH)) from exc
    if size == 0:
        raise DicomReadError(_message(filename, "the file is empty (0 bytes)", _FIX_FILE))
    try:
        return pydicom.dcmread(filename, force=False), size
    except InvalidDicomError as exc:
        reason = f"not a DICOM file: no 'DICM' prefix after a 128-byte preamble ({size} bytes)"
        raise DicomReadError(_message(filename, reason, _FIX_NOT_DICOM)) from exc
    except OSError as exc:
        raise DicomReadError(_message(filename, f"the file cannot be read ({exc.strerror or exc})", _FIX_PATH)) from exc
    except Exception as exc:
        if size < _META_START or isinstance(exc, (struct.error, EOFError)):  # a read came back short
            where = "the File Meta Information header" if size < _META_START else "a data element header"
            reason = f"the file is truncated ({size} bytes): it ends inside {where} ({_one_line(exc)})"
        else:
            reason = f"pydicom cannot parse it ({_one_line(exc)})"
        raise DicomReadError(_message(filename, reason, _FIX_FILE)) from exc


def _check_image(filename: str, ds: Dataset, size: int) -> None:
    """Check, before decoding, that ``ds`` is a complete grayscale image this environment can decode.

    Raises:
        DicomReadError: naming the first problem found: truncated file, no Pixel Data, missing
            image attributes, not grayscale, uncompressed pixel data shorter than the header
            promises, or no installed decoder for the transfer syntax.
    """
    missing = [keyword for keyword in _IMAGE_ATTRIBUTES if keyword not in ds]
    truncation = _truncation(filename, ds, size, complete="PixelData" in ds and not missing)
    if truncation is not None:
        raise DicomReadError(_message(filename, f"the file is truncated ({size} bytes): {truncation}", _FIX_FILE))
    if "PixelData" not in ds:
        last = _last_element(ds)
        end = f" (the file ends after {_element_name(last.tag)})" if last is not None else ""
        attributes = "" if "Rows" in ds and "Columns" in ds else " and no Rows/Columns"
        reason = f"it has no Pixel Data{attributes}{end}: it is truncated (cut off before its pixels) or not an image"
        raise DicomReadError(_message(filename, reason, _FIX_FILE))
    if missing:
        raise DicomReadError(_message(filename, f"it lacks the image attribute(s) {', '.join(missing)}", _FIX_FILE))
    photometric = str(ds.PhotometricInterpretation)
    if photometric not in _MONOCHROME:
        reason = f"its Photometric Interpretation {photometric!r} is not supported, only MONOCHROME1 and MONOCHROME2"
        raise DicomReadError(_message(filename, reason, _FIX_COLOUR))
    syntax = ds.file_meta.get("TransferSyntaxUID")
    if syntax is None or not syntax.is_transfer_syntax:
        reason = f"its File Meta Information has no known Transfer Syntax UID (it has {syntax!r})"
        raise DicomReadError(_message(filename, reason, _FIX_FILE))
    if syntax.is_compressed:
        _check_decoder(filename, syntax)
        return
    have, need = len(ds.PixelData), _native_pixel_bytes(ds)
    if have < need:
        reason = (
            f"its Pixel Data holds {have} bytes, but Rows x Columns x Bits Allocated ({ds.Rows} x {ds.Columns} x "
            f"{ds.BitsAllocated} bits, {ds.SamplesPerPixel} sample(s), {_frames(ds)} frame(s)) need {need}"
        )
        raise DicomReadError(_message(filename, reason, _FIX_FILE))


def _truncation(filename: str, ds: Dataset, size: int, complete: bool) -> str | None:
    """Say where the file ends early, or None when nothing shows that it does.

    pydicom parses a cut file without raising: it keeps a value cut short as it is, drops an
    incomplete element header, and when an element of undefined length (encapsulated Pixel
    Data, a sequence) lacks its delimiter it keeps no element of the data set at all.

    Args:
        filename: the file ``ds`` was read from.
        ds: the dataset pydicom read.
        size: the file size in bytes.
        complete: whether ``ds`` has Pixel Data and every image attribute. Bytes after the
            last element count as a cut element header only when it does not, since a
            complete image with a few stray trailing bytes is still readable.
    """
    group_length = ds.file_meta.get("FileMetaInformationGroupLength")
    meta_end = _META_START + group_length if isinstance(group_length, int) else None
    if meta_end is not None and size < meta_end:
        return "it ends inside the File Meta Information header"
    if len(ds) == 0:
        if meta_end is None or "TransferSyntaxUID" not in ds.file_meta:
            return "it ends inside the File Meta Information header"
        if size < meta_end + 8:  # not even one element header
            return "it ends right after the File Meta Information header, before the data set"
        return _undefined_length_cut(filename)
    last = _last_element(ds)
    if isinstance(last, RawDataElement) and last.length != _UNDEFINED_LENGTH and last.value_tell is not None:
        if last.value is not None and len(last.value) < last.length:
            return f"it ends inside {_element_name(last.tag)} ({len(last.value)} of its {last.length} bytes present)"
        if not complete and size > last.value_tell + last.length:
            return f"it ends inside the data element that follows {_element_name(last.tag)}"
    return None


def _last_element(ds: Dataset) -> RawDataElement | DataElement | None:
    """The top-level element with the highest tag, the last one in a conforming file (None for an empty dataset)."""
    return ds.get_item(max(ds.keys())) if len(ds) else None


def _undefined_length_cut(filename: str) -> str:
    """Describe a file whose data set pydicom dropped because an undefined-length element has no end.

    The header alone (read up to the Pixel Data) tells whether that element is the Pixel Data.
    """
    try:
        header = pydicom.dcmread(filename, stop_before_pixels=True)
    except Exception:  # noqa: BLE001 - only refines the description of an already broken file
        header = Dataset()
    if "Rows" in header and "Columns" in header:
        return "it ends inside the encapsulated (compressed) Pixel Data"
    return "it ends inside a sequence of undefined length in the header"


def _element_name(tag: int) -> str:
    """``the Pixel Data element`` or ``element (0028,1050) Window Center``."""
    tag = Tag(tag)
    if tag == 0x7FE00010:
        return "the Pixel Data element"
    try:
        return f"element {tag} {dictionary_description(tag)}"
    except KeyError:
        return f"element {tag}"


def _frames(ds: Dataset) -> int:
    """Number of Frames, 1 when absent or empty."""
    return int(ds.get("NumberOfFrames") or 1)


def _native_pixel_bytes(ds: Dataset) -> int:
    """Bytes of uncompressed pixel data that the image attributes promise (PS3.5 8.1.1)."""
    values = int(ds.Rows) * int(ds.Columns) * int(ds.SamplesPerPixel) * _frames(ds)
    bits = int(ds.BitsAllocated)
    return (values + 7) // 8 if bits == 1 else values * (bits // 8)


def _check_decoder(filename: str, syntax: UID) -> None:
    """Raise a ``DicomReadError`` naming what to install when no decoder for ``syntax`` is available."""
    name = f"{syntax.name} ({syntax})"
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError as exc:
        reason = f"pydicom has no decoder for its transfer syntax {name} ({_one_line(exc)})"
        fix = f"Convert it to an uncompressed or JPEG 2000 transfer syntax (e.g. gdcmconv --raw), remove it, {_SKIP}"
        raise DicomReadError(_message(filename, reason, fix)) from exc
    if decoder.is_available:
        return
    packages = _DECODER_PACKAGES.get(syntax)
    if packages is not None:
        fix = f"Install one: pip install {packages}"
    else:
        fix = f"Install one of the decoders pydicom lists: {'; '.join(decoder.missing_dependencies)}"
    raise DicomReadError(_message(filename, f"no decoder is installed for its transfer syntax {name}", fix))


def _decode_first_frame(filename: str, ds: Dataset) -> np.ndarray:
    """Decode frame 0 of the (checked) pixel data.

    Raises:
        DicomReadError: the decoders reject the pixel data.
    """
    syntax = ds.file_meta.TransferSyntaxUID
    preferred = _PREFERRED_PLUGINS.get(syntax, "")
    if preferred and preferred in get_decoder(syntax).available_plugins:
        ds.pixel_array_options(index=0, decoding_plugin=preferred)
        try:
            return ds.pixel_array
        except Exception:  # noqa: BLE001, S110 - pydicom's own order below tries every plugin and reports their errors
            pass
    ds.pixel_array_options(index=0, decoding_plugin="")
    try:
        return ds.pixel_array
    except Exception as exc:
        if syntax.is_compressed:
            reason = f"corrupt or truncated compressed pixel data ({syntax.name}): {_one_line(exc)}"
        else:
            reason = f"its pixel data cannot be decoded ({_one_line(exc)})"
        raise DicomReadError(_message(filename, reason, _FIX_FILE)) from exc


def _decode_reduced(filename: str, ds: Dataset, target_size: Sequence[int]) -> tuple[np.ndarray, int] | None:
    """Frame 0 of (checked) JPEG 2000 pixel data at the reduction level for `target_size`, and that level.

    None, so that the caller decodes at full resolution, when the transfer syntax is not JPEG 2000,
    no level can be skipped, the codestream's size, precision or sign differ from the data set's
    (pydicom then corrects the values, which this path does not), or the reduced decoder refuses.
    """
    if ds.file_meta.TransferSyntaxUID not in _REDUCIBLE or int(ds.SamplesPerPixel) != 1:
        return None
    try:
        codestream = get_frame(ds.PixelData, 0, number_of_frames=_frames(ds))
        header = read_header(codestream)
    except Exception:  # noqa: BLE001 - the full decode reports what is wrong
        return None
    consistent = (header.rows, header.columns, header.precision, header.signed) == (
        int(ds.Rows), int(ds.Columns), int(ds.BitsStored), bool(ds.PixelRepresentation)
    )
    level = reduction_level((header.rows, header.columns), target_size, header.levels) if consistent else 0
    if level == 0:
        return None
    try:
        return decode_reduced(codestream, header, level), level
    except Exception as exc:  # noqa: BLE001 - any refusal means the full decode
        logger.debug("Reduced JPEG 2000 decode of '%s' refused (%s); decoding at full resolution.", filename, exc)
        return None


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


def _to_unit_range(pixels: np.ndarray, ds: Dataset, invert: bool) -> tuple[np.ndarray, str | None]:
    """Apply the modality and VOI transforms to ``pixels``, scale the result to [0, 1] and optionally invert it.

    Every step is a function of each pixel's stored value alone (the range of min-max scaling
    comes from the image's least and greatest values, which a rescale maps to the ends of the
    range). So integer images of at most 16 bits without a Modality LUT Sequence are transformed
    once per value between their least and greatest one and then looked up: the same numbers,
    several times faster than transforming millions of pixels in float64.

    Args:
        pixels: the decoded stored values of one frame.
        ds: the dataset holding the Modality LUT and VOI LUT modules.
        invert: return ``1 - x`` (MONOCHROME1).

    Returns:
        The float32 image in [0, 1] and the VOI transform applied.
    """
    if pixels.dtype.kind in "iu" and pixels.itemsize <= 2 and "ModalityLUTSequence" not in ds:
        first, last = int(pixels.min()), int(pixels.max())
        if last - first < pixels.size:
            table, voi = _transform(np.arange(first, last + 1).astype(pixels.dtype), ds, invert)
            unsigned = np.dtype(f"u{pixels.itemsize}")
            # offsets from `first`, in unsigned arithmetic so that a signed range wider than half the dtype fits
            offsets = pixels.view(unsigned) - unsigned.type(first % 2 ** (8 * pixels.itemsize))
            return np.take(table, offsets), voi
    return _transform(pixels, ds, invert)


def _transform(pixels: np.ndarray, ds: Dataset, invert: bool) -> tuple[np.ndarray, str | None]:
    """:func:`_to_unit_range` of every element of `pixels`, computed directly.

    Calls ``apply_voi``/``apply_windowing`` directly (the two branches of ``apply_voi_lut``)
    so that the applied transform, and hence its output range, is known.
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
        image = np.zeros(values.shape, dtype=np.float32)
    else:
        image = np.clip((values.astype(np.float64) - low) / (high - low), 0.0, 1.0).astype(np.float32)
    return (1.0 - image if invert else image), voi


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


def _technical_meta(ds: Dataset, filename: str, voi: str | None, inverted: bool, reduce_level: int) -> dict:
    """Collect acquisition-technical fields; deliberately no patient, study or device identifiers.

    Args:
        ds: the source dataset.
        filename: the path the dataset was read from.
        voi: the VOI transform applied ("lut", a VOI LUT Function name, or None).
        inverted: whether the image was inverted for MONOCHROME1.
        reduce_level: JPEG 2000 resolution levels skipped when decoding (0: full resolution).
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
        "reduce_level": reduce_level,
    }
