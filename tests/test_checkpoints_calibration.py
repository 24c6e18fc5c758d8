"""A temperature and logit bias stored in model.pt: the network divides its logits by the one and adds the other,
thresholds keep their decisions, and a checkpoint written before calibration loads as uncalibrated. (Export parity with a stored temperature:
test_export_bundle, whose checkpoints all carry one.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medbundle.checkpoints import rescaled_threshold, store_temperature, stored_bias, stored_temperature
from medbundle.networks import TimmClassifier


def network(seed: int = 0) -> TimmClassifier:
    torch.manual_seed(seed)
    return TimmClassifier("resnet10t", num_classes=1, in_chans=1, head="linear").eval()


def test_a_stored_temperature_divides_the_logits_and_keeps_each_decision(tmp_path):
    net = network()
    path = tmp_path / "model.pt"
    thresholds = {"pf1_threshold": 0.3, "roc_threshold": 0.62}
    torch.save({"model": net.state_dict(), "thresholds": thresholds, "config": {"task": "rsna"}}, path)
    images = torch.rand(16, 1, 32, 32)
    with torch.no_grad():
        before = torch.sigmoid(net(images)).squeeze(1).numpy()
    stored = store_temperature(path, 2.5)
    state = torch.load(path, weights_only=True)
    assert stored_temperature(state) == pytest.approx(2.5) and state["config"]["temperature"] == pytest.approx(2.5)
    calibrated = network(1)
    calibrated.load_state_dict(state["model"])
    with torch.no_grad():
        after = torch.sigmoid(calibrated(images)).squeeze(1).numpy()
    logit = np.log(before / (1 - before))
    np.testing.assert_allclose(after, 1 / (1 + np.exp(-logit / 2.5)), rtol=1e-5)
    for key, threshold in thresholds.items():
        assert ((before >= threshold) == (after >= stored[key])).all(), key
    again = store_temperature(path, 1.25)  # replaces, does not compound
    assert again["roc_threshold"] == pytest.approx(rescaled_threshold(0.62, 1.0, 1.25))


def test_a_stored_bias_shifts_the_calibrated_logits_and_keeps_each_decision(tmp_path):
    net = network()
    path = tmp_path / "model.pt"
    thresholds = {"pf1_threshold": 0.3, "roc_threshold": 0.62}
    torch.save({"model": net.state_dict(), "thresholds": thresholds, "config": {"task": "isic"}}, path)
    images = torch.rand(16, 1, 32, 32)
    with torch.no_grad():
        logit = net(images).squeeze(1).numpy()
    first = store_temperature(path, 2.0, bias=1.5)
    stored = store_temperature(path, 0.8, bias=-3.0)  # from one calibration to another: decisions still kept
    state = torch.load(path, weights_only=True)
    assert stored_bias(state) == pytest.approx(-3.0) and state["config"]["logit_bias"] == pytest.approx(-3.0)
    calibrated = network(1)
    calibrated.load_state_dict(state["model"])
    with torch.no_grad():
        after = torch.sigmoid(calibrated(images)).squeeze(1).numpy()
    np.testing.assert_allclose(after, 1 / (1 + np.exp(-(logit / 0.8 - 3.0))), rtol=1e-5)
    before = 1 / (1 + np.exp(-logit))
    for key, threshold in thresholds.items():
        assert ((before >= threshold) == (after >= stored[key])).all(), key
        assert first[key] != pytest.approx(stored[key])


def test_a_checkpoint_from_before_calibration_loads_uncalibrated():
    state = {k: v for k, v in network().state_dict().items() if k not in ("temperature", "logit_bias")}
    fresh = network(1)
    fresh.load_state_dict(state)  # strict: the missing entries are filled with 1 and 0
    assert float(fresh.temperature) == 1.0 and stored_temperature({"model": state}) == 1.0
    assert float(fresh.logit_bias) == 0.0 and stored_bias({"model": state}) == 0.0


def test_a_temperature_that_is_not_positive_is_refused(tmp_path):
    torch.save({"model": network().state_dict()}, tmp_path / "model.pt")
    with pytest.raises(ValueError, match="positive finite"):
        store_temperature(tmp_path / "model.pt", 0.0)
