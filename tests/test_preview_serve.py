"""`digest preview --serve`: only the preview, on a free port, reloading on edits."""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest

from digest.cli.previewserver import PreviewServer
from digest.render import SHIPPED_TEMPLATES
from tests import configfile

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "digest" / "sample" / "feed.xml"


def lines_of(stream: IO[bytes]) -> queue.Queue[str]:
    q: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for raw in stream:
            q.put(raw.decode("utf-8", "replace"))

    threading.Thread(target=pump, daemon=True).start()
    return q


def wait_for(check: object, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path, queue.Queue[str]]]:
    """A real `digest preview --serve` on the sample, in a folder with a db and config."""
    tpl = tmp_path / "tpl"
    tpl.mkdir()
    shutil.copy(SHIPPED_TEMPLATES / "digest.html", tpl / "digest.html")
    config = configfile.write_config(
        tmp_path,
        source=str(SAMPLE),
        source_name="Example News",
        source_keys={"public_url": "https://news.example.com/sample/"},
        extra='\n[render]\ntemplates = "tpl"\n',
    )
    (tmp_path / "secret.txt").write_text("do not serve me", encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "digest", "--config", str(config), "preview", "--serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
        cwd=tmp_path,
    )
    assert proc.stdout is not None
    out = lines_of(proc.stdout)
    url = ""
    seen: list[str] = []
    deadline = time.monotonic() + 90
    while not url:
        assert proc.poll() is None, "".join(seen)
        try:
            line = out.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            raise AssertionError("no URL printed: " + "".join(seen)) from None
        seen.append(line)
        if "Serving the preview on " in line:
            url = line.split("Serving the preview on ", 1)[1].split()[0]
    try:
        yield url, tmp_path, out
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stdout.close()


def test_serves_only_the_preview_on_a_free_port(
    served: tuple[str, Path, queue.Queue[str]],
) -> None:
    url, folder, out = served
    assert url.startswith("http://127.0.0.1:") and url.endswith("/")
    assert not url.endswith(":8000/")  # a random free port, not a fixed one
    page = httpx.get(url, timeout=10)
    assert page.status_code == 200 and "The Daily Digest" in page.text
    assert "EventSource" in page.text
    assert "nonce-" in page.headers["content-security-policy"]
    assert httpx.get(url + "text", timeout=10).text.startswith("THE DAILY DIGEST")
    assert (folder / "digest.db").exists() and (folder / "config.toml").exists()
    for path in (
        "config.toml",
        "digest.db",
        "secret.txt",
        "preview.html",
        "tpl/digest.html",
        "../config.toml",
        "%2e%2e/config.toml",
        "/etc/passwd",
    ):
        res = httpx.get(url + path, timeout=10)
        assert res.status_code == 404, (path, res.status_code)
        assert "do not serve" not in res.text and "[site]" not in res.text
    # A page from elsewhere reaching it through a DNS name (rebinding) gets nothing.
    res = httpx.get(url, headers={"Host": "evil.example"}, timeout=10)
    assert res.status_code == 421 and "Daily Digest" not in res.text
    assert httpx.post(url, timeout=10).status_code == 405


def test_reloads_on_template_and_config_edits(
    served: tuple[str, Path, queue.Queue[str]],
) -> None:
    url, folder, out = served
    with httpx.stream("GET", url + "__events", timeout=30) as events:
        assert events.headers["content-type"] == "text/event-stream"
        lines = events.iter_lines()
        first = next(line for line in lines if line.startswith("data:"))
        template = folder / "tpl" / "digest.html"
        template.write_text(
            template.read_text(encoding="utf-8").replace(
                "{% block content %}", "{% block content %}<p>EDITED-TEMPLATE</p>", 1
            ),
            encoding="utf-8",
        )
        second = next(line for line in lines if line.startswith("data:"))
        assert second != first
    wait_for(lambda: "EDITED-TEMPLATE" in httpx.get(url, timeout=10).text, "template edit")
    config = folder / "config.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace("The Daily Digest", "The Evening Post"),
        encoding="utf-8",
    )
    wait_for(lambda: "The Evening Post" in httpx.get(url, timeout=10).text, "config edit")
    # A broken config keeps the last good preview up and says why.
    config.write_text("[site\n", encoding="utf-8")
    deadline = time.monotonic() + 60
    while "re-render failed" not in (line := out.get(timeout=max(deadline - time.monotonic(), 0))):
        pass
    assert "invalid TOML" in line
    assert "The Evening Post" in httpx.get(url, timeout=10).text


def test_publish_bumps_the_version_and_wakes_event_streams() -> None:
    server = PreviewServer().start()
    try:
        server.publish("<html><body>one</body></html>", "one")
        got: list[int | None] = []
        t = threading.Thread(target=lambda: got.append(server.wait_change(1, 30)))
        t.start()
        server.publish("<html><body>two</body></html>", "two")
        t.join(30)
        assert got == [2]
        body = httpx.get(server.url, timeout=10).text
        assert body.index("two") < body.index("<script") < body.index("</body>")
    finally:
        server.stop()
