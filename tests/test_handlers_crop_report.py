"""Tests for medbundle.handlers.CropReportHandler: the log line, crop_report.csv and the loud warning of a split."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from monai.data import DataLoader, MetaTensor
from monai.engines import SupervisedEvaluator

from medbundle.handlers import CropReportHandler
from medbundle.handlers.crop_report import CROP_REPORT, CROP_REPORT_COLUMNS
from medbundle.imaging.breast_crop import crop_record


def found(box=(10, 90, 0, 60), shape=(100, 80)):
    y0, y1, x0, x1 = box
    return {"found": True, "reason": "", "chest_wall": "left", "box": list(box), "height": shape[0], "width": shape[1],
            "box_height": (y1 - y0) / shape[0], "box_width": (x1 - x0) / shape[1],
            "box_area": (y1 - y0) * (x1 - x0) / (shape[0] * shape[1])}  # fmt: skip


def dataset(records):
    return SimpleNamespace(records=records, data=[{"image": f"/d/{i}.dcm", "image_id": str(i)} for i in range(len(records))])


def test_report_logs_one_line_and_writes_every_image(tmp_path, caplog):
    records = [found() for _ in range(9)] + [crop_record(None, "blank", (100, 80))]
    with caplog.at_level(logging.INFO, logger="medbundle.handlers.crop_report"):
        summary = CropReportHandler(tmp_path, "train", warn_above=0.2).report(dataset(records))
    assert summary.found == 9
    path = tmp_path / CROP_REPORT
    assert [r.getMessage() for r in caplog.records] == [
        f"crop (train): breast found in 9 of 10 images; whole image kept for 1 ({path})"
    ]
    frame = pd.read_csv(path, keep_default_na=False)
    assert list(frame.columns) == list(CROP_REPORT_COLUMNS) and len(frame) == 10
    last = frame.iloc[-1]
    assert (last["split"], last["image"], last["image_id"], last["found"], last["note"]) == (
        "train", "/d/9.dcm", 9, False, "blank")
    assert (last["y0"], last["y1"], last["x0"], last["x1"], last["box_area"]) == (0, 100, 0, 80, 1.0)
    assert frame.iloc[0][["chest_wall", "box_height", "box_width", "box_area"]].tolist() == ["left", 0.8, 0.75, 0.6]


def test_more_fallbacks_than_the_share_warn_loudly_and_splits_keep_their_own_rows(tmp_path, caplog):
    CropReportHandler(tmp_path, "validation").report(dataset([found(), found()]))
    records = [found()] * 3 + [crop_record(None, "no bright region", (100, 80))] * 2
    with caplog.at_level(logging.WARNING, logger="medbundle.handlers.crop_report"):
        CropReportHandler(tmp_path, "train", warn_above=0.05).report(dataset(records))
    warning = caplog.records[-1]
    assert warning.levelno == logging.WARNING
    assert "no breast found in 2 of 5 images (40.0%, above crop_fallback_warn=5%)" in warning.getMessage()
    assert "2 x no bright region" in warning.getMessage() and "3, 4" in warning.getMessage()
    frame = pd.read_csv(tmp_path / CROP_REPORT)
    assert frame["split"].value_counts().to_dict() == {"train": 5, "validation": 2}


def test_a_dataset_without_records_is_not_reported(tmp_path):
    assert CropReportHandler(tmp_path, "train").report(SimpleNamespace(data=[])) is None
    assert CropReportHandler(tmp_path, "train").report(dataset([None])) is None
    assert not (tmp_path / CROP_REPORT).exists()


def test_rejects_a_share_outside_0_1(tmp_path):
    with pytest.raises(ValueError, match="crop_fallback_warn"):
        CropReportHandler(tmp_path, "train", warn_above=5)


def test_attached_to_an_evaluator_it_reports_the_records_of_its_batches(tmp_path, caplog):
    """Inference: the records come through the DataLoader's collation and the evaluator's batches."""
    items = []
    for i in range(5):
        record = found() if i else crop_record(None, "blank", (100, 80))
        image = MetaTensor(torch.zeros(1, 4, 4), meta={"filename_or_obj": f"/test/{i}.dcm"})
        items.append({"image": image, "image_id": f"id{i}", "crop": record})
    evaluator = SupervisedEvaluator(device=torch.device("cpu"), val_data_loader=DataLoader(items, batch_size=2),
                                    network=torch.nn.Flatten())  # fmt: skip
    CropReportHandler(tmp_path, "test").attach(evaluator)
    with caplog.at_level(logging.INFO, logger="medbundle.handlers.crop_report"):
        evaluator.run()
    assert "crop (test): breast found in 4 of 5 images; whole image kept for 1" in caplog.text
    frame = pd.read_csv(tmp_path / CROP_REPORT, keep_default_na=False)
    assert frame["image"].tolist() == [f"/test/{i}.dcm" for i in range(5)]
    assert frame["image_id"].tolist() == [f"id{i}" for i in range(5)]
    assert frame["found"].tolist() == [False, True, True, True, True]
    assert frame.iloc[1][["y0", "y1", "x0", "x1"]].tolist() == [10, 90, 0, 60]
