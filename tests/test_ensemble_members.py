"""Finding, naming, checking and grouping ensemble members."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from medbundle.ensemble import (
    Member,
    find_checkpoints,
    group_members,
    load_members,
    member_names,
)

ISIC = {"task": "isic", "backbone": "resnet10t", "head": "linear", "in_chans": 3, "num_classes": 1, "image_size": [48, 48],
        "n_folds": 3, "seed": 42}
THRESHOLDS = {"roc_threshold": 0.4, "pf1_threshold": 0.5, "auroc": 0.8, "best_auroc": 0.8}


def save(path: Path, config: dict | None = None, thresholds: dict | None = THRESHOLDS, model: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"model": {}} if model else {}
    if config is not None:
        state["config"] = config
    if thresholds is not None:
        state["thresholds"] = thresholds
    torch.save(state, path)
    return path


def test_discovery_finds_both_layouts_sorted_and_names_them_by_folder(tmp_path):
    seed_layout = [save(tmp_path / m / "fold_0" / "model.pt", ISIC) for m in ("effnet", "convnext")]
    bundle_layout = save(tmp_path / "eva" / "models" / "fold1" / "model.pt", ISIC)
    save(tmp_path / "eva" / "models" / "fold1" / "last_checkpoint_epoch=3.pt", ISIC)
    found = find_checkpoints(tmp_path)
    assert found == sorted([*seed_layout, bundle_layout])
    assert member_names(found, tmp_path) == ["convnext/fold_0", "effnet/fold_0", "eva/fold1"]
    members = load_members("isic", checkpoints=tmp_path)
    assert [m.name for m in members] == ["convnext/fold_0", "effnet/fold_0", "eva/fold1"]
    assert [m.fold for m in members] == [0, 0, 1]
    assert members[0].threshold("roc_threshold") == 0.4


def test_explicit_members_override_the_search_and_are_named_below_their_common_folder(tmp_path):
    a = save(tmp_path / "runs" / "a" / "models" / "fold0" / "model.pt", ISIC)
    b = save(tmp_path / "other" / "b" / "fold_2" / "model.pt", ISIC)
    members = load_members("isic", checkpoints=tmp_path / "nowhere", members=[str(b), str(a)])
    assert [m.name for m in members] == ["other/b/fold_2", "runs/a/fold0"]
    assert member_names([a]) == ["fold0"]


def test_missing_folder_or_no_checkpoint_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_checkpoints(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="train the task bundle first"):
        find_checkpoints(tmp_path)
    with pytest.raises(ValueError, match="set checkpoints"):
        load_members("isic")


@pytest.mark.parametrize(
    ("config", "thresholds", "model", "error", "message"),
    [
        ({**ISIC, "task": "rsna"}, THRESHOLDS, True, ValueError, "trained for task 'rsna', not 'isic'.*set task: rsna"),
        ({k: v for k, v in ISIC.items() if k != "task"}, THRESHOLDS, True, ValueError, "stores no task.*retrain"),
        (None, THRESHOLDS, True, KeyError, "no stored 'config' and 'model'.*best checkpoint"),
        (ISIC, THRESHOLDS, False, KeyError, "no stored 'config' and 'model'"),
    ],
)
def test_a_bad_member_is_named_with_what_to_do(tmp_path, config, thresholds, model, error, message):
    good = save(tmp_path / "good" / "fold_0" / "model.pt", ISIC)
    bad = save(tmp_path / "bad" / "fold_0" / "model.pt", config, thresholds, model)
    with pytest.raises(error, match=message) as raised:
        load_members("isic", members=[good, bad])
    assert str(bad) in str(raised.value)


def test_a_missing_member_file_is_named(tmp_path):
    good = save(tmp_path / "good" / "fold_0" / "model.pt", ISIC)
    missing = tmp_path / "gone" / "fold_0" / "model.pt"
    with pytest.raises(FileNotFoundError, match="fix its path in members") as raised:
        load_members("isic", members=[good, missing])
    assert str(missing) in str(raised.value)


@pytest.mark.parametrize("key, value", [("num_classes", 4), ("class_names", ["Normal", "Viral Pneumonia", "x"])])
def test_members_of_other_classes_are_refused_naming_both_files(tmp_path, key, value):
    names = ["Viral Pneumonia", "Normal", "x"]
    chest = {**ISIC, "task": "chest_xray", "num_classes": 3, "class_names": names}
    first = save(tmp_path / "a" / "fold_0" / "model.pt", chest, thresholds=None)
    other = save(tmp_path / "b" / "fold_0" / "model.pt", {**chest, key: value}, thresholds=None)
    with pytest.raises(ValueError, match=f"has {key}.*same classes in the same order") as raised:
        load_members("chest_xray", checkpoints=tmp_path)
    assert str(other) in str(raised.value) and str(first) in str(raised.value)


def test_a_threshold_the_checkpoint_lacks_is_named(tmp_path):
    member = load_members("isic", members=[save(tmp_path / "m" / "model.pt", ISIC, thresholds={"roc_threshold": 0.3})])[0]
    with pytest.raises(KeyError, match="stores no threshold 'auroc'") as raised:
        member.threshold("auroc")
    assert str(member.path) in str(raised.value)


def test_group_members_by_preprocessing_and_image_size_override():
    def member(name: str, **config) -> Member:
        return Member(name, Path(name), {**ISIC, **config}, {})

    members = [member("a"), member("b", image_size=[40, 40]), member("c"), member("d", in_chans=1)]
    keys = ("image_size", "in_chans")
    assert [[m.name for m in g] for g in group_members(members, keys)] == [["a", "c"], ["b"], ["d"]]
    assert [[m.name for m in g] for g in group_members(members, keys, image_size=[32, 32])] == [["a", "b", "c"], ["d"]]
