"""The breast crop on 12 real scanned films (mini-MIAS, ../shared/data/mammo_films) against hand-annotated boxes.

Every film's crop must hold >= 98 % of its annotated breast box, be at most 15 % larger, find the chest wall on the
film's side, and leave no marker pixel (film label, film number) in the crop unless blanked. The same films run
through the rsna bundle's own chain: JPEG 2000 DICOMs in both photometric interpretations, read at full and at
reduced resolution. Skipped when ../shared is absent.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import FILM_BOXES
from monai.bundle import ConfigParser

from medbundle.imaging import BreastCropper

RSNA_CONFIGS = Path(__file__).resolve().parents[1] / "bundles" / "rsna" / "configs"
FILMS = sorted(FILM_BOXES)


def mirrored(box, width):
    y0, y1, x0, x1 = box
    return [y0, y1, width - x1, width - x0]


def check_crop(name, image, box, output, chest_wall, scale=1.0, mirror=False):
    """The annotated breast is in `box`, which is not much larger; every marker pixel is outside it or blanked
    (changed in the `output` cropped from `image`)."""
    film = FILM_BOXES[name]
    truth = np.array(mirrored(film["breast"], 1024) if mirror else film["breast"]) * scale
    y0, y1, x0, x1 = box
    inside = max(0.0, min(y1, truth[1]) - max(y0, truth[0])) * max(0.0, min(x1, truth[3]) - max(x0, truth[2]))
    area = (truth[1] - truth[0]) * (truth[3] - truth[2])
    assert inside >= 0.98 * area, f"{name}: the crop {box} holds {inside / area:.1%} of the breast {truth.tolist()}"
    assert (y1 - y0) * (x1 - x0) <= 1.15 * area, f"{name}: the crop {box} is {(y1 - y0) * (x1 - x0) / area:.2f}x the breast"
    right = (film["laterality"] == "R") != mirror
    assert chest_wall == ("right" if right else "left"), name
    for marker in film["markers"]:
        my0, my1, mx0, mx1 = np.round(np.array(mirrored(marker, 1024) if mirror else marker) * scale).astype(int)
        patch = image[my0:my1, mx0:mx1]
        ys, xs = np.nonzero(patch >= 0.6 * patch.max())
        ys, xs = ys + my0, xs + mx0
        kept = (ys >= y0) & (ys < y1) & (xs >= x0) & (xs < x1)
        survivors = output[ys[kept] - y0, xs[kept] - x0] == image[ys[kept], xs[kept]]
        assert not survivors.any(), f"{name}: {survivors.sum()} pixels of the marker {marker} are in the crop"


@pytest.mark.parametrize("mirror", [False, True], ids=["as_scanned", "mirrored"])
@pytest.mark.parametrize("name", FILMS)
def test_crop_holds_the_annotated_breast_and_no_marker(mammo_films, name, mirror):
    image = cv2.imread(str(mammo_films / f"{name}.png"), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
    if mirror:
        image = np.ascontiguousarray(image[:, ::-1])
    cropper = BreastCropper(blank_outside=True)
    found, reason = cropper.find(image[None])
    assert found is not None, f"{name}: {reason}"
    output = cropper.apply(image[None], found)[0]
    check_crop(name, image, found.box, output, found.chest_wall, mirror=mirror)


def bundle_crop_chain(image_size):
    """LoadImaged (MammoDicomReader) -> EnsureChannelFirstd -> BreastCropd, as rsna's train.yaml caches them."""
    parser = ConfigParser()
    parser.read_config(str(RSNA_CONFIGS / "train.yaml"))
    parser["image_size"] = list(image_size)
    transforms = parser.get_parsed_content("cached_transforms")
    return transforms[:3]


@pytest.mark.parametrize("image_size", [(1024, 512), (512, 256)], ids=["full", "reduced"])
@pytest.mark.parametrize("photometric", ["MONOCHROME1", "MONOCHROME2"])
def test_films_as_jpeg2000_dicoms_through_the_bundle_chain(film_dicoms, photometric, image_size):
    """Read as the bundle reads them (MONOCHROME1 inverted, JPEG 2000 decoded at half size for a 512 px input), the
    crop record says what was found and the crop holds the breast and no marker."""
    chain = bundle_crop_chain(image_size)
    assert type(chain[2]).__name__ == "BreastCropd" and chain[2].record_key == "crop"
    for name in FILMS:
        item = {"image": str(film_dicoms[name, photometric])}
        loaded = chain[1](chain[0](item))
        decoded = loaded["image"].clone()
        out = chain[2](loaded)
        record = out["crop"]
        assert record["found"], f"{name}: {record['reason']}"
        scale = decoded.shape[-1] / 1024
        assert scale == (0.5 if image_size[0] == 512 else 1.0)
        assert out["image"].meta["reduce_level"] == (1 if scale == 0.5 else 0)
        assert record["height"] == record["width"] == decoded.shape[-1]
        check_crop(name, decoded[0].numpy(), record["box"], out["image"][0].numpy(), record["chest_wall"], scale=scale)
