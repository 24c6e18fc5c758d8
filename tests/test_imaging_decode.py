"""PNG/JPEG decoding (medbundle.imaging.decode): what libpng writes to the process's stderr."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from medbundle.imaging.decode import decode_rgb, read_raster_grayscale

REAL_CXR = Path(__file__).resolve().parents[2] / "shared" / "data" / "real_cxr"


def _png_with_rgb_icc_profile(gray: np.ndarray) -> bytes:
    """A grey PNG carrying an ICC profile of an RGB colour space, as some exported radiographs do."""
    profile = bytearray(132) + np.random.default_rng(0).bytes(124)  # header, no tags, incompressible rest
    struct.pack_into(">I", profile, 0, len(profile))
    profile[8:12] = b"\x02\x10\x00\x00"
    profile[12:40] = b"mntrRGB XYZ " + bytes(12) + b"acsp"
    body = b"iCCP" + b"ICC Profile\x00\x00" + zlib.compress(bytes(profile))
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    png = cv2.imencode(".png", gray)[1].tobytes()
    ihdr_end = 8 + 12 + struct.unpack(">I", png[8:12])[0]
    return png[:ihdr_end] + chunk + png[ihdr_end:]


def _stderr_of(code: str) -> str:
    """What a fresh Python process running `code` writes to file descriptor 2 (libpng writes there from C)."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return result.stderr


def test_a_png_icc_profile_is_ignored_without_libpng_warnings(tmp_path):
    gray = np.arange(96, dtype=np.uint8).reshape(8, 12)
    path = tmp_path / "profiled.png"
    path.write_bytes(_png_with_rgb_icc_profile(gray))
    opencv = f"import cv2; cv2.imread({str(path)!r}, cv2.IMREAD_UNCHANGED)"
    assert "libpng warning: iCCP" in _stderr_of(opencv)  # the file does trip libpng
    ours = (
        "from medbundle.imaging.decode import decode_rgb, read_raster_grayscale; "
        f"read_raster_grayscale({str(path)!r}); decode_rgb(open({str(path)!r}, 'rb').read(), 'x')"
    )
    assert "libpng" not in _stderr_of(ours)
    image, meta = read_raster_grayscale(path)
    assert meta["format"] == "png" and np.array_equal(image, gray / np.float32(255))
    rgb, _, channels = decode_rgb(path.read_bytes(), "x")
    assert channels == 1 and np.array_equal(rgb[..., 0], image)


def test_real_chest_radiographs_with_icc_profiles_decode_silently():
    if not REAL_CXR.is_dir():
        pytest.skip(f"{REAL_CXR} not present")
    code = (
        "from pathlib import Path; from medbundle.imaging.decode import read_raster_grayscale; "
        f"[read_raster_grayscale(p) for p in sorted(Path({str(REAL_CXR)!r}).rglob('*.png'))]"
    )
    assert "libpng" not in _stderr_of(code)
