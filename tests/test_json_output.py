"""Every `--json` output is one JSON document on stdout, whatever the names hold."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from digest.store import Store
from tests import configfile
from tests.httpserver import LocalHTTPServer, Response

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "digest" / "sample" / "feed.xml"
NOW = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)


def run_json(tmp_path: Path, config: Path, *args: str) -> object:
    res = subprocess.run(
        [sys.executable, "-m", "digest", "--config", str(config), *args, "--json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80"},
        timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads(res.stdout)


def test_every_json_output_parses(http_server: LocalHTTPServer, tmp_path: Path) -> None:
    http_server.routes["/down"] = Response("no", status=503, content_type="text/plain")
    config = configfile.write_config(
        tmp_path,
        source=str(SAMPLE),
        source_name='Ex "News" [bold]\\ \u00e9\u2014\U0001f600',
        source_keys={"public_url": "https://news.example.com/sample/", "section": "Tech"},
        extra=f'\n[[sources]]\nname = "Down"\nurl = "{http_server.url("/down")}"\n',
    )
    store = Store.open(f"sqlite:///{tmp_path / 'digest.db'}")
    store.add_subscriber("reader@example.org", 'Ré "Q" Reader', now=NOW)
    store.add_subscriber("left@example.org", now=NOW)
    store.set_subscriber_status(status="unsubscribed", now=NOW, email="left@example.org")
    store.close()

    collected = run_json(tmp_path, config, "collect")
    assert isinstance(collected, dict) and collected["new_articles"] == 6
    by_name = {s["name"]: s for s in collected["sources"]}
    assert by_name["Down"]["ok"] is False and "503" in by_name["Down"]["error"]

    status = run_json(tmp_path, config, "status")
    assert isinstance(status, dict) and status["active_subscribers"] == 1
    assert status["daemon"]["running"] is False and status["next_send"]
    assert status["subscribers"]["unsubscribed"] == 1

    listed = run_json(tmp_path, config, "subscribers", "list")
    assert isinstance(listed, dict)
    subscribers = listed["subscribers"]
    assert {(s["email"], s["status"]) for s in subscribers} == {
        ("reader@example.org", "active"),
        ("left@example.org", "unsubscribed"),
    }
    assert subscribers[0]["name"] == 'Ré "Q" Reader'

    sources = run_json(tmp_path, config, "sources", "list")
    assert isinstance(sources, list) and [s["items"] for s in sources] == [6, 0]
    assert sources[0]["section"] == "Tech" and sources[1]["failures"] == 1
