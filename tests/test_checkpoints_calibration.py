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


@pytest.mark.parametrize("calibrations", [[(2.5, 0.0)], [(2.0, 1.5), (0.8, -3.0)]], ids=["temperature", "platt-twice"])
def test_a_stored_calibration_scales_and_shifts_the_logits_and_keeps_each_decision(tmp_path, calibrations):
    """The last calibration stored replaces the earlier ones; each threshold moves so every decision stays."""
    net = network()
    path = tmp_path / "model.pt"
    thresholds = {"pf1_threshold": 0.3, "roc_threshold": 0.62}
    torch.save({"model": net.state_dict(), "thresholds": thresholds, "config": {"task": "isic"}}, path)
    images = torch.rand(16, 1, 32, 32)
    with torch.no_grad():
        logit = net(images).squeeze(1).numpy()
    for temperature, bias in calibrations:
        stored = store_temperature(path, temperature, bias=bias)
    state = torch.load(path, weights_only=True)
    assert stored_temperature(state) == pytest.approx(temperature) and stored_bias(state) == pytest.approx(bias)
    assert state["config"]["temperature"] == pytest.approx(temperature)
    assert state["config"]["logit_bias"] == pytest.approx(bias)
    calibrated = network(1)
    calibrated.load_state_dict(state["model"])
    with torch.no_grad():
        after = torch.sigmoid(calibrated(images)).squeeze(1).numpy()
    np.testing.assert_allclose(after, 1 / (1 + np.exp(-(logit / temperature + bias))), rtol=1e-5)
    before = 1 / (1 + np.exp(-logit))
    for key, threshold in thresholds.items():
        assert ((before >= threshold) == (after >= stored[key])).all(), key
        assert stored[key] == pytest.approx(rescaled_threshold(threshold, 1.0, temperature, 0.0, bias))


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
