"""The evaluation report: what a clinician checks (intervals, calibration, subgroups, Grad-CAM evidence) gathered
from an evaluation's files, rendered as one self-contained HTML page, and a headless-browser check of that page.

``build_report`` / ``rebuild_report`` need torch (the checkpoint, Grad-CAM) and are imported on first use; the page
itself (``render_report``) and the browser check do not.
"""

from __future__ import annotations

from medbundle.lazy import lazy_exports
from medbundle.report.browser import check_in_browser
from medbundle.report.page import render_report

__all__ = ["build_report", "check_in_browser", "rebuild_report", "render_report"]

__getattr__, __dir__ = lazy_exports(
    __name__, {"build_report": "medbundle.report.build", "rebuild_report": "medbundle.report.build"}
)
