"""Decode every image of a data set once, in parallel, and keep what the data set check needs of it.

A scan reads each file with the task bundle's reader (:class:`~medbundle.io.GrayscaleReader` for
radiographs, :class:`~medbundle.io.RGBReader` for colour photographs and HDF5 members), so
"readable" means readable by training, and keeps only small facts: the technical fields the reader
returns, the shape, and the exact and perceptual hashes of the pixels. Decoding dominates the
time; the workers send back a few hundred bytes per image, never the pixels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from torch.utils.data import DataLoader, Dataset

from medbundle.datacheck.image_hash import perceptual_hash, pixel_digest
from medbundle.io.image_reader import GrayscaleReader
from medbundle.io.pixel_reader import PixelSpaceReader
from medbundle.progress import progress as iterate

__all__ = ["scan_images"]

# technical fields of the readers kept per image, by report name; a field a reader lacks is None
_FIELDS = {
    "format": "format",
    "channels": "channels",
    "bits_stored": "bits_stored",
    "photometric_interpretation": "photometric_interpretation",
    "transfer_syntax": "transfer_syntax_uid",
}


class _ImageFacts(Dataset):
    """Decode one file and return its facts; a failure is returned as its reason, not raised."""

    def __init__(
        self,
        paths: Sequence[str],
        reader: type[PixelSpaceReader],
        image_facts: Callable[[np.ndarray], dict] | None = None,
    ) -> None:
        self.paths = list(paths)
        self.reader = reader()
        self.image_facts = image_facts

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        try:
            image, fields = self.reader.decode(self.paths[index])
        except Exception as exc:  # noqa: BLE001 - every unreadable file is reported, with its reason
            lines = str(exc).strip().splitlines()
            return {"readable": False, "error": f"{type(exc).__name__}: {lines[0] if lines else ''}"}
        return {
            "readable": True,
            "error": None,
            "rows": int(image.shape[0]),
            "columns": int(image.shape[1]),
            **{name: fields.get(key) for name, key in _FIELDS.items()},
            "md5": pixel_digest(image),
            "phash": perceptual_hash(image).hex(),
            **(self.image_facts(image) if self.image_facts is not None else {}),
        }


def _first(batch: list) -> object:
    return batch[0]


def scan_images(
    paths: Sequence[str],
    reader: type[PixelSpaceReader] = GrayscaleReader,
    num_workers: int = 2,
    progress: bool = True,
    image_facts: Callable[[np.ndarray], dict] | None = None,
) -> list[dict]:
    """Read every image once, in ``num_workers`` processes, and return one dict of facts per path.

    Each dict has ``readable`` and ``error`` (the exception's type and first line, or None); readable
    images add ``rows``, ``columns``, ``format`` ("png", "jpeg", "dicom"), ``channels`` (as stored in a
    PNG/JPEG: 1 grey, 3 colour; None for DICOM), ``bits_stored`` (None where the reader does not
    report it, as :class:`~medbundle.io.RGBReader`), ``photometric_interpretation`` and
    ``transfer_syntax`` (the UID; both None but for DICOM), ``md5``
    (:func:`~medbundle.datacheck.image_hash.pixel_digest` of the decoded image, colour included) and
    ``phash`` (hex of :func:`~medbundle.datacheck.image_hash.perceptual_hash`, of the luma for colour).

    Args:
        paths: image names the reader takes: PNG, JPEG or DICOM files, or ``"<file>.hdf5::<key>"``
            members for :class:`~medbundle.io.RGBReader`.
        reader: the reader class, the one the task's bundle loads with.
        num_workers: decoding processes; 0 decodes in this process.
        progress: show progress (a bar in a terminal, log lines otherwise).
        image_facts: a task's own facts of each decoded image (a picklable function of the image, e.g. what the
            breast crop finds on a mammogram), merged into its dict.

    Returns:
        The facts, in the order of ``paths``.
    """
    loader = DataLoader(
        _ImageFacts(paths, reader, image_facts), batch_size=1, num_workers=num_workers, collate_fn=_first
    )
    return list(iterate(loader, total=len(paths), desc="checking", unit="img", enabled=progress))
