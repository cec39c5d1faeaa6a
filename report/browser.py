"""Headless Chromium over the DevTools protocol: print a report to PDF, screenshot it, measure it.

One browser process serves any number of pages (tests render every language in one session);
the protocol is spoken directly over a WebSocket, so no browser is downloaded by a Python
package: Debian's `chromium` is the one the project installs (`make report-tools`).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


class BrowserMissing(RuntimeError):
    """No Chromium on this machine."""


class BrowserError(RuntimeError):
    """Chromium did not start, or a page did not load or print."""


def find_chromium() -> str:
    explicit = os.environ.get("SOVEREIGN_CHROMIUM")
    for name in ([explicit] if explicit else []) + list(CANDIDATES):
        found = shutil.which(name)
        if found:
            return found
    raise BrowserMissing("headless Chromium is needed for PDF output: install Debian's 'chromium' "
                         "(make report-tools), or set SOVEREIGN_CHROMIUM")


class Chromium:
    """`with Chromium() as browser: browser.open(path); browser.pdf()`."""

    def __init__(self, timeout: float = 60.0):
        self.timeout = timeout
        self._ids = 0
        self._events: list[dict[str, Any]] = []

    def __enter__(self) -> Chromium:
        binary = find_chromium()  # before anything is made that would need cleaning up
        self._profile = tempfile.mkdtemp(prefix="sovereign-chromium-")
        self._exit = ExitStack()
        argv = [binary, "--headless=new", "--remote-debugging-port=0", f"--user-data-dir={self._profile}",
                "--no-first-run", "--no-default-browser-check", "--disable-gpu", "--disable-extensions",
                "--disable-background-networking", "--hide-scrollbars", "--font-render-hinting=none",
                "--allow-file-access-from-files", "about:blank"]
        if os.geteuid() == 0:  # Chromium refuses to sandbox itself as root
            argv.insert(1, "--no-sandbox")
        # Its own process group: Chromium's helpers (zygote, renderers) end with it, none outlive a report.
        self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            url = self._wait_for_endpoint()
            port = url.split(":")[2].split("/")[0]
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=self.timeout) as resp:
                pages = [t for t in json.load(resp) if t.get("type") == "page"]
            if not pages:
                raise BrowserError("Chromium started without a page")
            self._ws: ClientConnection = self._exit.enter_context(
                connect(pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=self.timeout))
            self.send("Page.enable")
            self.send("Runtime.enable")
        except BaseException:
            self.__exit__(None, None, None)  # `with` does not call __exit__ when __enter__ fails
            raise
        return self

    def _wait_for_endpoint(self) -> str:
        assert self._proc.stderr is not None
        lines: list[str] = []
        found: list[str] = []

        def read() -> None:  # keep draining stderr for the browser's lifetime, or it blocks on a full pipe
            assert self._proc.stderr is not None
            for line in self._proc.stderr:
                lines.append(line)
                match = _LISTENING.search(line)
                if match and not found:
                    found.append(match.group(1))

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + self.timeout
        while not found:
            if self._proc.poll() is not None or time.monotonic() > deadline:
                tail = "".join(lines[-3:]).strip() or "no output"
                raise BrowserError(f"Chromium did not start: {tail}")
            time.sleep(0.05)
        return found[0]

    def __exit__(self, *exc: object) -> None:
        try:
            self._exit.close()
        except Exception:  # closing a dead socket must not hide the real error
            pass
        for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self._proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self._proc.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue
        for _attempt in range(20):  # helpers may still be closing files in the profile
            shutil.rmtree(self._profile, ignore_errors=True)
            if not os.path.exists(self._profile):
                break
            time.sleep(0.1)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        self._ids += 1
        ident = self._ids
        self._ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrowserError(f"Chromium did not answer {method} within {self.timeout:.0f} s")
            message = json.loads(self._ws.recv(timeout=remaining))
            if message.get("id") == ident:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error'].get('message')}")
                return message.get("result", {})
            if "method" in message:
                self._events.append(message)

    def _wait_event(self, name: str) -> None:
        deadline = time.monotonic() + self.timeout
        while not any(e["method"] == name for e in self._events):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrowserError(f"the page did not finish loading ({name}) within {self.timeout:.0f} s")
            message = json.loads(self._ws.recv(timeout=remaining))
            if "method" in message:
                self._events.append(message)

    def open(self, path: Path, width: int = 1100, height: int = 1400) -> None:
        """Load a local file at a window size and wait until it and its fonts are ready."""
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        self._events.clear()
        self.send("Page.navigate", url=path.resolve().as_uri())
        self._wait_event("Page.loadEventFired")
        self.evaluate("document.fonts.ready.then(() => true)")

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"script failed: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def screenshot(self) -> bytes:
        return base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"])

    def pdf(self) -> bytes:
        result = self.send("Page.printToPDF", printBackground=True, preferCSSPageSize=True,
                           displayHeaderFooter=False)
        return base64.b64decode(result["data"])
