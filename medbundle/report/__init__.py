"""The evaluation report: a self-contained HTML page with inline SVG charts, and a headless-browser check of it."""

from medbundle.report.browser import check_in_browser
from medbundle.report.page import render_report

__all__ = ["check_in_browser", "render_report"]
