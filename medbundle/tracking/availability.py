"""Whether a tracker can record this process's run: never let a missing package or a dead server stop training.

MONAI's tracking settings (``monai.bundle.utils.DEFAULT_MLFLOW_SETTINGS``) build their ``MLFlowHandler`` with
``_disabled_: "@is_not_rank0"``, and ``--tracking`` only sets that top-level key where the bundle has none. Every
medbundle bundle defines it as :func:`tracking_disabled`, so the handlers are left out, with one warning that
names what to install or which URI did not answer, where the run could not be recorded anyway. Without this an
unreachable server fails the first MLflow call after MLflow's own retries (minutes), and a missing package fails
when the handler is built: the run stops before its first epoch for the sake of its logs.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import socket
from urllib.parse import urlsplit

__all__ = ["TRACKERS", "server_reachable", "tracking_disabled"]

logger = logging.getLogger(__name__)

#: the package each tracker needs, as ``pip install 'medbundle[tracking]'`` installs it
TRACKERS = {"mlflow": "mlflow", "wandb": "wandb"}

_INSTALL = "pip install 'medbundle[tracking]'"


def server_reachable(uri: str, timeout: float = 5.0) -> bool:
    """Whether an ``http(s)://`` tracking URI accepts a TCP connection (other URIs are local: always True)."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https"):
        return True
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "localhost", port), timeout=timeout):
            return True
    except OSError:
        return False


def _rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def tracking_disabled(tracking_uri: str | None = None, tracker: str = "mlflow") -> bool:
    """True where this process should not record: a DDP rank above 0, `tracker`'s package missing, or its server down.

    Args:
        tracking_uri: the MLflow tracking URI the bundle configures; ``MLFLOW_TRACKING_URI`` wins over it, as in
            MONAI's ``MLFlowHandler``. Unused for W&B, whose offline mode needs no server.
        tracker: ``"mlflow"`` or ``"wandb"``.

    A true result other than for a rank above 0 logs one warning that says what to do; training goes on untracked.
    """
    if tracker not in TRACKERS:
        raise ValueError(f"unknown tracker {tracker!r}: choose one of {sorted(TRACKERS)}.")
    if _rank() > 0:
        return True
    if importlib.util.find_spec(TRACKERS[tracker]) is None:
        logger.warning(
            "%s is not installed, so this run is not tracked (training goes on). Install it with: %s",
            TRACKERS[tracker],
            _INSTALL,
        )
        return True
    uri = os.environ.get("MLFLOW_TRACKING_URI") or tracking_uri
    if tracker == "mlflow" and uri and not server_reachable(uri):
        logger.warning(
            "the MLflow tracking server %s does not answer, so this run is not tracked (training goes on). Start "
            "it (mlflow server --host %s --port %s) or pass another --tracking_uri.",
            uri,
            urlsplit(uri).hostname,
            urlsplit(uri).port,
        )
        return True
    return False
