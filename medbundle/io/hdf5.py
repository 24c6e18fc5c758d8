"""Image bytes stored in an HDF5 file, one dataset per image, as in ISIC 2024's ``train-image.hdf5``.

The ISIC 2024 Kaggle data hold one dataset per ``isic_id`` at the file's root, each with the
raw JPEG bytes of one crop. A datalist names such a member ``"<path to .hdf5>::<isic_id>"``
(:func:`hdf5_member`); :class:`~medbundle.io.rgb_reader.RGBReader` decodes it.

h5py file handles must not cross a fork: a ``DataLoader`` worker that inherits its parent's
open file and reads through it can get wrong bytes or crash. :func:`open_hdf5` therefore keeps
one read-only handle per file and per process, and opens the file anew in a process whose id
differs from the one that filled the cache (a forked worker, persistent or not), after
closing the inherited copies (HDF5 would otherwise hand back the inherited file when asked to
open the same file again).
"""

from __future__ import annotations

import os

import h5py
import numpy as np

from medbundle.imaging.decode import WHAT_TO_DO, ImageReadError

__all__ = [
    "HDF5_SEPARATOR",
    "HDF5_SUFFIXES",
    "hdf5_keys",
    "hdf5_member",
    "open_hdf5",
    "read_hdf5_bytes",
    "split_hdf5_member",
]

#: separates the HDF5 file from the member's key in a datalist name; the key follows the last one
HDF5_SEPARATOR = "::"
#: file suffixes taken for HDF5 files, compared lower-case
HDF5_SUFFIXES = (".hdf5", ".h5")

# process id that opened the cached handles, and the handles keyed by absolute path
_owner_pid: int | None = None
_handles: dict[str, h5py.File] = {}


def hdf5_member(file: str | os.PathLike, key: str) -> str:
    """The datalist name ``"<file>::<key>"`` of the dataset `key` in the HDF5 file `file`.

    Raises:
        ValueError: `key` contains the separator, so the name could not be split back.
    """
    if HDF5_SEPARATOR in key:
        raise ValueError(f"HDF5 key '{key}' contains the separator '{HDF5_SEPARATOR}'; rename the member.")
    return f"{os.fspath(file)}{HDF5_SEPARATOR}{key}"


def split_hdf5_member(name: str | os.PathLike) -> tuple[str, str] | None:
    """``(file, key)`` of a name built by :func:`hdf5_member`, or None for a plain file path.

    The key is what follows the last ``"::"``.
    """
    file, separator, key = os.fspath(name).rpartition(HDF5_SEPARATOR)
    return (file, key) if separator else None


def open_hdf5(path: str | os.PathLike) -> h5py.File:
    """The read-only h5py handle of `path`, opened on first use and then cached for this process.

    The cache is keyed by absolute path. In a process other than the one that filled it (a
    ``DataLoader`` worker started by fork) the inherited handles are closed unused (which closes
    this process's copies only) and files are opened again, so parent and workers never share an
    HDF5 handle. Handles stay open until the process ends.

    Raises:
        ImageReadError: the file does not exist or is not an HDF5 file.
    """
    global _owner_pid
    if _owner_pid != os.getpid():
        for inherited in _handles.values():
            inherited.close()  # only this process's copy; HDF5 would otherwise reuse it when reopening the file
        _handles.clear()
        _owner_pid = os.getpid()
    filename = os.path.abspath(os.fspath(path))
    handle = _handles.get(filename)
    if handle is None:
        if not os.path.isfile(filename):
            raise ImageReadError(
                f"HDF5 file '{filename}' does not exist; check the data path in the config (dataset_dir)."
            )
        try:
            handle = h5py.File(filename, "r", swmr=False)
        except OSError as exc:
            raise ImageReadError(
                f"'{filename}' is not an HDF5 file or is corrupt ({exc}); download it again."
            ) from exc
        _handles[filename] = handle
    return handle


def read_hdf5_bytes(file: str | os.PathLike, key: str) -> bytes:
    """The bytes stored in the dataset `key` at the root of the HDF5 file `file`.

    The dataset may hold a byte-string scalar (``np.bytes_``, as in ISIC's file, whose trailing
    NUL bytes h5py drops; JPEG and PNG data never end in one), an opaque scalar (``np.void``)
    or a 1-D uint8 array.

    Raises:
        ImageReadError: the file cannot be opened, or the member is absent, empty or holds no bytes;
            the message names the file and the key.
    """
    filename = os.fspath(file)
    try:
        handle = open_hdf5(filename)
    except ImageReadError as exc:
        raise ImageReadError(f"Cannot read isic_id '{key}': {exc}") from exc
    member = handle.get(key)
    if member is None:
        raise ImageReadError(
            f"isic_id '{key}' is not in '{filename}'; check that the metadata CSV and the HDF5 file belong "
            "together, or set skip_bad_images: true to skip and count unreadable images."
        )
    value = member[()] if isinstance(member, h5py.Dataset) else None
    if isinstance(value, bytes):  # np.bytes_ included
        data = bytes(value)
    elif isinstance(value, np.void) or (isinstance(value, np.ndarray) and value.ndim == 1 and value.dtype == np.uint8):
        data = value.tobytes()
    else:
        kind = f"a dataset of {member.dtype}, shape {member.shape}" if isinstance(member, h5py.Dataset) else "a group"
        raise ImageReadError(
            f"isic_id '{key}' in '{filename}' is {kind}, not image bytes (a byte string, opaque scalar or 1-D "
            f"uint8 array). {WHAT_TO_DO}"
        )
    if not data:
        raise ImageReadError(f"isic_id '{key}' in '{filename}' is empty. {WHAT_TO_DO}")
    return data


def hdf5_keys(path: str | os.PathLike) -> set[str]:
    """The keys of all members at the root of the HDF5 file `path` (the isic_ids of ISIC's file).

    Raises:
        ImageReadError: the file does not exist or is not an HDF5 file.
    """
    return set(open_hdf5(path).keys())
