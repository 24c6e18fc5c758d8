from __future__ import annotations

from medbundle.data import describe_split


def test_binary_split_reports_images_patients_and_positives():
    items = [{"label": [1.0], "patient_id": "a"}, {"label": [0.0], "patient_id": "a"}, {"label": [0.0], "patient_id": "b"},
             {"label": [0.0], "patient_id": "c"}]
    assert describe_split("train", items) == "train: 4 images of 3 patients, 1 positive (25.0 %)"


def test_multiclass_split_reports_every_class_by_name_even_when_absent():
    items = [{"label": 0}, {"label": 2}, {"label": 2}]
    assert describe_split("validation", items, ["Viral", "Bacterial", "Normal"]) == (
        "validation: 3 images (Viral: 1, Bacterial: 0, Normal: 2)"
    )


def test_unlabelled_items_report_only_their_count():
    assert describe_split("test", [{"image": "a.png"}]) == "test: 1 image"
