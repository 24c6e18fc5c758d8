"""Tests for medbundle.visualize's preview: tiles whose crop needs a look are framed in red with the reason."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import blank_dicom

from medbundle.demo import write_rsna_demo
from medbundle.visualize import preview_bundle
from medbundle.visualize.montage import ALERT, montage

RSNA = Path(__file__).resolve().parents[1] / "bundles" / "rsna"


def red_pixels(picture: np.ndarray) -> int:
    return int((np.abs(picture.astype(int) - np.array(ALERT)).sum(axis=-1) < 30).sum())


def test_montage_frames_alerted_tiles_in_red_and_writes_the_alert():
    images = [np.full((1, 40, 30), 0.5, np.float32)] * 3
    plain = montage(images, ["a", "b", "c"], columns=3, tile_height=64)
    framed = montage(images, ["a", "b", "c"], columns=3, tile_height=64, alerts=["", "whole image kept: blank", ""])
    assert red_pixels(plain) == 0
    assert red_pixels(framed) > 4 * 64  # a frame around one tile, and its text
    assert framed.shape[0] > plain.shape[0]  # a second caption line
    with pytest.raises(ValueError, match="alert"):
        montage(images, ["a", "b", "c"], alerts=[""])


@pytest.fixture(scope="module")
def demo_with_a_blank_image(tmp_path_factory):
    """An rsna demo set whose first training image is constant: the crop keeps it whole."""
    root = tmp_path_factory.mktemp("preview")
    write_rsna_demo(root, n_patients=4, n_test_patients=0, image_shape=(128, 104), seed=2)
    first = pd.read_csv(root / "train.csv", dtype=str).iloc[0]
    blank_dicom(root / "train_images" / first["patient_id"] / f"{first['image_id']}.dcm")
    return root


@pytest.mark.parametrize("before", [False, True])
def test_preview_frames_the_image_the_crop_kept_whole(demo_with_a_blank_image, tmp_path, caplog, before):
    import cv2

    data = demo_with_a_blank_image
    out = tmp_path / "preview.png"
    with caplog.at_level(logging.INFO, logger="medbundle.visualize.preview"):
        preview_bundle(RSNA, data, n=100, out=out, columns=4, before=before, image_size=[64, 32],
                       **{"train#datalist": "$@datalist"})  # fmt: skip
    picture = cv2.imread(str(out))[..., ::-1]
    assert red_pixels(picture) > 4 * 256
    assert "1 framed in red (crop kept the whole image" in caplog.text
    n_images = len(pd.read_csv(data / "train.csv"))
    rows = -(-(2 * n_images if before else n_images) // 4)
    assert picture.shape[0] == rows * (256 + 38 + 4)
