"""A headless Chromium for layout tests, driven over the DevTools protocol on a pipe.

One browser process serves a whole test session; each `measure` loads an HTML string
into one tab at a given viewport width and returns what the layout came out as. The
browser gets no network: every host name resolves to nothing, so remote images in an
issue stay unloaded and no test touches the internet.

`--remote-debugging-pipe` speaks JSON messages ended by NUL on file descriptors 3
(to the browser) and 4 (from it), so no WebSocket client is needed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chromium-headless-shell")
INSTALL_HINT = (
    "headless Chromium is needed for the layout tests; install it "
    "(Debian/Ubuntu: apt-get install chromium; .ci/run does) or set DIGEST_CHROMIUM"
)
TIMEOUT = 60.0  # seconds for one protocol answer on a busy machine

# Measured in the page after layout. The document must not scroll sideways, and the
# card must keep the width the viewport gives it whatever the content.
_MEASURE = """
(() => {
  const box = (sel) => {
    const el = document.querySelector(sel);
    if (!el) return null;
    const r = el.getBoundingClientRect();
    return {left: r.left, top: r.top, width: r.width, height: r.height};
  };
  const widest = (sel) => Math.max(0, ...Array.from(document.querySelectorAll(sel),
    (el) => el.getBoundingClientRect().right));
  return {
    viewport: document.documentElement.clientWidth,
    scrollWidth: document.documentElement.scrollWidth,
    bodyScrollWidth: document.body.scrollWidth,
    card: box('.card'),
    leadImage: box('.lead-image'),
    leadTitle: box('.lead-title'),
    rightmost: widest('.card td, .card p, .card h1, .card h2, .card a, .card img'),
    wordBreakRules: document.documentElement.outerHTML.search(/word-break|overflow-wrap/i),
  };
})()
"""


def find_chromium() -> str | None:
    """Return the path of a Chromium binary: $DIGEST_CHROMIUM or the first on PATH."""
    override = os.environ.get("DIGEST_CHROMIUM")
    if override:
        return override
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass(frozen=True)
class Layout:
    """What one page looked like at one viewport width (CSS pixels)."""

    width: int
    viewport: float
    scroll_width: float
    body_scroll_width: float
    card: dict[str, float] | None
    lead_image: dict[str, float] | None
    lead_title: dict[str, float] | None
    rightmost: float
    word_break_rules: int  # offset of the first word-break rule in the page, -1: none

    @property
    def scrolls_sideways(self) -> bool:
        """Return True when the page is wider than its viewport."""
        return max(self.scroll_width, self.body_scroll_width) > self.viewport + 0.5


class Chromium:
    """One headless Chromium process with one tab, for measuring pages."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.profile = tempfile.mkdtemp(prefix="digest-chromium-")
        self.proc: subprocess.Popen[bytes] | None = None
        self._buffer = b""
        self._next_id = 0
        self.session = ""

    def start(self) -> Chromium:
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()
        # The child's ends, moved above 4 so that wiring 3 and 4 cannot clobber them.
        child_r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
        child_w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
        for fd in (to_browser_r, from_browser_w):
            os.close(fd)

        def wire_fds() -> None:  # in the child: the protocol expects fds 3 and 4
            os.dup2(child_r, 3)
            os.dup2(child_w, 4)

        self.proc = subprocess.Popen(
            [
                self.binary,
                "--headless",
                "--remote-debugging-pipe",
                "--no-sandbox",  # CI containers run as root, where the sandbox cannot start
                "--disable-gpu",
                "--hide-scrollbars",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-default-apps",
                "--no-pings",
                "--mute-audio",
                '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE ""',  # no network at all
                f"--user-data-dir={self.profile}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(child_r, child_w, 3, 4),
            preexec_fn=wire_fds,  # only two dup2 calls: safe between fork and exec
        )
        os.close(child_r)
        os.close(child_w)
        self._out = to_browser_w
        self._in = from_browser_r
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        self.frame = self.call("Page.getFrameTree", session=True)["frameTree"]["frame"]["id"]
        return self

    def stop(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(OSError, RuntimeError):  # already gone
                self.call("Browser.close")
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            os.close(self._out)
            os.close(self._in)
            self.proc = None
        shutil.rmtree(self.profile, ignore_errors=True)

    def call(
        self, method: str, params: dict[str, Any] | None = None, *, session: bool = False
    ) -> dict[str, Any]:
        """Send one protocol command and return its result (events are skipped)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT
        while True:
            while b"\0" not in self._buffer:
                left = deadline - time.monotonic()
                ready, _, _ = select.select([self._in], [], [], max(left, 0))
                if not ready:
                    raise RuntimeError(f"Chromium did not answer {method} in {TIMEOUT:.0f}s")
                chunk = os.read(self._in, 1 << 16)
                if not chunk:
                    raise RuntimeError(f"Chromium exited while answering {method}")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            answer = json.loads(raw)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                result: dict[str, Any] = answer.get("result", {})
                return result

    def measure(self, html: str, width: int, height: int = 800) -> Layout:
        """Load `html` at a `width` x `height` viewport and return its layout."""
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=True,
        )
        self.call("Page.setDocumentContent", {"frameId": self.frame, "html": html}, session=True)
        result = self.call(
            "Runtime.evaluate", {"expression": _MEASURE, "returnByValue": True}, session=True
        )
        value = result["result"]["value"]
        return Layout(
            width=width,
            viewport=value["viewport"],
            scroll_width=value["scrollWidth"],
            body_scroll_width=value["bodyScrollWidth"],
            card=value["card"],
            lead_image=value["leadImage"],
            lead_title=value["leadTitle"],
            rightmost=value["rightmost"],
            word_break_rules=value["wordBreakRules"],
        )
