"""What a task's report measures: chest_xray's subgroups read from the files (source folder, native size)."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd

from medbundle.report.facts import REPORT_FACTS, age_band, file_attributes


def test_chest_xray_subgroups_come_from_the_folder_below_the_class_and_the_native_size(tmp_path):
    ids, images = [], {}
    for index, (source, side) in enumerate([("kermany", 224), ("kermany", 300), ("covidx", 1200), ("covidx", 2300)]):
        image_id = f"test/Normal/{source}/img{index}"
        path = tmp_path / f"img{index}.png"
        cv2.imwrite(str(path), np.zeros((side // 2, side), np.uint8))
        ids.append(image_id)
        images[image_id] = str(path)
    ids.append("test/Normal/flat")  # not nested: no source folder; its file is missing: unknown size
    frame = file_attributes(pd.Series(ids), images)
    assert frame["source_folder"].tolist()[:4] == ["kermany", "kermany", "covidx", "covidx"]
    assert pd.isna(frame["source_folder"].iloc[4])
    assert frame["native_size"].tolist() == ["0-511 px", "0-511 px", "1024-2047 px", "2048+ px", "unknown"]
    assert set(REPORT_FACTS["chest_xray"].attributes) == {"source folder", "native size"}


def test_an_attribute_with_one_value_is_left_out():
    frame = file_attributes(pd.Series(["val/Normal/a", "val/COVID/b"]), None)  # flat folders, no files given
    assert list(frame.columns) == []


def test_age_bands():
    assert age_band(pd.Series([35, 55, 65, 80, None])).tolist() == ["<50", "50-59", "60-69", "70+", "unknown"]


def test_the_native_size_of_a_dicom_radiograph_comes_from_its_header(tmp_path):
    import pydicom

    from medbundle.demo import write_chest_xray_demo
    from medbundle.report.facts import _long_side

    write_chest_xray_demo(tmp_path, n_train=2, n_val=2, n_test=2, size_range=(64, 80), seed=1)
    dicoms = sorted(tmp_path.rglob("*.dcm"))
    assert dicoms, "the chest demo writes some DICOM radiographs"
    for path in dicoms:
        header = pydicom.dcmread(path, stop_before_pixels=True)
        assert _long_side(str(path)) == max(header.Rows, header.Columns)
    assert np.isnan(_long_side(str(tmp_path / "absent.dcm"))) and np.isnan(_long_side(None))
