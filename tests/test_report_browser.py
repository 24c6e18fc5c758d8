"""The headless-Chromium check: errors, broken images and outside requests are reported; a missing Chromium is named."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from medbundle.report.browser import BrowserCheckError, check_in_browser, find_chromium, is_blank

needs_chromium = pytest.mark.skipif(
    find_chromium() is None,
    reason="Chromium is not installed and could not be installed (.ci/run tries `apt-get install -y chromium`)",
)


@needs_chromium
def test_broken_page_detected(tmp_path: Path) -> None:
    page = tmp_path / "index.html"
    page.write_text(
        '<!DOCTYPE html><html><body><h1>x</h1><img src="missing.png"><script>console.error("boom");'
        'undefined_call()</script><link rel="stylesheet" href="http://127.0.0.1:9/x.css"></body></html>'
    )
    result = check_in_browser(page, tmp_path / "shot.png")
    assert result["images"] == 1 and result["broken_images"] == 1
    errors = " | ".join(result["console_errors"])
    assert "console.error: boom" in errors and "undefined_call" in errors and "missing.png" in errors
    assert result["network_requests"] == ["http://127.0.0.1:9/x.css"]
    assert (tmp_path / "shot.png").is_file()


@needs_chromium
def test_clean_page(tmp_path: Path) -> None:
    page = tmp_path / "index.html"
    page.write_text("<!DOCTYPE html><html><body>" + "<p>clean text on the page</p>" * 60 + "</body></html>")
    result = check_in_browser(page, tmp_path / "shot.png", width=640, height=400)
    assert result["console_errors"] == [] and result["broken_images"] == 0 and result["network_requests"] == []
    assert not result["blank"]
    assert cv2.imread(str(result["screenshot"])).shape[1] == 640


def test_is_blank(tmp_path: Path) -> None:
    white = np.full((200, 300, 3), 255, np.uint8)
    cv2.imwrite(str(tmp_path / "white.png"), white)
    white[50:150, 40:260] = 30
    cv2.imwrite(str(tmp_path / "ink.png"), white)
    assert is_blank(tmp_path / "white.png") and not is_blank(tmp_path / "ink.png")
    assert is_blank(tmp_path / "absent.png")


def test_missing_chromium_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = tmp_path / "index.html"
    page.write_text("<html></html>")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("MEDBUNDLE_CHROMIUM", raising=False)
    with pytest.raises(BrowserCheckError, match="apt-get install -y chromium"):
        check_in_browser(page, tmp_path / "shot.png")


def test_missing_page_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="render_report"):
        check_in_browser(tmp_path / "index.html", tmp_path / "shot.png")
