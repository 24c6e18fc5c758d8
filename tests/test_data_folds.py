"""Tests of patient-grouped, stratified folds."""

from __future__ import annotations

import numpy as np
import pytest

from medbundle.data import check_no_leakage, grouped_folds, split_fold


def make_datalist(n_patients=200, positive_rate=0.15, seed=0):
    """Random datalist with 1-4 images per patient and a per-patient label."""
    rng = np.random.default_rng(seed)
    datalist = []
    for patient in range(n_patients):
        label = float(rng.random() < positive_rate)
        for image in range(rng.integers(1, 5)):
            datalist.append({"image": f"{patient}_{image}", "patient_id": str(patient), "label": [label]})
    return datalist


def test_folds_are_grouped_complete_and_stratified():
    datalist = make_datalist()
    overall = np.mean([item["label"][0] for item in datalist])
    seen = []
    for fold in range(5):
        train, val = split_fold(datalist, fold)
        assert not {item["patient_id"] for item in train} & {item["patient_id"] for item in val}
        assert len(train) + len(val) == len(datalist)
        assert np.mean([item["label"][0] for item in val]) == pytest.approx(overall, abs=0.05)
        seen.extend(item["image"] for item in val)
    assert sorted(seen) == sorted(item["image"] for item in datalist)  # every row validated exactly once


def test_grouped_folds_deterministic_and_accepts_scalar_labels():
    datalist = make_datalist()
    groups = [item["patient_id"] for item in datalist]
    listed = grouped_folds(groups, [item["label"] for item in datalist], n_splits=4, seed=3)
    scalar = grouped_folds(groups, [item["label"][0] for item in datalist], n_splits=4, seed=3)
    np.testing.assert_array_equal(listed, scalar)
    assert set(listed.tolist()) == {0, 1, 2, 3}
    assert not np.array_equal(listed, grouped_folds(groups, [item["label"] for item in datalist], 4, seed=4))


def test_fold_without_positive_raises():
    datalist = make_datalist(n_patients=40, positive_rate=0.0)
    for item in datalist:
        if item["patient_id"] in ("0", "1"):
            item["label"] = [1.0]
    folds = grouped_folds([item["patient_id"] for item in datalist], [item["label"] for item in datalist])
    positive_folds = {f for f, item in zip(folds, datalist) if item["label"] == [1.0]}
    empty_fold = next(f for f in range(5) if f not in positive_folds)
    n_val = int((folds == empty_fold).sum())
    n_positive = sum(item["label"] == [1.0] for item in datalist)
    with pytest.raises(ValueError, match=f"fold {empty_fold} of 5: the validation split .*fewer folds") as info:
        split_fold(datalist, empty_fold)
    assert (
        f"has 0 items with label 1 (of {n_val} items; {n_positive} positives in the whole data set), "
        "so AUROC / pF1 are undefined there. Only 2 patient_id values have label 1, so at most 2 folds"
    ) in str(info.value)
    assert "add data with label 1" in str(info.value)


def test_fold_without_a_class_of_several_names_the_class():
    datalist = make_datalist(n_patients=40, positive_rate=0.0)
    for item in datalist:
        if item["patient_id"] in ("0", "1"):
            item["label"] = [2.0]
    folds = grouped_folds([item["patient_id"] for item in datalist], [item["label"] for item in datalist])
    empty_fold = next(f for f in range(5) if f not in {f for f, item in zip(folds, datalist) if item["label"] == [2.0]})
    with pytest.raises(ValueError, match=r"the validation split has 0 items with label 2 \(of \d+ items; \d+ items "
                       r"with label 2 in the whole data set\)"):
        split_fold(datalist, empty_fold)


@pytest.mark.filterwarnings("ignore:The least populated class")
def test_training_split_without_positive_raises():
    datalist = make_datalist(n_patients=40, positive_rate=0.0)
    for item in datalist:
        if item["patient_id"] == "0":
            item["label"] = [1.0]
    fold = grouped_folds([item["patient_id"] for item in datalist], [item["label"] for item in datalist])[0]
    with pytest.raises(ValueError, match=f"fold {fold} of 5: the training split has 0 items with label 1 .*never sees "
                       "one. Only 1 patient_id has label 1 and cross-validation needs at least 2: add data"):
        split_fold(datalist, int(fold))


def test_check_no_leakage_catches_leak():
    train = [{"patient_id": "a"}, {"patient_id": "b"}]
    val = [{"patient_id": "b"}, {"patient_id": "c"}]
    with pytest.raises(ValueError, match=r"1 patient_id value\(s\) occur in both train and val, e.g. \['b'\]"):
        check_no_leakage(train, val)
    check_no_leakage(train, [{"patient_id": "c"}])


def test_split_fold_argument_errors():
    datalist = make_datalist(n_patients=20)
    with pytest.raises(ValueError, match="fold must be in"):
        split_fold(datalist, 5)
    with pytest.raises(ValueError, match="lack the key 'cancer'"):
        split_fold(datalist, 0, label_key="cancer")
    with pytest.raises(ValueError, match="only 3 distinct groups"):
        grouped_folds(["a", "b", "c"], [0, 1, 0], n_splits=5)
