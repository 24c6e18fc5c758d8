"""Command line: ``python -m medbundle.deploy MODEL_DIR IMAGES... --output_csv predictions.csv``.

IMAGES are image files, folders (searched recursively for the files the model's reader takes), HDF5 files
(every member, for RGB models) or ``"<file>::<key>"`` members; ``--datalist`` adds the rows of a CSV with an
``image`` column, whose other columns (e.g. ``breast_id``, or ``patient_id`` and ``laterality``) are ids copied
to the output. ``--output_csv`` gets one row per image; with ``--group_csv``, models that aggregate (rsna: per
breast) also write one row per group. Imports no torch (see :mod:`medbundle.deploy`).
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from medbundle.deploy.predictor import Item, Predictor, flat_row
from medbundle.imaging.decode import DICOM_SUFFIXES, IMAGE_SUFFIXES, RGB_SUFFIXES

__all__ = ["expand_images", "main", "write_csv"]

_HDF5_SUFFIXES = (".hdf5", ".h5")  # as medbundle.io.hdf5.HDF5_SUFFIXES, which would import h5py
#: reader -> suffixes of the files taken from a folder
_FOLDER_SUFFIXES = {
    "mammo_dicom": DICOM_SUFFIXES,
    "grayscale": IMAGE_SUFFIXES,
    "rgb": (*RGB_SUFFIXES, *_HDF5_SUFFIXES),
}


def expand_images(inputs: Iterable[str], reader: str) -> list[str]:
    """The image names of `inputs`: files as given, folders' files by suffix (sorted), HDF5 files' members.

    Raises:
        FileNotFoundError: an input does not exist, or a folder holds no image for `reader`.
    """
    names: list[str] = []
    for entry in inputs:
        path = Path(entry)
        if "::" in entry and not path.exists():
            names.append(entry)
        elif path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in _FOLDER_SUFFIXES[reader])
            if not found:
                raise FileNotFoundError(f"{path} holds no {'/'.join(_FOLDER_SUFFIXES[reader])} files for this model.")
            names.extend(name for p in found for name in _members(p, reader))
        elif path.is_file():
            names.extend(_members(path, reader))
        else:
            raise FileNotFoundError(f"{entry} does not exist.")
    return names


def _members(path: Path, reader: str) -> list[str]:
    """``"<file>::<key>"`` of every member of an HDF5 file read by an RGB model, else the file itself."""
    if reader != "rgb" or path.suffix.lower() not in _HDF5_SUFFIXES:
        return [str(path)]
    from medbundle.io.hdf5 import hdf5_keys, hdf5_member

    return [hdf5_member(path, key) for key in sorted(hdf5_keys(path))]


def _read_datalist(path: str) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    if not rows or "image" not in rows[0]:
        raise ValueError(f"--datalist {path} must be a CSV with an 'image' column and at least one row.")
    return [{key: value for key, value in row.items() if value not in (None, "")} for row in rows]


def write_csv(rows: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Write prediction rows (``probabilities`` as ``prob_<class>`` columns) to a CSV file; None is empty."""
    flat = [flat_row(row) for row in rows]
    columns = list(dict.fromkeys(key for row in flat for key in row))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        writer.writerows(flat)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m medbundle.deploy",
        description="Predict images with an exported model (model.onnx + deploy.json) through onnxruntime.",
    )
    parser.add_argument("model_dir", help="export folder holding deploy.json and model.onnx")
    parser.add_argument("images", nargs="*", help="image files, folders, HDF5 files or '<file>::<key>' members")
    parser.add_argument("--datalist", help="CSV with an 'image' column; other columns are ids copied to the output")
    parser.add_argument("--output_csv", required=True, help="per-image predictions")
    parser.add_argument("--group_csv", help="per-group predictions (models with an aggregation, e.g. rsna breasts)")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    predictor = Predictor(args.model_dir, batch_size=args.batch_size, threads=args.threads)
    items: list[Item] = [*expand_images(args.images, predictor.preprocessing.reader)]
    if args.datalist:
        items.extend(_read_datalist(args.datalist))
    if not items:
        parser.error("give images (files, folders, HDF5 files) or --datalist.")
    rows = predictor.predict(items)
    print(f"predicted {len(rows)} image(s): {write_csv(rows, args.output_csv)}", file=sys.stderr)
    if args.group_csv:
        groups = predictor.aggregate(rows)
        print(f"{len(groups)} {predictor.group_key} group(s): {write_csv(groups, args.group_csv)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
