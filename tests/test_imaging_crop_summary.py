"""Tests for medbundle.imaging.crop_summary: counts, outliers and the words a run, a preview and a data set check share."""

from __future__ import annotations

import numpy as np
import pytest

from medbundle.imaging.breast_crop import BreastCropper, crop_record
from medbundle.imaging.crop_summary import MIN_FOR_OUTLIERS, crop_outliers, summarize_crops


def record(area: float | None, reason: str = "") -> dict:
    """A crop record of a 100x100 image with a square box of `area` (None: no breast found)."""
    if area is None:
        return crop_record(None, reason, (100, 100))
    side = round(100 * area**0.5)
    return {**crop_record(None, "", (100, 100)), "found": True, "reason": "", "chest_wall": "left",
            "box": [0, side, 0, side], "box_height": side / 100, "box_width": side / 100, "box_area": side**2 / 1e4}


def test_crop_record_of_a_found_breast_and_of_a_fallback():
    image = np.zeros((1, 200, 100), np.float32)
    image[0, 40:160, :60] = 0.6
    found, reason = BreastCropper(margin=0, working_size=512).find(image)
    assert reason == ""
    row = crop_record(found, reason, image.shape[-2:])
    assert row["found"] and row["chest_wall"] == "left" and row["box"] == [40, 160, 0, 60]
    assert (row["box_height"], row["box_width"], row["box_area"]) == pytest.approx((0.6, 0.6, 0.36))
    blank = crop_record(None, "blank", (200, 100))
    assert not blank["found"] and blank["box"] == [0, 200, 0, 100] and blank["box_area"] == 1.0
    assert blank["chest_wall"] == "" and blank["reason"] == "blank"


def test_outliers_are_boxes_far_from_the_others():
    areas = [0.5, 0.55, 0.6, 0.45, 0.52, 0.58, 0.5, 0.48, 0.03, 0.99]
    flags, median = crop_outliers(areas)
    assert flags.tolist() == [False] * 8 + [True, False]  # a label-sized box; a whole image is within reach
    assert median == pytest.approx(0.51)
    assert not crop_outliers([0.5, 0.5001, 0.4999, 0.5, 0.5, 0.5, 0.5, 0.5, 0.45])[0].any(), "near-copies"
    assert not crop_outliers(areas[: MIN_FOR_OUTLIERS - 2] + [0.01])[0].any(), "too few boxes to judge"


def test_summary_counts_fallbacks_by_reason_and_notes_outliers():
    records = [record(a) for a in (0.5, 0.55, 0.6, 0.45, 0.52, 0.58, 0.5, 0.48, 0.02)]
    records += [record(None, "its intensities span less than min_threshold=0.05"), record(None, "covers 1.2% of it")]
    records.append(record(None, "covers 3.4% of it"))
    summary = summarize_crops(records, [f"img{i}" for i in range(len(records))])
    assert (summary.total, summary.found) == (12, 9)
    assert summary.fallbacks[0] == ("img9", "its intensities span less than min_threshold=0.05")
    assert summary.reasons == {"covers #% of it": 2, "its intensities span less than min_threshold=#": 1}
    assert summary.outliers[8] and summary.notes[8].startswith("unusual box: 2% of the image, median 50%")
    assert summary.line("train", "out/crop_report.csv") == (
        "crop (train): breast found in 9 of 12 images; whole image kept for 3; 1 boxes of unusual size "
        "(out/crop_report.csv)"
    )
    assert summary.fallback_share == pytest.approx(0.25)
    assert summary.box_quantiles()["p50"] == pytest.approx(0.5, abs=0.02)
    warning = summary.warning("train", 0.05, "out/crop_report.csv")
    assert "no breast found in 3 of 12 images (25.0%, above crop_fallback_warn=5%)" in warning
    assert "2 x covers #% of it" in warning and "img9, img10, img11" in warning and "medbundle preview" in warning
    assert summary.warning("train", 0.25) is None


def test_summary_rejects_mismatched_names():
    with pytest.raises(ValueError, match="2 crop records for 1 images"):
        summarize_crops([record(0.5), record(0.5)], ["a"])
