"""``medbundle ensemble``: predict image files with an ensemble of trained checkpoints, one CSV row per image."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from medbundle.ensemble.datalists import image_datalist
from medbundle.ensemble.members import load_members
from medbundle.ensemble.predictions import predict_members
from medbundle.ensemble.report import combine_predictions, prediction_table

__all__ = ["ensemble"]


def _paths(value: str | Sequence[str] | None) -> list[str] | None:
    """Paths given as a list, one path, or a bracketed list the shell passed as one word (``[a.jpg,b.jpg]``)."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):
            return [part.strip().strip("'\"") for part in text[1:-1].split(",") if part.strip()]
        return [text]
    return [str(v) for v in value]


def ensemble(
    task: str,
    checkpoints: str | None = None,
    members: Sequence[str] | None = None,
    images: str | Sequence[str] | None = None,
    image_dir: str | None = None,
    strategy: str = "soft",
    output_csv: str = "ensemble.csv",
    image_size: int | Sequence[int] | None = None,
    batch_size: int = 32,
    num_workers: int = 0,
    weights: Sequence[float] | None = None,
    tta: bool = False,
) -> str:
    """Predict unlabelled image files with every member and the ensemble; write one row per image.

    Each member sees the images at its own stored size (or `image_size`), preprocessed by its task bundle's
    ``inference.yaml``. Rows hold ``image``, ``image_id``, every member's probability (``<member>:<class>`` for
    chest_xray) and the ensemble's, with its decision (``ensemble_label`` at the ensemble threshold, or
    ``ensemble_class``). RSNA images are scored one by one (no breast grouping without a CSV).

    Example::

        medbundle ensemble --task isic --checkpoints runs/isic --image_dir new_crops --strategy hard_weighted
        medbundle ensemble --task chest_xray --members "[a/model.pt,b/model.pt]" --images "[x.png,y.dcm]"

    Args:
        task: ``rsna`` (DICOM files), ``isic`` (JPEG/PNG crops) or ``chest_xray`` (PNG/JPEG/DICOM).
        checkpoints: folder searched for ``model.pt`` files (``<model>/fold_<k>/model.pt``, ``models/fold<k>/model.pt``).
        members: explicit ``model.pt`` files instead of the search (a list, or ``"[a.pt,b.pt]"`` on the command line).
        images: image files: a list, one file, or ``"[a.jpg,b.jpg]"`` on the command line.
        image_dir: a folder of images, searched recursively.
        strategy: ``soft`` or ``hard_weighted`` (binary tasks); ``soft``/``mean``, ``weighted_mean`` or ``max`` (chest_xray).
        output_csv: the CSV to write.
        image_size: an override of every member's stored image size: one int (square) or ``[H,W]``.
        batch_size: images per batch.
        num_workers: DataLoader processes.
        weights: one weight per member (sorted by path) for ``hard_weighted`` / ``weighted_mean``.
        tta: average each member's logits over flips.

    Returns:
        The path of the written CSV.
    """
    loaded = load_members(task, checkpoints=checkpoints, members=_paths(members))
    datalist = image_datalist(task, images=_paths(images), image_dir=image_dir)
    size = [image_size, image_size] if isinstance(image_size, int) else image_size
    predictions = predict_members(
        loaded, datalist, task, labelled=False, image_size=size, tta=tta, batch_size=batch_size, num_workers=num_workers
    )
    combined = combine_predictions(predictions, loaded, task, strategy=strategy, weights=weights)
    table = prediction_table(combined, "image")
    table.insert(0, "image", [item["image"] for item in datalist])
    path = Path(output_csv)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)
    return str(path)
