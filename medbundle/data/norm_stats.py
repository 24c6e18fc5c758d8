"""Per-channel mean and std of a dataset, measured on the images exactly as the model sees them.

Chest X-rays arrive at very different native resolutions (512x512 to 2297x2032), and resizing
changes the intensity distribution (interpolation smooths, borders shrink), so the statistics are
measured after the bundle's own decode + resize chain and stored per target size:
``<dataset_dir>/norm_stats_<H>x<W>.json``.  Models that share an input size share the file; a new
size needs ``medbundle norm_stats --data DIR --image_size S`` to be run again.  Without the file
the bundle falls back to the backbone's pretrained (ImageNet) statistics.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from numbers import Real
from pathlib import Path

import numpy as np
import torch
from monai.transforms import Compose
from torch.utils.data import DataLoader, Dataset

from medbundle.io.atomic_file import atomic_write
from medbundle.progress import progress as iterate

__all__ = ["compute_norm_stats", "norm_stats_path", "read_norm_stats", "write_norm_stats"]

logger = logging.getLogger(__name__)

# transformed intensities beyond this margin around [0, 1] mean the chain lacks its intensity scaling;
# a small overshoot is normal for bicubic or anti-aliased resizing
_RANGE_MARGIN = 0.1
_NAME = re.compile(r"norm_stats_(\d+)x(\d+)(_clahe)?\.json")
_reported_missing: set[Path] = set()


class _ImageMoments(Dataset):
    """Transform one item and return its shape, per-channel mean and sum of squared deviations (float64).

    Moments rather than raw sums keep the accumulation accurate however many images there are;
    a failure is returned as text, not raised, so every bad file is reported at once.
    """

    def __init__(self, datalist: Sequence[dict], transform: Compose, key: str) -> None:
        self.datalist = datalist
        self.transform = transform
        self.key = key

    def __len__(self) -> int:
        return len(self.datalist)

    def __getitem__(self, index: int) -> tuple[int, dict | str]:
        try:
            image = torch.as_tensor(self.transform(dict(self.datalist[index]))[self.key])
        except Exception as exc:  # noqa: BLE001 - reported per item by compute_norm_stats
            cause = exc
            while cause.__cause__ is not None:
                cause = cause.__cause__
            # MONAI appends every reader's traceback; the first line names the problem
            first_line = (str(cause).strip().splitlines() or [""])[0]
            return index, f"{type(cause).__name__}: {first_line}"
        if image.ndim != 3:
            return index, f"transform produced shape {tuple(image.shape)}, expected (C, H, W)"
        pixels = image.detach().to("cpu", torch.float64).reshape(image.shape[0], -1)
        mean = pixels.mean(dim=1)
        return index, {
            "shape": tuple(image.shape),
            "mean": mean.numpy(),
            "m2": ((pixels - mean[:, None]) ** 2).sum(dim=1).numpy(),
            "min": pixels.min().item(),
            "max": pixels.max().item(),
        }


def _first(batch: list) -> object:
    return batch[0]


def compute_norm_stats(
    datalist: Sequence[dict],
    transform: Compose,
    num_workers: int = 0,
    progress: bool = True,
    key: str = "image",
) -> dict:
    """Measure per-channel mean and std over every pixel of every transformed image.

    Per-image means and squared deviations are combined with Chan's parallel formula in float64,
    so the result equals the mean/std over all pixels of the stacked images, without the
    cancellation of a large float32 sum of squares.

    Args:
        datalist: MONAI datalist, one dict per image (``{"image": path, ...}``).
        transform: deterministic chain that yields a ``(C, H, W)`` tensor in [0, 1] under ``key``:
            the bundle's decode + resize + intensity scaling, without augmentation or normalisation.
        num_workers: DataLoader processes that decode and resize in parallel.
        progress: show progress (a bar in a terminal, log lines otherwise).
        key: the datalist key of the image.

    Returns:
        ``{"mean": [per channel], "std": [per channel], "n_images": int, "image_shape": [H, W]}``.

    Raises:
        ValueError: the datalist is empty, or the transformed images differ in shape or lie outside [0, 1].
        RuntimeError: images could not be read or transformed; the message names them.
    """
    if not datalist:
        raise ValueError("compute_norm_stats got an empty datalist; check the dataset directory.")
    loader = DataLoader(
        _ImageMoments(datalist, transform, key), batch_size=1, num_workers=num_workers, collate_fn=_first
    )
    failures: dict[int, str] = {}
    count, mean, m2, shape = 0, None, None, None
    low, high = np.inf, -np.inf
    for index, result in iterate(loader, total=len(datalist), desc="norm stats", unit="img", enabled=progress):
        if isinstance(result, str):
            failures[index] = result
            continue
        if shape is None:
            shape = result["shape"]
            mean, m2 = np.zeros(shape[0]), np.zeros(shape[0])
        elif result["shape"] != shape:
            raise ValueError(
                f"{datalist[index].get(key, index)} becomes {result['shape']} after the transform, the first image "
                f"{shape}; the transform must resize every image to one size (C, H, W)."
            )
        n = shape[1] * shape[2]
        delta = result["mean"] - mean
        total = count + n
        mean = mean + delta * n / total
        m2 = m2 + result["m2"] + delta**2 * count * n / total
        count = total
        low, high = min(low, result["min"]), max(high, result["max"])
    if failures:
        details = "; ".join(f"{datalist[i].get(key, i)}: {error}" for i, error in list(failures.items())[:5])
        raise RuntimeError(
            f"{len(failures)} of {len(datalist)} images could not be read or transformed ({details}). "
            "Fix or remove them from the dataset, then run again."
        )
    if low < -_RANGE_MARGIN or high > 1 + _RANGE_MARGIN:
        raise ValueError(
            f"transformed images range over [{low:.3g}, {high:.3g}], expected [0, 1]; "
            "add intensity scaling (e.g. ScaleIntensityRanged from 0-255 to 0-1) to the transform."
        )
    n_images = len(datalist)
    logger.info("norm stats over %d images of shape %s: mean %s", n_images, list(shape), np.round(mean, 4).tolist())
    return {
        "mean": mean.tolist(),
        "std": np.sqrt(m2 / count).tolist(),
        "n_images": n_images,
        "image_shape": [shape[1], shape[2]],
    }


def norm_stats_path(dataset_dir: str | Path, image_size: int | Sequence[int], clahe: bool = False) -> Path:
    """Where the statistics for one preprocessing live: ``<dataset_dir>/norm_stats_<H>x<W>[_clahe].json``.

    The size and CLAHE are in the name because the statistics depend on both: CLAHE alone moves the mean
    of chest radiographs by a third, and normalising without it with CLAHE statistics would be wrong.

    Args:
        dataset_dir: the dataset directory.
        image_size: model input size, one int for square or ``(H, W)``.
        clahe: whether the preprocessing applies CLAHE.
    """
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    return Path(dataset_dir) / f"norm_stats_{height}x{width}{'_clahe' if clahe else ''}.json"


def write_norm_stats(stats: dict, path: str | Path) -> None:
    """Write `stats` as JSON atomically (temporary file + ``os.replace``).

    An interrupted run then leaves either the old file or none, never a truncated one that
    would fail every later training start.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, text=True) as handle:
        json.dump(stats, handle, indent=2)
        handle.write("\n")


def _create_command(path: Path) -> str:
    """The CLI call that writes `path`, with the size read back from its name when it follows the convention."""
    match = _NAME.fullmatch(path.name)
    if match is None:
        size = "S"
    else:
        height, width, clahe = match.groups()
        size = height if height == width else f"'[{height},{width}]'"
        size += " --clahe True" if clahe else ""
    return f"medbundle norm_stats --data {path.parent} --image_size {size}"


def _channels(stats: object, field: str) -> bool:
    values = stats.get(field) if isinstance(stats, dict) else None
    return isinstance(values, list) and bool(values) and all(isinstance(v, Real) for v in values)


def read_norm_stats(path: str | Path) -> dict | None:
    """Read statistics written by :func:`write_norm_stats`, or None when the file does not exist.

    A missing file is normal (the statistics are optional): the caller falls back to the
    backbone's pretrained statistics, and this logs once per file, at INFO, how to create it.

    Args:
        path: the JSON file, usually from :func:`norm_stats_path`.

    Raises:
        ValueError: the file is not valid JSON or lacks positive per-channel ``mean``/``std``
            lists of one length, ``n_images`` or ``image_shape``.
    """
    path = Path(path)
    if not path.is_file():
        if path not in _reported_missing:
            _reported_missing.add(path)
            logger.info(
                "%s not found: normalising with the backbone's pretrained mean/std. To use this dataset's own "
                "statistics at this image size, run: %s",
                path,
                _create_command(path),
            )
        return None
    fix = f"delete it and re-run: {_create_command(path)}"
    try:
        stats = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); {fix}") from exc
    valid = (
        _channels(stats, "mean")
        and _channels(stats, "std")
        and len(stats["mean"]) == len(stats["std"])
        and all(std > 0 for std in stats["std"])
        and isinstance(stats.get("n_images"), int)
        and isinstance(stats.get("image_shape"), list)
        and len(stats["image_shape"]) == 2
    )
    if not valid:
        raise ValueError(
            f"{path} does not hold normalisation statistics (needs per-channel 'mean' and positive 'std' lists "
            f"of one length, 'n_images' and 'image_shape' [H, W]); {fix}"
        )
    return stats
