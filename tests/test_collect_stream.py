"""Pages start as soon as their feed is in, and the run still ends as if it waited.

Each test holds one feed back until a page of another feed has been requested (a
server-side wait with a generous ceiling, never a sleep): the run can only pass by
fetching pages before every feed is in. What it keeps must not depend on that: an
item two sources share still belongs to the first source in the config.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from digest import pipeline
from digest.collect.fetch import FetchResult
from digest.collect.gather import Gathering
from digest.config import CollectConfig
from digest.config.load import load_config
from digest.store import Store
from tests.httpserver import LocalHTTPServer, Response

Handler = Callable[[object], Response]
NOW = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
CEILING = 60.0  # how long a held-back feed waits for the page it expects
TEXT = [
    "The regional rail operator said on Monday that it will add forty trains to its fleet "
    "by the end of next year, the largest order in its history.",
    "The new trains will serve the busiest commuter lines first, the operator said.",
    "Passenger groups welcomed the order but asked for more frequent weekend services.",
]


def _page(title: str) -> Response:
    paragraphs = "".join(f"<p>{p}</p>" for p in TEXT)
    return Response(
        f"<html><head><title>{title}</title></head><body>"
        f"<article><h1>{title}</h1><p>{title}.</p>{paragraphs}</article></body></html>"
    )


def _rss(server: LocalHTTPServer, items: list[tuple[str, str]]) -> Response:
    body = "".join(
        f"<item><title>{title}</title><link>{server.url(path)}</link><guid>{path}</guid>"
        f"<pubDate>{format_datetime(NOW - timedelta(hours=1))}</pubDate></item>"
        for path, title in items
    )
    return Response(
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{body}</channel></rss>',
        content_type="application/rss+xml",
    )


def _held_back(feed: Response, until: threading.Event, early: list[bool]) -> Handler:
    def answer(_handler: object) -> Response:
        early.append(until.wait(CEILING))
        return feed

    return answer


def _announcing(page: Response, event: threading.Event) -> Handler:
    def answer(_handler: object) -> Response:
        event.set()
        return page

    return answer


def _config(tmp_path: Path, sources: list[tuple[str, str]]) -> Path:
    cfg = tmp_path / "config.toml"
    listed = "".join(f'[[sources]]\nname = "{n}"\nurl = "{u}"\n\n' for n, u in sources)
    cfg.write_text(
        f'[site]\nname = "T"\nurl = "https://t.example.org"\ntimezone = "UTC"\n\n{listed}'
        f'[store]\nurl = "sqlite:///{tmp_path / "s.db"}"\n\n'
        f"[collect]\ntimeout = {CEILING + 30}\ndeadline = {CEILING + 60}\n",
        encoding="utf-8",
    )
    return cfg


def _collect(cfg: Path, *, ahead: bool = False) -> tuple[Store, pipeline.CollectReport]:
    config = load_config(cfg)
    store = Store.open(config.store.url)
    return store, pipeline.collect_articles(config, store, now=NOW, ahead=ahead)


def _stored(store: Store) -> dict[str, tuple[str, str]]:
    """Return title -> (source, url) of every stored article."""
    return {a.title: (a.source, a.url) for a in store.unissued_articles(NOW - timedelta(days=2))}


def test_a_page_is_fetched_before_the_slowest_feed_is_in(
    http_server: LocalHTTPServer, tmp_path: Path
) -> None:
    s = http_server
    asked, early = threading.Event(), list[bool]()
    s.routes["/slow/feed"] = _held_back(_rss(s, [("/slow/a", "Slow story")]), asked, early)
    s.routes["/fast/feed"] = _rss(s, [("/fast/a", "Fast story")])
    s.routes["/fast/a"] = _announcing(_page("Fast story"), asked)
    s.routes["/slow/a"] = _page("Slow story")
    cfg = _config(tmp_path, [("Slow", s.url("/slow/feed")), ("Fast", s.url("/fast/feed"))])
    store, report = _collect(cfg, ahead=True)
    assert early == [True]  # the fast feed's page was asked for while the slow feed waited
    assert all(r.ok and r.new_articles == 1 for r in report.sources)
    stored = _stored(store)
    assert stored["Fast story"][0] == "Fast" and stored["Slow story"][0] == "Slow"


def test_a_page_two_sources_share_is_fetched_once_for_the_first_source(
    http_server: LocalHTTPServer, tmp_path: Path
) -> None:
    s = http_server
    asked, early = threading.Event(), list[bool]()
    s.routes["/a/feed"] = _held_back(_rss(s, [("/shared/x", "Shared story")]), asked, early)
    s.routes["/b/feed"] = _rss(s, [("/shared/x", "Shared story"), ("/b/own", "Own story")])
    s.routes["/shared/x"] = _announcing(_page("Shared story"), asked)
    s.routes["/b/own"] = _page("Own story")
    cfg = _config(tmp_path, [("A", s.url("/a/feed")), ("B", s.url("/b/feed"))])
    store, report = _collect(cfg)
    assert early == [True]  # B was in first and started the shared page
    stored = _stored(store)
    assert stored["Shared story"] == ("A", s.url("/shared/x"))  # config order decides
    assert stored["Own story"][0] == "B"
    assert [p for p, _ in s.requests].count("/shared/x") == 1
    counts = {r.source: r.new_articles for r in report.sources}
    assert counts == {"A": 1, "B": 1}


def test_an_item_a_source_earlier_in_the_config_also_has_is_dropped(
    http_server: LocalHTTPServer, tmp_path: Path
) -> None:
    s = http_server
    asked, early = threading.Event(), list[bool]()
    # The same story under two addresses: A's copy wins, B's page is not used.
    s.routes["/a/feed"] = _held_back(_rss(s, [("/a/same", "Same story")]), asked, early)
    s.routes["/b/feed"] = _rss(s, [("/b/same", "Same story"), ("/b/other", "Other story")])
    s.routes["/a/same"] = _page("Same story")
    s.routes["/b/same"] = _announcing(_page("Same story"), asked)
    s.routes["/b/other"] = _page("Other story")
    cfg = _config(tmp_path, [("A", s.url("/a/feed")), ("B", s.url("/b/feed"))])
    store, report = _collect(cfg, ahead=True)
    assert early == [True]
    stored = _stored(store)
    assert stored == {
        "Same story": ("A", s.url("/a/same")),
        "Other story": ("B", s.url("/b/other")),
    }
    counts = {r.source: r.new_articles for r in report.sources}
    assert counts == {"A": 1, "B": 1}
    assert all(not r.warnings for r in report.sources)


def test_a_page_started_for_one_source_is_fetched_again_under_its_keepers_trust(
    http_server: LocalHTTPServer,
) -> None:
    """A loopback page is refused for a public source, fetched for one trusting the host."""
    http_server.routes["/p"] = _page("Private story")
    url = http_server.url("/p")
    trust = {"trusting": frozenset({"127.0.0.1"}), "public": frozenset()}

    async def gather(first: str, keeper: str) -> FetchResult | str:
        cfg = CollectConfig(timeout=CEILING, deadline=CEILING)
        async with Gathering(cfg, trusted_hosts_by_source=trust) as gathering:
            gathering.start_page(first, url)
            return (await gathering.pages([(keeper, url)]))[url]

    kept = asyncio.run(gather("public", "trusting"))
    assert isinstance(kept, FetchResult) and b"Private story" in kept.body
    refused = asyncio.run(gather("trusting", "public"))
    assert isinstance(refused, str) and "refused" in refused


def test_the_run_deadline_also_ends_pages_started_early(
    http_server: LocalHTTPServer, tmp_path: Path
) -> None:
    """A page that never answers, started while another feed was still out, is cut at
    the run's deadline like any other: the run ends, says why, and keeps the rest."""
    s = http_server
    s.routes["/fast/feed"] = _rss(s, [("/fast/hangs", "Hanging story"), ("/fast/ok", "Fine")])
    s.routes["/fast/hangs"] = Response("never", delay=120.0)
    s.routes["/fast/ok"] = _page("Fine")
    s.routes["/slow/feed"] = Response(
        _rss(s, [("/slow/a", "Slow story")]).body, content_type="application/rss+xml", delay=1.0
    )
    s.routes["/slow/a"] = _page("Slow story")
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        _config(tmp_path, [("Fast", s.url("/fast/feed")), ("Slow", s.url("/slow/feed"))])
        .read_text(encoding="utf-8")
        .replace(
            f"timeout = {CEILING + 30}\ndeadline = {CEILING + 60}", "timeout = 300\ndeadline = 6"
        ),
        encoding="utf-8",
    )
    start = time.monotonic()
    store, report = _collect(cfg, ahead=True)
    assert time.monotonic() - start < 60  # the deadline, not the 120 s answer, ended it
    fast = next(r for r in report.sources if r.source == "Fast")
    assert fast.warnings == (f"{s.url('/fast/hangs')}: deadline of 6 s exceeded",)
    assert set(_stored(store)) == {"Hanging story", "Fine", "Slow story"}  # feed text kept
