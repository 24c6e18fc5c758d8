"""Open a report page in headless Chromium and say whether it renders: console errors, broken images, a screenshot.

Chromium is driven through the Chrome DevTools protocol over ``--remote-debugging-pipe``: JSON messages, each
ended by a NUL byte, written to the browser's file descriptor 3 and read from its descriptor 4. No websocket, no
port and no third-party client are needed. The page is loaded from disk (``file://``), and the check records

- console errors: ``console.error`` calls, uncaught exceptions and browser log entries of level error (a
  resource that failed to load is one);
- broken images: ``<img>`` elements that finished loading without pixels (``naturalWidth == 0``);
- network requests: any ``http(s)``/``ws(s)`` URL the page asked for (a self-contained page asks for none);
- a full-page PNG screenshot, and whether it is blank (almost no non-white pixels).
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["CHROMIUM_NAMES", "BrowserCheckError", "check_in_browser", "find_chromium"]

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
_INSTALL_HINT = (
    "install Chromium (Debian/Ubuntu as root: apt-get install -y chromium; macOS: brew install --cask chromium) "
    "or point MEDBUNDLE_CHROMIUM at a Chrome or Chromium executable"
)
_BROKEN_IMAGES = "Array.from(document.images).filter(img => !img.complete || img.naturalWidth === 0).length"


class BrowserCheckError(RuntimeError):
    """Chromium is missing, would not start, or did not answer in time."""


def find_chromium() -> str | None:
    """The Chromium executable: ``$MEDBUNDLE_CHROMIUM`` if set, else the first of :data:`CHROMIUM_NAMES` on PATH."""
    override = os.environ.get("MEDBUNDLE_CHROMIUM")
    if override:
        return override if Path(override).is_file() else shutil.which(override)
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


def check_in_browser(
    index: str | Path, screenshot: str | Path, width: int = 1280, height: int = 900, timeout: float = 60.0
) -> dict[str, Any]:
    """Load `index` in headless Chromium from disk and report what a reader's browser would show.

    Args:
        index: the HTML file to open.
        screenshot: where to write the full-page PNG screenshot.
        width, height: the viewport in CSS pixels; the screenshot covers the whole page height.
        timeout: seconds to wait for the browser and the page.

    Returns:
        ``{"console_errors": [str], "broken_images": int, "images": int, "network_requests": [str],
        "screenshot": Path, "blank": bool}``.

    Raises:
        BrowserCheckError: Chromium is not installed (the message says how to install it), did not start or
            did not load the page within `timeout`.
    """
    index, screenshot = Path(index).resolve(), Path(screenshot)
    if not index.is_file():
        raise FileNotFoundError(f"{index} does not exist; write the report with medbundle.report.render_report first")
    executable = find_chromium()
    if executable is None:
        raise BrowserCheckError(f"no Chromium found (looked for {', '.join(CHROMIUM_NAMES)} on PATH): {_INSTALL_HINT}")
    with (
        tempfile.TemporaryDirectory(prefix="medbundle-chromium-") as profile,
        _DevTools(executable, profile, timeout) as tools,
    ):
        session = tools.open_page()
        for domain in ("Runtime", "Log", "Network", "Page"):
            tools.call(f"{domain}.enable", session=session)
        tools.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        tools.call("Page.navigate", {"url": index.as_uri()}, session=session)
        tools.wait_for("Page.loadEventFired", session=session)
        tools.settle(session, quiet=0.3)
        images = tools.evaluate("document.images.length", session)
        broken = tools.evaluate(_BROKEN_IMAGES, session)
        shot = tools.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=session)
        errors, requests = tools.console_errors, tools.network_requests
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    screenshot.write_bytes(base64.b64decode(shot["data"]))
    return {
        "console_errors": errors,
        "broken_images": int(broken),
        "images": int(images),
        "network_requests": requests,
        "screenshot": screenshot,
        "blank": is_blank(screenshot),
    }


def is_blank(png: str | Path, min_ink: float = 0.002) -> bool:
    """Whether a screenshot shows (almost) nothing: one flat colour, or under `min_ink` of its pixels non-white."""
    image = cv2.imread(str(png), cv2.IMREAD_GRAYSCALE)
    if image is None or image.size == 0:
        return True
    return float(image.std()) < 1.0 or float(np.mean(image < 240)) < min_ink


class _DevTools:
    """A headless Chromium and its DevTools pipe; messages that are not the awaited answer are recorded."""

    def __init__(self, executable: str, profile: str, timeout: float) -> None:
        self.executable, self.profile, self.timeout = executable, profile, timeout
        self.console_errors: list[str] = []
        self.network_requests: list[str] = []
        self._next_id = 0
        self._buffer = b""
        self._events: list[dict[str, Any]] = []

    def __enter__(self) -> Self:
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()

        # Chromium's DevTools pipe is fixed at descriptors 3 and 4: only a pre-exec hook can put the pipe ends there
        # (preexec_fn is unsafe only with other threads forking at the same time; this check runs in one thread)
        def plumb() -> None:
            os.dup2(to_browser_read, 3)
            os.dup2(from_browser_write, 4)

        command = [
            self.executable, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
            "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
            "--disable-sync", "--disable-component-update", "--hide-scrollbars", "--mute-audio",
            f"--user-data-dir={self.profile}", "--remote-debugging-pipe", "about:blank",
        ]  # fmt: skip
        self._log = Path(self.profile) / "chromium.log"
        try:
            with self._log.open("wb") as log:
                self._process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    preexec_fn=plumb,  # noqa: PLW1509
                    pass_fds=(3, 4),
                )
        finally:
            os.close(to_browser_read)
            os.close(from_browser_write)
        return self

    def __exit__(self, *_: object) -> None:
        try:
            self._send({"id": self._new_id(), "method": "Browser.close"})
        except OSError:
            pass
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)

    def open_page(self) -> str:
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        return self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        """Send one command and wait for its answer."""
        message_id = self._new_id()
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._send(message)
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._receive(deadline, waiting_for=method)
            if reply.get("id") == message_id:
                if "error" in reply:
                    raise BrowserCheckError(f"Chromium refused {method}: {reply['error']}")
                return reply.get("result", {})
            self._record(reply)

    def evaluate(self, expression: str, session: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session)
        if "exceptionDetails" in result:
            raise BrowserCheckError(f"evaluating {expression!r} failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, event: str, session: str) -> None:
        """Wait for `event` on `session`, recording everything else that arrives meanwhile."""
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._receive(deadline, waiting_for=event)
            self._record(message)
            if message.get("method") == event and message.get("sessionId") == session:
                return

    def settle(self, session: str, quiet: float) -> None:
        """Record late events (console output from load handlers, late resource errors) until `quiet` s pass."""
        self.evaluate("document.fonts ? document.fonts.status : ''", session)
        while True:
            ready, _, _ = select.select([self._from_browser], [], [], quiet)
            if not ready:
                return
            self._record(self._receive(time.monotonic() + self.timeout, waiting_for="late events"))

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _send(self, message: dict[str, Any]) -> None:
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")

    def _receive(self, deadline: float, waiting_for: str) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_browser], [], [], max(left, 0))
            if not ready:
                raise BrowserCheckError(f"Chromium did not answer {waiting_for} within {self.timeout:g} s")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                log = self._log.read_text(errors="replace")[-2000:]
                raise BrowserCheckError(
                    f"Chromium ({self.executable}) closed its DevTools pipe while waiting for {waiting_for}; "
                    f"its output ends: {log or '(nothing)'}"
                )
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def _record(self, message: dict[str, Any]) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            text = " ".join(str(arg.get("value", arg.get("description", ""))) for arg in params.get("args", ()))
            self.console_errors.append(f"console.{params['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            description = details.get("exception", {}).get("description") or details.get("text", "")
            self.console_errors.append(f"uncaught exception: {description}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self.console_errors.append(
                f"{entry.get('source', 'log')}: {entry.get('text', '')} {entry.get('url', '')}".strip()
            )
        elif method == "Network.requestWillBeSent":
            url = params.get("request", {}).get("url", "")
            if url.split(":", 1)[0].lower() in ("http", "https", "ws", "wss"):
                self.network_requests.append(url)
