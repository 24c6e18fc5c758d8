"""``medbundle explain``: Grad-CAM maps of a trained bundle for any images, on the images the network saw.

The bundle's own inference preprocessing (``preprocessing`` of ``inference.yaml``, with the checkpoint's stored
settings: crop, flip, resize, CLAHE ...) and network (:func:`~medbundle.export.load_bundle_network`) are used,
so a map lines up with what inference predicted from, not with the file on disk.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import cv2
import torch

from medbundle.data import image_files_datalist
from medbundle.explain.overlay import explain_batch
from medbundle.export import load_bundle_network
from medbundle.io import HDF5_SEPARATOR, IMAGE_SUFFIXES
from medbundle.tasks import get_task

__all__ = ["CSV_COLUMNS", "explain"]

#: the columns of ``explain.csv``
CSV_COLUMNS = ("image", "image_id", "class", "probability", "png")


def _datalist(task: str, images: str | Sequence[str]) -> list[dict]:
    """Items ``{"image", "image_id"}`` for image files, or for every image of the task's kind below one folder."""
    paths = [images] if isinstance(images, (str, Path)) else [str(image) for image in images]
    members = [path for path in map(str, paths) if HDF5_SEPARATOR in path]
    if members:  # "<file.hdf5>::<key>" (isic): the task's reader opens the member; its id is the key
        return [{"image": path, "image_id": path.rpartition(HDF5_SEPARATOR)[2]} for path in members]
    suffixes = tuple((get_task(task).ensemble or {}).get("image_suffixes", IMAGE_SUFFIXES))  # the task's image files
    return image_files_datalist(paths[0] if len(paths) == 1 and Path(paths[0]).is_dir() else paths, suffixes=suffixes)


def _probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Sigmoid of a single logit, else softmax over the classes."""
    return torch.sigmoid(logits) if logits.shape[1] == 1 else torch.softmax(logits, dim=1)


def explain(
    bundle: str,
    checkpoint: str,
    images: str | Sequence[str],
    out: str = "explain",
    class_index: int | None = None,
    target_layer: str | None = None,
    batch_size: int = 8,
    device: str | None = None,
) -> list[dict]:
    """Write a Grad-CAM picture per image and ``explain.csv``; return the CSV's rows.

    Example::

        medbundle explain --bundle bundles/chest_xray --checkpoint bundles/chest_xray/models/fold0/model.pt \\
            --images a.png b.png --out explain

    Args:
        bundle: the bundle folder (e.g. ``bundles/rsna``).
        checkpoint: a best model written by its training.
        images: image files of the task's kind, or one folder (searched recursively).
        out: output folder: ``<out>/<image_id>.png`` (the network's input beside the map over it, captioned
            with the image id and probability) and ``<out>/explain.csv``.
        class_index: the network output to explain; None explains each image's predicted class (binary tasks:
            their single logit, the positive class).
        target_layer: the module to explain; None chooses it per timm family (:func:`~medbundle.explain.target_layer`).
        batch_size: images per forward and backward pass.
        device: e.g. ``"cuda:0"``; default the first GPU if there is one, else the CPU.

    Returns:
        One dict per image with :data:`CSV_COLUMNS`: the image path, its id, the explained class (its name
        where the checkpoint stores class names), the probability of that class and the written PNG.
    """
    loaded = load_bundle_network(bundle, checkpoint)
    device = torch.device(device or ("cuda:0" if torch.cuda.is_available() else "cpu"))
    network = loaded.network.to(device)
    preprocessing = loaded.parser.get_parsed_content("preprocessing")
    class_names = loaded.entries["config"].get("class_names")
    datalist = _datalist(loaded.task, images)
    out_dir = Path(out)
    rows = []
    for start in range(0, len(datalist), batch_size):
        items = datalist[start : start + batch_size]
        batch = torch.stack([torch.as_tensor(preprocessing(dict(item))["image"]).float() for item in items]).to(device)
        with torch.no_grad():
            logits = network(batch)
        indices = logits.argmax(1) if class_index is None else torch.full((len(items),), class_index, device=device)
        probabilities = _probabilities(logits).gather(1, indices[:, None])[:, 0].tolist()
        ids = [str(item["image_id"]) for item in items]
        pictures = explain_batch(network, batch, ids, probabilities, class_index=indices.tolist(), target_layer=target_layer)
        for item, image_id, index, probability, picture in zip(items, ids, indices.tolist(), probabilities, pictures):
            png = out_dir / f"{image_id}.png"
            png.parent.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(png), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)):
                raise OSError(f"OpenCV could not write {png}; check that {png.parent} is writable.")
            # one logit: the positive class, the second of two class names
            name = class_names[index + (logits.shape[1] == 1)] if class_names else str(index)
            rows.append({"image": str(item["image"]), "image_id": image_id, "class": name,
                         "probability": probability, "png": str(png)})  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "explain.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return rows
