"""What `digest collect` prints: each failure once, each reason once, no library chatter."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from digest.collect.stage import _skipped_lines
from tests import configfile
from tests.httpserver import LocalHTTPServer, Response

ROOT = Path(__file__).resolve().parent.parent


def feed(links: list[str]) -> str:
    when = format_datetime(datetime.now(tz=UTC) - timedelta(minutes=5))
    items = "".join(
        f"<item><title>Story number {i}</title><link>{link}</link><guid>g{i}</guid>"
        f"<pubDate>{when}</pubDate><description>Summary {i}.</description></item>"
        for i, link in enumerate(links)
    )
    head = '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
    return f"{head}{items}</channel></rss>"


def run_digest(tmp_path: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "digest", "--config", str(config), *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "250"},
        timeout=300,
    )


def test_collect_names_a_failure_once_and_says_each_reason_once(
    http_server: LocalHTTPServer, tmp_path: Path
) -> None:
    # Eight pages on another loopback address (refused), one page too short for
    # trafilatura (it logs its own "discarding data" WARNING for it).
    other = f"http://127.0.0.2:{http_server.port}"
    links = [f"{other}/page{i}" for i in range(8)] + [http_server.url("/short")]
    http_server.routes["/feed"] = Response(feed(links), content_type="application/rss+xml")
    http_server.routes["/short"] = Response("<html><body><p>Hi.</p></body></html>")
    http_server.routes["/down"] = Response("no", status=503, content_type="text/plain")
    config = configfile.write_config(
        tmp_path,
        source=http_server.url("/feed"),
        source_name="Good Source",
        extra=f'\n[[sources]]\nname = "Broken Source"\nurl = "{http_server.url("/down")}"\n',
    )
    res = run_digest(tmp_path, config, "collect")
    output = res.stdout + res.stderr
    assert res.returncode == 0, output
    assert output.count("Broken Source") == 1, output  # the table row, no stderr WARNING
    assert "HTTP 503" in res.stdout
    assert output.count("loopback") == 1, output
    assert "8 pages (" in res.stdout and "(8 page(s) skipped)" in res.stdout
    assert "trafilatura" not in res.stderr and "discarding data" not in res.stderr, res.stderr
    assert res.stderr.strip() == "", res.stderr


def test_a_failing_source_is_still_logged_where_no_table_is_printed(
    http_server: LocalHTTPServer, tmp_path: Path
) -> None:
    """`digest send` collects without printing the table: there the log line is the notice."""
    http_server.routes["/down"] = Response("no", status=503, content_type="text/plain")
    config = configfile.write_config(
        tmp_path, source=http_server.url("/down"), source_name="Broken Source", smtp_port=9
    )
    res = run_digest(tmp_path, config, "send")
    assert "WARNING digest.collect.stage: source Broken Source: HTTP 503" in res.stderr, res.stderr


def test_skipped_lines_group_pages_by_reason() -> None:
    lines = _skipped_lines({"refused: x": ["u1", "u2", "u3"], "HTTP 404": ["u4"]})
    assert lines == ("3 pages (u1, …): refused: x", "u4: HTTP 404")
