"""MONAI's notices that say nothing about a medbundle run are dropped, and nothing else (medbundle.warning_filters)."""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings

from monai.bundle import run
from monai.transforms import LoadImaged

from medbundle import warning_filters
from medbundle.io import GrayscaleReader


def test_importing_medbundle_installs_the_filters():
    """What every bundle config does first (pytest resets warning filters around each test: a fresh process)."""
    code = ("import logging, warnings, medbundle; "
            "print(any(f[1] and f[1].match('NvImgCodecPydicomReader: nvImageCodec decoder plugin did not register successfully. Falling back') for f in warnings.filters), "
            "bool(logging.getLogger('monai.data.nvimgcodec_pydicom_plugin').filters))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.split() == ["True", "True"]


def test_monai_nvimagecodec_notices_are_dropped(caplog, monkeypatch):
    """MONAI builds its GPU DICOM reader beside ours and says it cannot register it."""
    monkeypatch.delenv("MONAI_DICOM_READER", raising=False)
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.INFO):
        warning_filters.install()
        LoadImaged(keys="image", reader=GrayscaleReader())
        warnings.warn("another warning", stacklevel=1)
    messages = [str(w.message) for w in caught]
    assert "another warning" in messages and not any("nvImageCodec" in m for m in messages)
    assert "nvImageCodec" not in caplog.text


def test_nvimagecodec_notices_stay_when_that_reader_is_asked_for(monkeypatch):
    monkeypatch.setenv("MONAI_DICOM_READER", "nvimgcodec")
    logger = logging.getLogger("monai.data.nvimgcodec_pydicom_plugin")
    monkeypatch.setattr(logger, "filters", [])
    with warnings.catch_warnings():
        before = list(warnings.filters)
        warning_filters.install()
        assert warnings.filters == before and logger.filters == []


def test_the_config_notice_is_dropped_only_where_configs_are_trusted(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text("run:\n  - '$None'\n")

    def messages(trusted: bool) -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if trusted:
                warning_filters.trust_bundle_configs()
            run(run_id="run", config_file=str(config), logging_file=False)
            warnings.warn("another warning", stacklevel=1)
        return [str(w.message) for w in caught]

    assert any("Only proceed if this config is from a source you trust" in m for m in messages(trusted=False))
    trusted = messages(trusted=True)
    assert "another warning" in trusted and not any("source you trust" in m for m in trusted)
