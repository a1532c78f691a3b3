"""Fetching feeds and pages from a real HTTP server on 127.0.0.1, and the private-network guard."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Coroutine, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from digest.collect import collect_feeds, fetch_pages
from digest.collect.fetch import Fetcher, FetchResult, read_local
from digest.collect.netguard import check_url_allowed, guard_client, is_public_address
from digest.config import CollectConfig, SourceConfig
from digest.errors import FetchError
from tests.httpserver import LocalHTTPServer, Response

T = TypeVar("T")

RSS_TYPE = "application/rss+xml"


def cfg(**kw: Any) -> CollectConfig:
    return CollectConfig(**{"timeout": 1.0, "deadline": 5.0, **kw})


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def rss(*links: str, title: str = "Story") -> str:
    items = "".join(
        f"<item><title>{title} {i}</title><link>{link}</link><guid>g{i}</guid></item>"
        for i, link in enumerate(links)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>F</title>{items}</channel></rss>'
    )


def fetch(url: str, config: CollectConfig | None = None, **kw: Any) -> FetchResult:
    async def go() -> FetchResult:
        async with Fetcher(config or cfg()) as fetcher:
            return await fetcher.fetch(url, **kw)

    return run(go())


@pytest.fixture(scope="module")
def shared_server() -> Iterator[LocalHTTPServer]:
    server = LocalHTTPServer().start()
    yield server
    server.stop()


@pytest.fixture
def http_server(shared_server: LocalHTTPServer) -> LocalHTTPServer:
    """The conftest server, shared by this module: stopping one costs up to 0.5 s."""
    shared_server.routes.clear()
    shared_server.requests.clear()
    return shared_server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- single fetches -------------------------------------------------------------------------


def test_fetch_sends_user_agent_and_returns_body(http_server: LocalHTTPServer) -> None:
    http_server.routes["/feed"] = Response(
        rss("/a"), content_type=RSS_TYPE, headers={"ETag": '"e1"'}
    )
    res = fetch(http_server.url("/feed"), cfg(user_agent="digest-test/1.0"))
    assert res.status == 200 and not res.truncated and not res.not_modified
    assert res.body.startswith(b"<?xml") and res.content_type == RSS_TYPE
    assert res.etag == '"e1"'
    _, headers = http_server.requests[0]
    assert headers["User-Agent"] == "digest-test/1.0"


def test_trickling_body_cannot_exceed_the_timeout(http_server: LocalHTTPServer) -> None:
    # 100 bytes, one every 50 ms: each read is quick, the whole body takes 5 s.
    http_server.routes["/slow"] = Response(b"x" * 100, chunk_delay=0.05)
    start = time.monotonic()
    with pytest.raises(FetchError, match=r"^timed out after 1 s$"):
        fetch(http_server.url("/slow"))
    assert time.monotonic() - start < 2.0


def test_status_errors_and_connection_refused(http_server: LocalHTTPServer) -> None:
    http_server.routes["/busy"] = Response("busy", status=503, content_type="text/plain")
    with pytest.raises(FetchError, match=r"^HTTP 503 Service Unavailable$"):
        fetch(http_server.url("/busy"))
    with pytest.raises(FetchError, match=r"^HTTP 404 Not Found$"):
        fetch(http_server.url("/missing"))
    with pytest.raises(FetchError, match=r"^connection refused$"):
        fetch(f"http://127.0.0.1:{free_port()}/feed")


def test_redirects_followed_up_to_the_limit(http_server: LocalHTTPServer) -> None:
    for i in range(3):
        http_server.routes[f"/r{i}"] = Response(status=301, headers={"Location": f"/r{i + 1}"})
    http_server.routes["/r3"] = Response("<p>end</p>")
    res = fetch(http_server.url("/r0"))
    assert res.final_url == http_server.url("/r3") and res.url == http_server.url("/r0")
    assert res.body == b"<p>end</p>"
    with pytest.raises(FetchError, match=r"too many redirects \(>2\)"):
        fetch(http_server.url("/r0"), cfg(max_redirects=2))


def test_redirect_loop(http_server: LocalHTTPServer) -> None:
    http_server.routes["/a"] = Response(status=302, headers={"Location": "/b"})
    http_server.routes["/b"] = Response(status=302, headers={"Location": "/a"})
    with pytest.raises(FetchError, match=r"^too many redirects \(>5\)$"):
        fetch(http_server.url("/a"))
    assert len(http_server.requests) == 6


def test_redirect_to_ftp_is_refused(http_server: LocalHTTPServer) -> None:
    http_server.routes["/f"] = Response(status=302, headers={"Location": "ftp://files.example/x"})
    with pytest.raises(FetchError, match=r"^redirect to non-http URL ftp://files\.example/x$"):
        fetch(http_server.url("/f"))


def test_429_retry_after_then_success(http_server: LocalHTTPServer) -> None:
    calls: list[float] = []

    def limited(_: BaseHTTPRequestHandler) -> Response:
        calls.append(time.monotonic())
        if len(calls) == 1:
            return Response("slow down", status=429, headers={"Retry-After": "1"})
        return Response(rss("/a"), content_type=RSS_TYPE)

    http_server.routes["/feed"] = limited
    res = fetch(http_server.url("/feed"))
    assert res.status == 200 and len(calls) == 2
    assert calls[1] - calls[0] >= 0.95


def test_retry_after_longer_than_time_left_fails_at_once(http_server: LocalHTTPServer) -> None:
    http_server.routes["/feed"] = Response("later", status=503, headers={"Retry-After": "30"})
    start = time.monotonic()
    with pytest.raises(
        FetchError, match=r"HTTP 503 Service Unavailable \(server asks to wait 30 s"
    ):
        fetch(http_server.url("/feed"))
    assert time.monotonic() - start < 1.0
    assert len(http_server.requests) == 1


def test_concurrency_is_bounded(http_server: LocalHTTPServer) -> None:
    lock = threading.Lock()
    active = [0, 0]  # now, max

    def page(_: BaseHTTPRequestHandler) -> Response:
        with lock:
            active[0] += 1
            active[1] = max(active[1], active[0])
        time.sleep(0.15)
        with lock:
            active[0] -= 1
        return Response("<p>page</p>")

    for i in range(6):
        http_server.routes[f"/p{i}"] = page
    pairs = [("s", http_server.url(f"/p{i}")) for i in range(6)]
    out = run(
        fetch_pages(
            pairs, cfg(concurrency=2), trusted_hosts_by_source={"s": frozenset({"127.0.0.1"})}
        )
    )
    assert all(isinstance(v, FetchResult) for v in out.values())
    assert active[1] == 2


class _HostsToLocal(httpx.AsyncBaseTransport):
    """Send every request to the local server whatever its host, like an /etc/hosts entry."""

    def __init__(self, server: LocalHTTPServer) -> None:
        self.port = int(server.base.rsplit(":", 1)[1])
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(host="127.0.0.1", port=self.port)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _track(server: LocalHTTPServer, paths: list[str]) -> dict[str, int]:
    """Route `paths` to a slow page; return per-host-header max in-flight counts."""
    lock = threading.Lock()
    now: dict[str, int] = {}
    peak: dict[str, int] = {"*": 0}

    def page(req: BaseHTTPRequestHandler) -> Response:
        host = req.headers.get("Host", "")
        with lock:
            now[host] = now.get(host, 0) + 1
            now["*"] = now.get("*", 0) + 1
            peak[host] = max(peak.get(host, 0), now[host])
            peak["*"] = max(peak["*"], now["*"])
        time.sleep(0.2)
        with lock:
            now[host] -= 1
            now["*"] -= 1
        return Response("<p>page</p>")

    for path in paths:
        server.routes[path] = page
    return peak


def test_per_host_limit_bounds_each_host_not_the_run(http_server: LocalHTTPServer) -> None:
    paths = [f"/h{i}" for i in range(8)]
    peak = _track(http_server, paths)
    urls = [f"http://{h}.example{p}" for h in ("news", "blog") for p in paths]

    async def go() -> list[FetchResult]:
        async with httpx.AsyncClient(transport=_HostsToLocal(http_server)) as client:
            fetcher = Fetcher(cfg(per_host=2, concurrency=64), client)
            return await asyncio.gather(*(fetcher.fetch(u) for u in urls))

    assert all(r.status == 200 for r in run(go()))
    assert peak["news.example"] == 2 and peak["blog.example"] == 2
    assert peak["*"] > 2  # the two hosts were fetched at the same time


def test_hosts_on_this_machine_are_not_held_to_per_host(http_server: LocalHTTPServer) -> None:
    paths = [f"/l{i}" for i in range(6)]
    peak = _track(http_server, paths)
    pairs = [("s", http_server.url(p)) for p in paths]
    out = run(
        fetch_pages(
            pairs,
            cfg(per_host=1, concurrency=64),
            trusted_hosts_by_source={"s": frozenset({"127.0.0.1"})},
        )
    )
    assert all(isinstance(v, FetchResult) for v in out.values())
    assert peak["*"] > 1


# --- collect_feeds --------------------------------------------------------------------------


def test_one_bad_source_never_affects_the_others(http_server: LocalHTTPServer) -> None:
    s = http_server
    s.routes["/good"] = Response(rss(s.url("/a"), s.url("/b")), content_type=RSS_TYPE)
    s.routes["/error"] = Response("oops", status=500, content_type="text/plain")
    s.routes["/hang"] = Response(rss("/x"), delay=3.0)
    s.routes["/html"] = Response("<!doctype html><html><body>home page</body></html>")
    sources = [SourceConfig(name=n, url=s.url(f"/{n}")) for n in ("good", "error", "hang", "html")]
    seen: list[str] = []
    start = time.monotonic()
    results = run(collect_feeds(sources, cfg(), {}, progress=seen.append))
    elapsed = time.monotonic() - start
    by_name = {r.source.name: r for r in results}
    assert [r.source.name for r in results] == ["good", "error", "hang", "html"]
    assert by_name["good"].error is None
    assert [e.url for e in by_name["good"].entries] == [s.url("/a"), s.url("/b")]
    assert by_name["error"].error == "HTTP 500 Internal Server Error"
    assert by_name["hang"].error == "timed out after 1 s"
    assert by_name["html"].error == "not a feed: the document is HTML"
    assert sorted(seen) == ["error", "good", "hang", "html"]
    assert elapsed < 2.5


def test_whole_run_deadline(http_server: LocalHTTPServer) -> None:
    http_server.routes["/fast"] = Response(rss("/a"), content_type=RSS_TYPE)
    http_server.routes["/slow"] = Response(rss("/a"), content_type=RSS_TYPE, delay=120.0)
    sources = [
        SourceConfig(name="fast", url=http_server.url("/fast")),
        SourceConfig(name="slow", url=http_server.url("/slow")),
    ]
    start = time.monotonic()
    fast, slow = run(collect_feeds(sources, cfg(timeout=300.0, deadline=3.0), {}))
    assert time.monotonic() - start < 60  # the deadline, not the 120 s answer, ended it
    assert fast.error is None and len(fast.entries) == 1
    assert slow.error == "deadline of 3 s exceeded"


def test_conditional_get_304_round_trip(http_server: LocalHTTPServer) -> None:
    stamp = "Tue, 24 Nov 2026 10:00:00 GMT"

    def feed(handler: BaseHTTPRequestHandler) -> Response:
        if handler.headers.get("If-None-Match") == '"v1"':
            return Response(b"", status=304, headers={"ETag": '"v1"'})
        return Response(
            rss("/a"), content_type=RSS_TYPE, headers={"ETag": '"v1"', "Last-Modified": stamp}
        )

    http_server.routes["/feed"] = feed
    source = SourceConfig(name="city", url=http_server.url("/feed"))
    (first,) = run(collect_feeds([source], cfg(), {}))
    assert first.error is None and len(first.entries) == 1 and not first.not_modified
    assert (first.etag, first.last_modified) == ('"v1"', stamp)

    states = {"city": (first.etag, first.last_modified)}
    (second,) = run(collect_feeds([source], cfg(), states))
    assert second.not_modified and second.error is None and second.entries == ()
    assert (second.etag, second.last_modified) == ('"v1"', stamp)
    _, headers = http_server.requests[1]
    assert headers["If-None-Match"] == '"v1"' and headers["If-Modified-Since"] == stamp


def test_failed_source_keeps_its_conditional_state(http_server: LocalHTTPServer) -> None:
    http_server.routes["/feed"] = Response("down", status=500)
    source = SourceConfig(name="city", url=http_server.url("/feed"))
    (res,) = run(collect_feeds([source], cfg(), {"city": ('"v9"', None)}))
    assert res.error and res.etag == '"v9"'


def test_size_cap(http_server: LocalHTTPServer) -> None:
    big = b"<p>" + b"x" * 2_000_000 + b"</p>"
    http_server.routes["/feed"] = Response(big, content_type=RSS_TYPE)
    http_server.routes["/page"] = Response(big)
    small = cfg(max_bytes=100_000)
    source = SourceConfig(name="big", url=http_server.url("/feed"))
    (res,) = run(collect_feeds([source], small, {}))
    assert res.error is not None and res.error.startswith("body over 100000 bytes, cut")
    page = run(
        fetch_pages(
            [("big", http_server.url("/page"))],
            small,
            trusted_hosts_by_source={"big": frozenset({"127.0.0.1"})},
        )
    )
    result = page[http_server.url("/page")]
    assert isinstance(result, FetchResult)
    assert result.truncated and len(result.body) == 100_000


def test_non_html_page_is_skipped(http_server: LocalHTTPServer) -> None:
    http_server.routes["/doc.pdf"] = Response(b"%PDF-1.7", content_type="application/pdf")
    url = http_server.url("/doc.pdf")
    out = run(
        fetch_pages([("s", url)], cfg(), trusted_hosts_by_source={"s": frozenset({"127.0.0.1"})})
    )
    assert out[url] == "not a web page (application/pdf)"


# --- the private-network guard ------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("240.0.0.1", False),
        ("255.255.255.255", False),
        ("::1", False),
        ("::", False),
        ("fc00::1", False),
        ("fd12:3456::1", False),
        ("fe80::1", False),
        ("ff02::1", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:8.8.8.8", True),
        ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
        ("2002:a00:1::1", False),  # 6to4 of 10.0.0.1
        ("[::1]", False),
    ],
)
def test_is_public_address(ip: str, public: bool) -> None:
    assert is_public_address(ip) is public


def test_is_public_address_rejects_names() -> None:
    with pytest.raises(ValueError):
        is_public_address("example.com")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://10.0.0.5/admin", "refused: 10.0.0.5 is a private address"),
        ("http://169.254.169.254/latest/meta-data/", "refused: 169.254.169.254 is a link-local"),
        ("http://[::1]:8080/", "refused: ::1 is a loopback address"),
        ("http://localhost/", "refused: localhost resolves to loopback address 127.0.0.1"),
        ("ftp://example.com/x", "refused: ftp URLs are not fetched"),
        ("http://8.8.8.8/", None),
    ],
)
def test_check_url_allowed(url: str, expected: str | None) -> None:
    reason = run(check_url_allowed(url, trusted_hosts=frozenset(), allow_private=False))
    if expected is None:
        assert reason is None
    else:
        assert reason is not None and reason.startswith(expected)


def test_check_url_allowed_trust_and_override() -> None:
    url = "http://10.0.0.5/"
    assert (
        run(check_url_allowed(url, trusted_hosts=frozenset({"10.0.0.5"}), allow_private=False))
        is None
    )
    assert run(check_url_allowed(url, trusted_hosts=frozenset(), allow_private=True)) is None
    # Trust is per host: another private host stays refused.
    other = run(
        check_url_allowed(
            "http://10.0.0.6/", trusted_hosts=frozenset({"10.0.0.5"}), allow_private=False
        )
    )
    assert other is not None and other.startswith("refused")


def test_loopback_source_treated_as_public_cannot_reach_another_port(
    http_server: LocalHTTPServer,
) -> None:
    target = LocalHTTPServer().start()
    try:
        target.routes["/admin"] = Response("<p>secret</p>")
        page_url = target.url("/admin")
        http_server.routes["/feed"] = Response(rss(page_url), content_type=RSS_TYPE)

        # As a public source would be: no trusted hosts, private addresses checked.
        with pytest.raises(FetchError, match="refused: 127.0.0.1 is a loopback address"):
            fetch(http_server.url("/feed"), trusted_hosts=frozenset(), check_private=True)
        assert http_server.requests == []

        # The feed itself (its own host trusted) is fetched; its page link is not.
        source = SourceConfig(name="pub", url=http_server.url("/feed"))
        (feed,) = run(collect_feeds([source], cfg(), {}))
        assert [e.url for e in feed.entries] == [page_url]
        pages = run(
            fetch_pages([("pub", page_url)], cfg(), trusted_hosts_by_source={"pub": frozenset()})
        )
        reason = pages[page_url]
        assert isinstance(reason, str) and reason.startswith("refused: 127.0.0.1 is a loopback")
        assert target.requests == []
    finally:
        target.stop()


def test_dns_rebinding_is_caught_at_connect_time(http_server: LocalHTTPServer) -> None:
    """A name that answers public for the check and loopback for the connection is refused.

    The resolver stands in for a rebinding DNS server. Nothing ever connects to the
    public answer: the check only looks at it, and the connection gets the loopback one.
    """
    http_server.routes["/admin"] = Response("<p>secret</p>")
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])
    asked: list[str] = []

    async def rebinding(host: str, port: int) -> list[str]:
        asked.append(host)
        return next(answers)

    async def go() -> FetchResult:
        async with Fetcher(cfg(), resolve=rebinding) as fetcher:
            return await fetcher.fetch(
                f"http://rebind.test:{http_server.port}/admin",
                trusted_hosts=frozenset(),
                check_private=True,
            )

    with pytest.raises(FetchError, match=r"^refused: rebind.test resolves to loopback address"):
        run(go())
    assert asked == ["rebind.test", "rebind.test"]  # checked before the request and at connect
    assert http_server.requests == []


def test_guard_refuses_a_client_it_cannot_guard() -> None:
    async def go() -> None:
        async with httpx.AsyncClient(
            transport=httpx.MockTransport(lambda _req: httpx.Response(200))
        ) as client:
            with pytest.raises(RuntimeError, match="cannot guard"):
                guard_client(client)
        async with httpx.AsyncClient() as client:
            guard_client(client)  # the default transport: guarded

    run(go())


def test_redirect_into_private_network_is_refused(http_server: LocalHTTPServer) -> None:
    http_server.routes["/go"] = Response(
        status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}
    )
    url = http_server.url("/go")
    out = run(
        fetch_pages([("s", url)], cfg(), trusted_hosts_by_source={"s": frozenset({"127.0.0.1"})})
    )
    reason = out[url]
    assert isinstance(reason, str)
    assert reason.startswith("redirect to http://169.254.169.254/latest/meta-data/: refused")
    assert "link-local" in reason


# --- local feed files -----------------------------------------------------------------------


@pytest.fixture
def local_site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    (site / "pages").mkdir(parents=True)
    (site / "pages" / "a.html").write_text("<p>Article A</p>", encoding="utf-8")
    (tmp_path / "secret.html").write_text("<p>secret</p>", encoding="utf-8")
    (site / "feed.xml").write_text(rss("pages/a.html", "../secret.html"), encoding="utf-8")
    return site


def test_read_local(local_site: Path) -> None:
    res = read_local(str(local_site / "feed.xml"), max_bytes=20)
    assert res.truncated and len(res.body) == 20
    assert res.final_url == (local_site / "feed.xml").as_uri()
    with pytest.raises(FetchError, match="no such file"):
        read_local(str(local_site / "nope.xml"))


def test_local_feed_with_public_url(local_site: Path) -> None:
    source = SourceConfig(
        name="local", url=str(local_site / "feed.xml"), public_url="https://news.example.com/s/"
    )
    (feed,) = run(collect_feeds([source], cfg(), {}))
    urls = [e.url for e in feed.entries]
    assert urls == [
        "https://news.example.com/s/pages/a.html",
        "https://news.example.com/secret.html",
    ]
    # Below public_url: read from the feed's folder; "%2E%2E" must not climb out of it.
    sneaky = "https://news.example.com/s/pages/%2E%2E/%2E%2E/secret.html"
    pages = run(
        fetch_pages(
            [("local", urls[0]), ("local", sneaky)],
            cfg(),
            trusted_hosts_by_source={"local": frozenset({"__local__"})},
            sources={"local": source},
        )
    )
    page = pages[urls[0]]
    assert isinstance(page, FetchResult)
    assert page.body == b"<p>Article A</p>" and page.final_url == urls[0]
    assert pages[sneaky] == f"refused: {sneaky} is outside the feed's folder"


def test_local_feed_file_links(local_site: Path) -> None:
    source = SourceConfig(name="local", url=str(local_site / "feed.xml"))
    (feed,) = run(collect_feeds([source], cfg(), {}))
    page_url, secret_url = (e.url for e in feed.entries)
    assert page_url == (local_site / "pages" / "a.html").as_uri()
    pages = run(
        fetch_pages([("local", page_url), ("local", secret_url)], cfg(), sources={"local": source})
    )
    page = pages[page_url]
    assert isinstance(page, FetchResult) and page.body == b"<p>Article A</p>"
    assert pages[secret_url] == f"refused: {secret_url} is outside the feed's folder"


def test_file_links_refused_for_http_sources(
    http_server: LocalHTTPServer, local_site: Path
) -> None:
    source = SourceConfig(name="web", url=http_server.url("/feed"))
    url = (local_site / "pages" / "a.html").as_uri()
    out = run(fetch_pages([("web", url)], cfg(), sources={"web": source}))
    assert out[url] == "refused: file: links are only read for local feed files"
