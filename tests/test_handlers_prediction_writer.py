from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import make_evaluator
from ignite.engine import Engine

from medbundle.handlers import PredictionWriter, SubmissionWriter

PROBS = [0.9, 0.7, 0.2, 0.4, 0.1, 0.3]
LABELS = [1, 1, 0, 0, 0, 1]
BREASTS = ["1_L", "1_L", "1_R", "1_R", "2_L", "2_L"]


def test_prediction_writer_writes_image_breast_and_metrics(tmp_path):
    writer = PredictionWriter(tmp_path, threshold=0.5, group_key="breast_id", settings={"tta": True})
    make_evaluator(PROBS, LABELS, BREASTS, handlers=[writer]).run()
    images = pd.read_csv(tmp_path / "predictions_image.csv")
    assert len(images) == 6 and images["pred"].tolist() == pytest.approx(PROBS, abs=1e-5)
    breasts = pd.read_csv(tmp_path / "predictions_breast.csv")
    assert breasts["breast_id"].tolist() == ["1_L", "1_R", "2_L"]
    assert breasts["pred"].tolist() == pytest.approx([0.8, 0.3, 0.2], abs=1e-5)
    assert breasts["label"].tolist() == [1, 0, 1]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["breast"]["tp"] == 1 and metrics["breast"]["fn"] == 1 and metrics["breast"]["tn"] == 1
    assert metrics["image"]["auroc"] == pytest.approx(8 / 9)
    assert metrics["tta"] is True  # how the numbers were made


def test_submission_is_one_binarised_row_per_breast(tmp_path):
    out = tmp_path / "sub" / "submission.csv"
    make_evaluator(PROBS, None, BREASTS, handlers=[SubmissionWriter(out, threshold=0.25)]).run()
    submission = pd.read_csv(out)
    assert list(submission.columns) == ["prediction_id", "cancer"]
    assert submission.set_index("prediction_id")["cancer"].to_dict() == {"1_L": 1, "1_R": 1, "2_L": 0}


def test_submission_without_threshold_keeps_probabilities(tmp_path):
    out = tmp_path / "submission.csv"
    make_evaluator(PROBS, None, BREASTS, handlers=[SubmissionWriter(out, threshold=None, how="max")]).run()
    assert pd.read_csv(out)["cancer"].tolist() == pytest.approx([0.9, 0.4, 0.3], abs=1e-5)


def test_metrics_json_writes_an_undefined_metric_as_null(tmp_path):
    """A class absent from the split has no AUROC or sensitivity: null, not the bare NaN strict parsers reject."""

    def reject(constant):
        raise ValueError(f"{constant} is not JSON")

    frame = pd.DataFrame({"image_id": ["a", "b", "c", "d"], "label": [0, 1, 0, 1],
                          "pred_0": [0.7, 0.2, 0.5, 0.3], "pred_1": [0.2, 0.7, 0.3, 0.5], "pred_2": [0.1] * 4})
    PredictionWriter(tmp_path, class_names=["x", "y", "absent"]).write(frame, Engine(lambda engine, batch: None))
    metrics = json.loads((tmp_path / "metrics.json").read_text(), parse_constant=reject)
    assert metrics["image"]["per_class"]["absent"]["auroc"] is None
    assert metrics["image"]["per_class"]["absent"]["sensitivity"] is None
    assert metrics["image"]["accuracy"] == 1.0


def test_binary_predictions_are_named_by_two_class_names_at_the_threshold(tmp_path):
    writer = PredictionWriter(tmp_path / "labelled", threshold=0.35, class_names=["benign", "malignant"])
    make_evaluator(PROBS, LABELS, BREASTS, handlers=[writer]).run()
    images = pd.read_csv(tmp_path / "labelled" / "predictions_image.csv")
    assert images["pred_class"].tolist() == ["malignant", "malignant", "benign", "malignant", "benign", "benign"]
    assert images["label_class"].tolist() == ["malignant", "malignant", "benign", "benign", "benign", "malignant"]
    make_evaluator(PROBS, None, BREASTS, handlers=[PredictionWriter(tmp_path / "new", class_names=["a", "b"])]).run()
    unlabelled = pd.read_csv(tmp_path / "new" / "predictions_image.csv")
    assert "label_class" not in unlabelled and unlabelled["pred_class"].tolist() == ["b", "b", "a", "a", "a", "a"]
