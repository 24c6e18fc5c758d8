from __future__ import annotations

import pytest
import torch

from medbundle.checkpoints import StoredConfig, stored_config


def test_stored_settings_round_trip_through_a_weights_only_checkpoint(tmp_path):
    config = StoredConfig(backbone="resnet10t", image_size=(64, 32), class_names=["a", "b"], norm_stats=None)
    torch.save({"model": {}, "config": config.state_dict()}, tmp_path / "model.pt")
    assert stored_config(tmp_path / "model.pt") == {"backbone": "resnet10t", "image_size": [64, 32],
                                                     "class_names": ["a", "b"], "norm_stats": None}


def test_values_that_would_need_unpickling_are_refused_by_key():
    with pytest.raises(TypeError, match="'cache_dtype' is a dtype"):
        StoredConfig(cache_dtype=torch.float16)


def test_defaults_fill_missing_settings_and_a_missing_checkpoint(tmp_path, caplog):
    torch.save({"model": {}, "config": {"backbone": "resnet18"}}, tmp_path / "model.pt")
    defaults = {"backbone": "efficientnet_b3", "image_size": [1024, 512]}
    assert stored_config(tmp_path / "model.pt", defaults) == {"backbone": "resnet18", "image_size": [1024, 512]}
    with caplog.at_level("WARNING"):
        assert stored_config(tmp_path / "missing.pt", defaults) == defaults
    assert "missing.pt not found" in caplog.text
    with pytest.raises(FileNotFoundError, match="train the bundle first"):
        stored_config(tmp_path / "missing.pt")
    torch.save({"model": {}}, tmp_path / "old.pt")
    with pytest.raises(KeyError, match="retrain, or pass every setting"):
        stored_config(tmp_path / "old.pt")


def test_the_oof_threshold_brings_its_own_aggregation():
    from medbundle.checkpoints import stored_aggregation

    stored = {"aggregation": "mean", "oof_aggregation": "max"}
    assert stored_aggregation(stored, "oof_threshold") == "max"
    assert stored_aggregation(stored, "pf1_threshold") == "mean"
    assert stored_aggregation({"aggregation": "mean"}, "oof_threshold") == "mean"  # no sweep has run
