"""`digest sources` and `digest init`: config.toml edited in place, comments kept, loadable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.cli.init import shipped_config
from digest.config.load import load_config
from digest.config.opml import parse_opml
from tests.httpserver import LocalHTTPServer, Response

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"
SAMPLE = ROOT / "digest" / "sample" / "feed.xml"

RSS = """<?xml version="1.0"?><rss version="2.0"><channel><title>Harbour Gazette</title>
<link>https://harbour.example/</link><item><title>Tide tables</title>
<link>https://harbour.example/tides</link><guid>t1</guid></item></channel></rss>"""

PAGE = """<!DOCTYPE html><html><head><title>Harbour Gazette — home</title>
<link rel="stylesheet" href="/style.css">
<link rel="alternate" type="application/rss+xml" title="RSS" href="/feed.xml?x=1&amp;y=2">
</head><body><p>Welcome.</p></body></html>"""

COMMENTED = f"""# My newsletter — keep these notes!
[site]
name = "Harbour News"   # shown on top
url = "https://news.example.com"
timezone = "UTC"

# Feeds, best first.
[[sources]]
name = "Sample"          # the shipped sample
url = "{SAMPLE}"
public_url = "https://news.example.com/sample/"

# Where the database lives.
[store]
url = "sqlite:///digest.db"  # beside this file
"""


def write(tmp_path: Path, text: str = COMMENTED) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def digest(path: Path, *args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(cli, ["--config", str(path), *args], env={"COLUMNS": "200"})
    return res.exit_code, res.stdout, res.stderr


def comments(text: str) -> list[str]:
    return [line for line in text.splitlines() if "#" in line]


def test_import_of_a_real_opml_file_adds_its_feeds_and_keeps_the_comments(tmp_path: Path) -> None:
    path = write(tmp_path)
    code, out, err = digest(path, "sources", "import", str(DATA / "feeds.opml"))
    assert code == 0, out + err
    assert "imported 7, already in the config 0, listed 8" in out
    assert "gopher://example.org/feed" in err and "skipped" in err
    text = path.read_text(encoding="utf-8")
    for line in comments(COMMENTED):
        assert line in text  # every original line with a comment, as it was
    assert text.startswith(COMMENTED.split("[[sources]]")[0])
    config = load_config(path)  # the loader accepts the result
    by_name = {s.name: s for s in config.sources}
    assert list(by_name)[0] == "Sample"
    assert by_name["Ars Technica"].url == "https://feeds.arstechnica.com/arstechnica/index"
    assert by_name["Ars Technica (2)"].url.endswith("/science")
    assert by_name["The Verge"].section == "Technology"
    assert by_name["Hacker News & Friends"].section == "Technology"
    assert by_name["NASA Breaking News"].section == "Nested folder"
    assert by_name["Quanta Magazine"].section == "Science"
    assert by_name["The Verge (again, another URL)"].section == ""
    # The new tables sit with the sources, before [store].
    assert text.index("NASA Breaking News") < text.index("[store]")
    # Importing again adds nothing and leaves the file byte for byte.
    code, out, _ = digest(path, "sources", "import", str(DATA / "feeds.opml"))
    assert code == 0 and "imported 0, already in the config 7" in out
    assert path.read_text(encoding="utf-8") == text


def test_export_then_import_round_trips(tmp_path: Path) -> None:
    path = write(tmp_path)
    assert digest(path, "sources", "import", str(DATA / "feeds.opml"))[0] == 0
    code, opml, _ = digest(path, "sources", "export")
    assert code == 0
    assert opml.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0">')
    feeds = parse_opml(opml.encode())
    config = load_config(path)
    assert sorted((f.name, f.url, f.section) for f in feeds) == sorted(
        (s.name, s.url, s.section) for s in config.sources
    )
    other = tmp_path / "other"
    other.mkdir()
    fresh = write(other)
    (other / "out.opml").write_text(opml, encoding="utf-8")
    code, out, err = digest(fresh, "sources", "import", str(other / "out.opml"))
    assert code == 0 and "imported 7" in out, out + err


def test_import_rejects_what_is_not_opml_in_one_line(tmp_path: Path) -> None:
    path = write(tmp_path)
    bad = tmp_path / "bad.opml"
    bad.write_text('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>', "utf-8")
    code, _, err = digest(path, "sources", "import", str(bad))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "not an OPML file" in err
    assert path.read_text(encoding="utf-8") == COMMENTED


def test_add_a_page_url_finds_its_feed(http_server: LocalHTTPServer, tmp_path: Path) -> None:
    http_server.routes["/"] = Response(PAGE)
    http_server.routes["/feed.xml"] = Response(RSS, content_type="application/rss+xml")
    path = write(tmp_path)
    code, out, err = digest(path, "sources", "add", http_server.url("/"), "--section", "Local")
    assert code == 0, out + err
    feed = http_server.url("/feed.xml?x=1&y=2")
    assert f"added 'Harbour Gazette': {feed}" in out and "1 item(s)" in out
    config = load_config(path)
    assert config.sources[-1].name == "Harbour Gazette"
    assert config.sources[-1].url == feed and config.sources[-1].section == "Local"
    for line in comments(COMMENTED):
        assert line in path.read_text(encoding="utf-8")
    # The same name again is refused and the file is left as it was.
    before = path.read_text(encoding="utf-8")
    code, _, err = digest(path, "sources", "add", http_server.url("/feed.xml?x=1&y=2"))
    assert code == 2 and "exists already" in err
    assert path.read_text(encoding="utf-8") == before
    code, out, _ = digest(path, "sources", "add", feed, "--name", "Gazette direct")
    assert code == 0 and load_config(path).sources[-1].name == "Gazette direct"


def test_add_a_page_without_a_feed_is_one_line(
    http_server: LocalHTTPServer, tmp_path: Path
) -> None:
    http_server.routes["/"] = Response("<html><head><title>x</title></head><body>hi</body></html>")
    path = write(tmp_path)
    code, _, err = digest(path, "sources", "add", http_server.url("/"))
    assert code != 0 and "names no feed" in err and len(err.strip().splitlines()) == 1
    assert path.read_text(encoding="utf-8") == COMMENTED


def test_add_validates_like_the_loader(tmp_path: Path) -> None:
    path = write(tmp_path)
    code, _, err = digest(path, "sources", "add", "htp://typo.example/feed", "--no-check")
    assert code == 2 and "sources[1].url" in err, err
    assert path.read_text(encoding="utf-8") == COMMENTED


def test_remove_keeps_the_rest_and_refuses_to_leave_no_source(tmp_path: Path) -> None:
    path = write(tmp_path)
    assert digest(path, "sources", "import", str(DATA / "feeds.opml"))[0] == 0
    code, out, _ = digest(path, "sources", "remove", "The Verge")
    assert code == 0 and "removed 'The Verge'" in out
    names = [s.name for s in load_config(path).sources]
    assert "The Verge" not in names and "Hacker News & Friends" in names
    for line in comments(COMMENTED):
        assert line in path.read_text(encoding="utf-8")
    code, _, err = digest(path, "sources", "remove", "No such feed")
    assert code == 2 and "no source named 'No such feed'" in err
    one = tmp_path / "one"
    one.mkdir()
    single = write(one)
    code, _, err = digest(single, "sources", "remove", "Sample")
    assert code == 2 and "at least one [[sources]]" in err
    assert single.read_text(encoding="utf-8") == COMMENTED


def test_list_shows_last_success_items_and_failures(
    http_server: LocalHTTPServer, tmp_path: Path
) -> None:
    http_server.routes["/down"] = Response("no", status=503, content_type="text/plain")
    path = write(tmp_path)
    added = digest(path, "sources", "add", http_server.url("/down"), "--name", "Down", "--no-check")
    assert added[0] == 0
    assert digest(path, "collect")[0] == 0
    code, out, _ = digest(path, "sources", "list", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["Sample"]["items"] == 6 and rows["Sample"]["failures"] == 0
    assert rows["Sample"]["last_success"] is not None
    assert rows["Down"]["items"] == 0 and rows["Down"]["failures"] == 1
    assert rows["Down"]["last_success"] is None and "503" in rows["Down"]["last_error"]
    code, out, _ = digest(path, "sources", "list")
    assert code == 0 and "never" in out and "503" in out


def run_digest(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "digest", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**env, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
        stdin=subprocess.DEVNULL,
        timeout=300,
    )


def test_init_then_preview_works_in_an_empty_folder(tmp_path: Path) -> None:
    res = run_digest(
        tmp_path,
        "init",
        "--site-name",
        "Harbour News",
        "--site-url",
        "https://harbour.example/news/",
        "--timezone",
        "Asia/Tokyo",
    )
    assert res.returncode == 0, res.stdout + res.stderr
    text = (tmp_path / "config.toml").read_text(encoding="utf-8")
    assert text.startswith("# digest configuration.")
    assert text.count("#") > 50  # the commented file, not a bare one
    config = load_config(tmp_path / "config.toml")
    assert (config.site.name, config.site.url, config.site.timezone) == (
        "Harbour News",
        "https://harbour.example/news",
        "Asia/Tokyo",
    )
    res = run_digest(tmp_path, "preview")
    assert res.returncode == 0, res.stdout + res.stderr
    html = (tmp_path / "preview.html").read_text(encoding="utf-8")
    assert "Harbour News" in html and "Xiaomi" in html
    # A second init does not clobber the operator's file.
    res = run_digest(tmp_path, "init")
    assert res.returncode == 2 and "exists already" in res.stderr
    assert (tmp_path / "config.toml").read_text(encoding="utf-8") == text


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--timezone", "Europe/Berlinn", "not an IANA time zone"),
        ("--site-url", "news.example.com", "not an http(s) URL"),
        ("--site-name", "  ", "needs a name"),
    ],
)
def test_init_rejects_bad_answers_in_one_line(
    tmp_path: Path, option: str, value: str, message: str
) -> None:
    res = run_digest(tmp_path, "init", option, value)
    assert res.returncode == 2 and message in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "config.toml").exists()


def test_init_prompts_on_a_terminal_for_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("digest.cli.init.interactive", lambda: True)
    path = tmp_path / "config.toml"
    res = CliRunner().invoke(
        cli,
        ["--config", str(path), "init"],
        input="Night Owl\nnot a url\nhttps://owl.example\nMars/Olympus\nAmerica/Chicago\n",
    )
    assert res.exit_code == 0, res.output
    config = load_config(path)
    assert (config.site.name, config.site.url, config.site.timezone) == (
        "Night Owl",
        "https://owl.example",
        "America/Chicago",
    )
    assert "not an http(s) URL" in res.output and "not an IANA time zone" in res.output


def test_init_starts_from_the_shipped_config() -> None:
    assert shipped_config() == ROOT / "config.toml"  # a checkout: the repository's own
