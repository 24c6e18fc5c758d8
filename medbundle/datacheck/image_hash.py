"""Exact and perceptual image hashes, and the search for near-identical images by hash distance.

The exact hash (md5 of the decoded pixels) finds copies of one image under another name or file
format that decodes to the same pixels. The perceptual hash (a DCT pHash) finds copies that were
re-encoded, resized, slightly brightened or noised: it keeps the signs of the lowest spatial
frequencies of a small thumbnail, which such changes leave alone.

Radiographs of one kind look alike at low resolution (a chest is a chest), so the classic 64-bit
pHash (8x8 frequencies) puts different chest X-rays at distance 0. The default here keeps 16x16
frequencies (256 bits): on the demo data different images stay >= 20 bits apart while noise,
resizing and JPEG re-encoding change <= 10.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import cv2
import numpy as np

__all__ = ["NEAR_DUPLICATE_DISTANCE", "hamming_distance", "near_duplicate_pairs", "perceptual_hash", "pixel_digest"]

#: default largest Hamming distance (of 256 bits) at which two perceptual hashes count as one image
NEAR_DUPLICATE_DISTANCE = 12
_THUMBNAIL_FACTOR = 4  # thumbnail side = this many times the hash side
_BLOCK_ELEMENTS = 4_000_000  # pairwise distances computed at once by near_duplicate_pairs


def pixel_digest(image: np.ndarray) -> str:
    """md5 (hex) of an array's shape, dtype and values: equal for images that decode to the same pixels.

    Args:
        image: the decoded image.
    """
    array = np.ascontiguousarray(image)
    digest = hashlib.md5(f"{array.shape}{array.dtype.str}".encode())
    digest.update(array.data)
    return digest.hexdigest()


def perceptual_hash(image: np.ndarray, hash_size: int = 16) -> bytes:
    """DCT perceptual hash: one bit per low spatial frequency, set where it exceeds the median.

    The image is shrunk (area averaging) to a square thumbnail ``4 * hash_size`` pixels wide, its 2D
    DCT taken, and the ``hash_size x hash_size`` lowest frequencies compared with their median. The
    constant (DC) term is left out (its bit is always 0), so a global brightness offset changes no bit
    and a contrast scaling none either; the aspect ratio and the size of the image do not matter. A
    colour image is hashed on its luma (``cv2.COLOR_RGB2GRAY``), so a copy with shifted colours
    stays close while the exact hash (:func:`pixel_digest`) still tells the two apart.

    Args:
        image: a 2D grayscale image or an (H, W, 3) RGB image (any size, any numeric dtype).
        hash_size: frequencies per axis; the hash has ``hash_size**2`` bits (a multiple of 8).

    Returns:
        The hash, ``hash_size**2 // 8`` bytes; compare two with :func:`hamming_distance`.

    Raises:
        ValueError: the image is neither 2D nor (H, W, 3), or ``hash_size**2`` is not a multiple of 8.
    """
    rgb = image.ndim == 3 and image.shape[2] == 3
    if image.ndim != 2 and not rgb:
        raise ValueError(
            f"perceptual_hash needs a 2D grayscale or an (H, W, 3) RGB image, got shape {image.shape}."
        )
    if hash_size < 2 or hash_size**2 % 8:
        raise ValueError(f"hash_size**2 must be a multiple of 8 (e.g. 8 or 16), got hash_size={hash_size}.")
    grey = image.astype(np.float32)
    if rgb:
        grey = cv2.cvtColor(grey, cv2.COLOR_RGB2GRAY)
    side = _THUMBNAIL_FACTOR * hash_size
    thumbnail = cv2.resize(grey, (side, side), interpolation=cv2.INTER_AREA)
    frequencies = cv2.dct(thumbnail)[:hash_size, :hash_size].ravel()
    bits = frequencies > np.median(frequencies[1:])
    bits[0] = False
    return np.packbits(bits).tobytes()


def hamming_distance(a: bytes, b: bytes) -> int:
    """Number of differing bits between two hashes of equal length.

    Raises:
        ValueError: the hashes differ in length.
    """
    if len(a) != len(b):
        raise ValueError(f"hashes of different lengths ({len(a)} and {len(b)} bytes) cannot be compared.")
    return int(np.bitwise_count(np.frombuffer(a, np.uint8) ^ np.frombuffer(b, np.uint8)).sum())


def near_duplicate_pairs(
    hashes: Sequence[bytes], max_distance: int = NEAR_DUPLICATE_DISTANCE
) -> list[tuple[int, int, int]]:
    """All pairs of hashes within ``max_distance`` bits of each other, by exhaustive comparison.

    Compares blocks of rows with all later rows (XOR and bit count on 64-bit words), in blocks of
    about ``_BLOCK_ELEMENTS`` distances so memory stays near 100 MB; 50 000 256-bit hashes take
    well under a minute, little beside decoding that many images.

    Args:
        hashes: perceptual hashes of equal length, e.g. from :func:`perceptual_hash`.
        max_distance: the largest Hamming distance that counts as a near-duplicate.

    Returns:
        ``(i, j, distance)`` with ``i < j`` indexing ``hashes``, sorted by ``(i, j)``.

    Raises:
        ValueError: the hashes differ in length.
    """
    if not hashes:
        return []
    lengths = {len(h) for h in hashes}
    if len(lengths) != 1:
        raise ValueError(f"hashes must all have one length, got lengths {sorted(lengths)} (bytes).")
    packed = np.frombuffer(b"".join(hashes), np.uint8).reshape(len(hashes), -1)
    padding = -packed.shape[1] % 8
    words = np.pad(packed, ((0, 0), (0, padding))).view(np.uint64)
    block = max(1, _BLOCK_ELEMENTS // len(words))
    pairs = []
    for start in range(0, len(words), block):
        rows, later = words[start : start + block], words[start:]
        distances = np.zeros((len(rows), len(later)), np.int32)
        for word in range(words.shape[1]):
            distances += np.bitwise_count(rows[:, word, None] ^ later[None, :, word])
        for i, offset in zip(*np.nonzero(distances <= max_distance)):
            if offset > i:  # later rows only: each pair once, no self-pairs
                pairs.append((start + int(i), start + int(offset), int(distances[i, offset])))
    return sorted(pairs)
