"""isic_datalist on the Kaggle layout written by the demo generator, and on what goes wrong with real downloads."""

from __future__ import annotations

import shutil

import cv2
import h5py
import numpy as np
import pandas as pd
import pytest

from medbundle.data import isic_datalist, split_fold
from medbundle.demo import write_isic_demo
from medbundle.io import RGBReader


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("isic")
    write_isic_demo(root, n_patients=30, positive_rate=0.1, n_test=6, size_range=(40, 60), seed=3)
    return root


def _copy(demo, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(demo, data)
    return data


def test_items_follow_the_csv_with_hdf5_members(demo):
    frame = pd.read_csv(demo / "train-metadata.csv", dtype={"isic_id": str, "patient_id": str})
    items = isic_datalist(demo)
    assert [item["image_id"] for item in items] == frame["isic_id"].tolist()
    assert [item["label"] for item in items] == [[float(t)] for t in frame["target"]]
    assert [item["patient_id"] for item in items] == frame["patient_id"].tolist()
    first = items[0]
    assert first["image"] == f"{demo / 'train-image.hdf5'}::{first['image_id']}"
    image, _ = RGBReader().get_data(RGBReader().read(first["image"]))
    assert image.ndim == 3 and image.shape[2] == 3


def test_unlabelled_test_set(demo):
    items = isic_datalist(demo, csv="test-metadata.csv", images="test-image.hdf5", label_column=None)
    assert len(items) == 6 and all("label" not in item and "patient_id" in item for item in items)
    frame = pd.read_csv(demo / "test-metadata.csv", dtype=str)
    assert [item["image_id"] for item in items] == frame["isic_id"].tolist()


def test_a_folder_of_jpeg_files_works_too(demo, tmp_path):
    folder = tmp_path / "train-image"
    folder.mkdir()
    shutil.copy(demo / "train-metadata.csv", tmp_path)
    with h5py.File(demo / "train-image.hdf5", "r") as file:
        for key in file:
            (folder / f"{key}.jpg").write_bytes(file[key][()])
    items = isic_datalist(tmp_path, images="train-image")
    hdf5_items = isic_datalist(demo)
    assert [i["image_id"] for i in items] == [i["image_id"] for i in hdf5_items]
    reader = RGBReader()
    from_file = reader.get_data(reader.read(items[0]["image"]))[0]
    from_hdf5 = reader.get_data(reader.read(hdf5_items[0]["image"]))[0]
    np.testing.assert_array_equal(from_file, from_hdf5)


def test_an_isic_id_missing_from_the_hdf5_is_named_or_skipped(demo, tmp_path, caplog):
    data = _copy(demo, tmp_path)
    victim = pd.read_csv(data / "train-metadata.csv", dtype=str)["isic_id"].iloc[4]
    with h5py.File(data / "train-image.hdf5", "a") as file:
        del file[victim]
    with pytest.raises(FileNotFoundError, match=rf"isic_id {victim} \(CSV .*line 6\) has no image in .*missing_images: skip"):
        isic_datalist(data)
    with caplog.at_level("WARNING"):
        items = isic_datalist(data, missing="skip")
    assert victim not in {item["image_id"] for item in items} and "Skipped 1 of" in caplog.text


def test_a_csv_without_target_names_the_column(demo, tmp_path):
    data = _copy(demo, tmp_path)
    frame = pd.read_csv(data / "train-metadata.csv")
    frame.drop(columns="target").to_csv(data / "train-metadata.csv", index=False)
    with pytest.raises(ValueError, match=r"train-metadata.csv lacks required column\(s\) \['target'\]"):
        isic_datalist(data)


def test_bad_labels_duplicates_and_empty_cells_name_lines(demo, tmp_path):
    data = _copy(demo, tmp_path)
    frame = pd.read_csv(data / "train-metadata.csv", dtype={"isic_id": str, "patient_id": str})
    bad = frame.copy()
    bad.loc[2, "target"] = 2
    bad.to_csv(data / "train-metadata.csv", index=False)
    with pytest.raises(ValueError, match=r"'target' must be 0 or 1; line\(s\) \[4\]"):
        isic_datalist(data)
    pd.concat([frame, frame.iloc[[1]]]).to_csv(data / "train-metadata.csv", index=False)
    with pytest.raises(ValueError, match=rf"{frame['isic_id'][1]} on lines \[3, {len(frame) + 2}\]"):
        isic_datalist(data)
    empty = frame.copy()
    empty.loc[0, "patient_id"] = None
    empty.to_csv(data / "train-metadata.csv", index=False)
    with pytest.raises(ValueError, match=r"empty cells .* line\(s\) \[2\]"):
        isic_datalist(data)


def test_missing_sources_say_what_to_point_at(demo, tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset_dir .* does not exist; .*demo_data --task isic"):
        isic_datalist(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="image source .*train-image.hdf5 does not exist"):
        data = tmp_path / "csv_only"
        data.mkdir()
        shutil.copy(demo / "train-metadata.csv", data)
        isic_datalist(data)
    with pytest.raises(FileNotFoundError, match="none of the .* isic_ids .* has an image"):
        isic_datalist(demo, images="test-image.hdf5")


def test_undecodable_bytes_fail_naming_the_member(demo, tmp_path):
    data = _copy(demo, tmp_path)
    victim = pd.read_csv(data / "train-metadata.csv", dtype=str)["isic_id"].iloc[0]
    with h5py.File(data / "train-image.hdf5", "a") as file:
        del file[victim]
        file[victim] = np.bytes_(b"\xff\xd8\xff\xe0 not really a jpeg")
    item = isic_datalist(data)[0]
    with pytest.raises(Exception, match=victim):
        RGBReader().get_data(RGBReader().read(item["image"]))


def test_a_fold_without_positives_explains_the_limit(demo):
    items = isic_datalist(demo)
    positive_patient = next(item["patient_id"] for item in items if item["label"] == [1.0])
    one_patient = [dict(item, label=[float(item["patient_id"] == positive_patient and item["label"] == [1.0])])
                   for item in items]
    with pytest.raises(ValueError, match="0 items with label 1.*Only 1 patient_id has label 1"):
        split_fold(one_patient, fold=0, n_splits=3)


def test_demo_jpeg_bytes_decode_like_cv2(demo):
    item = isic_datalist(demo)[1]
    with h5py.File(demo / "train-image.hdf5", "r") as file:
        raw = file[item["image_id"]][()]
    expected = cv2.cvtColor(cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) / 255.0
    image, _ = RGBReader().get_data(RGBReader().read(item["image"]))
    np.testing.assert_allclose(image, expected, atol=1e-6)
