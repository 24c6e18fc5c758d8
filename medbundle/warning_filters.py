"""Drop the notices MONAI prints on every medbundle run that say nothing about the run, and only those.

- ``NvImgCodecPydicomReader: nvImageCodec decoder plugin did not register successfully...`` (a warning) and
  ``nvImageCodec is not available; skipping pydicom decoder plugin registration.`` (a log record of
  ``monai.data.nvimgcodec_pydicom_plugin``): MONAI 1.6's ``LoadImage`` builds every reader of its
  ``SUPPORTED_READERS``, the GPU DICOM reader included, even when it is given a reader, as every medbundle
  bundle does (medbundle decodes DICOM itself). Both stay when ``MONAI_DICOM_READER=nvimgcodec`` asks for that
  reader. Importing ``medbundle`` (every bundle config does) installs these filters.
- ``parsing config_file ...: any "_target_" value ... Only proceed if this config is from a source you trust``
  of ``monai.bundle.run``, by :func:`trust_bundle_configs`, which the ``medbundle`` command calls: it runs the
  bundle configs its user names. ``python -m monai.bundle run`` warns before any bundle code runs;
  ``PYTHONWARNINGS="ignore:parsing config_file:UserWarning"`` silences it there.
"""

from __future__ import annotations

import logging
import os
import re
import warnings

__all__ = ["install", "trust_bundle_configs"]

_NVIMGCODEC_WARNING = "NvImgCodecPydicomReader: nvImageCodec decoder plugin did not register successfully."
_NVIMGCODEC_LOGGER = "monai.data.nvimgcodec_pydicom_plugin"
_NVIMGCODEC_RECORD = "nvImageCodec is not available; skipping pydicom decoder plugin registration."
_CONFIG_NOTICE = r"parsing config_file .* Only proceed if this config is from a source you trust"


class _DropMessage(logging.Filter):
    """Drop the log records whose message is exactly `message`."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != self.message


_DROP_NVIMGCODEC_RECORD = _DropMessage(_NVIMGCODEC_RECORD)


def install() -> None:
    """Silence MONAI's nvImageCodec notices, unless ``MONAI_DICOM_READER`` asks for the nvImageCodec reader."""
    if os.environ.get("MONAI_DICOM_READER", "").strip().lower().startswith("nvimgcodec"):
        return
    warnings.filterwarnings("ignore", message=re.escape(_NVIMGCODEC_WARNING), category=UserWarning)
    logging.getLogger(_NVIMGCODEC_LOGGER).addFilter(_DROP_NVIMGCODEC_RECORD)


def trust_bundle_configs() -> None:
    """Silence ``monai.bundle.run``'s notice that a bundle config runs code, in a process that runs configs its user
    named (the ``medbundle`` command)."""
    warnings.filterwarnings("ignore", message=_CONFIG_NOTICE, category=UserWarning)
