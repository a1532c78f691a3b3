"""Collect feeds and their article pages (over HTTP, or from disk for local feeds).

Many fetches run at once (`fetch.Fetcher` bounds each one) and a whole run stops at
`[collect] deadline`. One failing source or page becomes an error string in its result;
it never stops the others.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import httpx

from digest.collect.feeds import canonical_url, parse_feed
from digest.collect.fetch import PAGE_ACCEPT, Fetcher, FetchResult, read_local, secs
from digest.config import CollectConfig, SourceConfig
from digest.errors import FetchError
from digest.models import Entry

log = logging.getLogger(__name__)

# Feeds parsed at once: one thread would let a pathological feed hold up the others.
PARSE_THREADS = 2

# trusted_hosts marker the pipeline uses for a source that is a local file.
LOCAL_SOURCE = "__local__"

Progress = Callable[[str], None]  # called with what was just fetched
T = TypeVar("T")


@dataclass(frozen=True)
class FeedResult:
    """One source after a collection run: its entries, or why there are none."""

    source: SourceConfig
    entries: tuple[Entry, ...] = ()
    error: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False


async def _run_all(
    jobs: Mapping[str, Coroutine[Any, Any, T]], *, deadline: float
) -> dict[str, T | str]:
    """Run `jobs` concurrently; those unfinished after `deadline` seconds get an error string."""
    tasks = {key: asyncio.create_task(job) for key, job in jobs.items()}
    return await _wait_all(tasks, deadline=deadline, late=f"deadline of {secs(deadline)} exceeded")


async def _wait_all(
    tasks: Mapping[str, asyncio.Task[T]], *, deadline: float, late: str
) -> dict[str, T | str]:
    """Wait for `tasks`; those unfinished after `deadline` seconds are stopped and get `late`."""
    if not tasks:
        return {}
    try:
        _, pending = await asyncio.wait(tasks.values(), timeout=deadline)
    finally:
        # On the deadline, or when our caller is cancelled, stop whatever is still running.
        await cancel_all(list(tasks.values()))
    return {key: late if task in pending else task.result() for key, task in tasks.items()}


async def collect_feeds(
    sources: Sequence[SourceConfig],
    cfg: CollectConfig,
    states: Mapping[str, tuple[str | None, str | None]],
    *,
    client: httpx.AsyncClient | None = None,
    progress: Progress | None = None,
) -> list[FeedResult]:
    """Fetch and parse every source concurrently; a failing source only fails its own result."""
    async with Gathering(cfg, client=client, progress=progress) as gathering:
        return await gathering.feeds(sources, states)


class Gathering:
    """One run's fetches: the feeds, and each page as soon as a feed names it.

    A page need not wait for the slowest feed: on 40 feeds, the first pages' network
    waits and extraction overlap the later feeds' download and parsing. One `Fetcher`
    serves feeds and pages, so `concurrency` and `per_host` bound them together. Use as
    `async with Gathering(cfg) as g:`; pages still running at the end are cancelled.
    """

    def __init__(
        self,
        cfg: CollectConfig,
        *,
        client: httpx.AsyncClient | None = None,
        trusted_hosts_by_source: Mapping[str, frozenset[str]] | None = None,
        sources: Mapping[str, SourceConfig] | None = None,
        progress: Progress | None = None,
        on_page: Callable[[str, FetchResult], Awaitable[None]] | None = None,
        deadline: float | None = None,
    ) -> None:
        self.cfg = cfg
        self._deadline = cfg.deadline if deadline is None else deadline
        self._fetcher = Fetcher(cfg, client, deadline=self._deadline)
        self._trust = trusted_hosts_by_source or {}
        self._sources = sources or {}
        self._progress = progress
        self._on_page = on_page
        self._pages: dict[str, tuple[str, asyncio.Task[FetchResult | str]]] = {}
        self._parser = ThreadPoolExecutor(PARSE_THREADS, thread_name_prefix="digest-parse")

    async def __aenter__(self) -> Gathering:
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await cancel_all([task for _, task in self._pages.values()])
        finally:
            self._parser.shutdown(wait=False, cancel_futures=True)
            await self._fetcher.aclose()

    async def feeds(
        self,
        sources: Sequence[SourceConfig],
        states: Mapping[str, tuple[str | None, str | None]],
        *,
        on_feed: Callable[[FeedResult], None] | None = None,
    ) -> list[FeedResult]:
        """Fetch and parse every source; `on_feed` sees each result as soon as it is in."""
        now = datetime.now(tz=UTC)

        async def one(src: SourceConfig) -> FeedResult:
            state = states.get(src.name, (None, None))
            res = await _collect_one(
                self._fetcher, self._parser, src, state, now=now, progress=self._progress
            )
            if on_feed is not None:
                try:
                    on_feed(res)
                except Exception:  # only an early start is lost: pages() starts it anyway
                    log.exception("source %s: starting its pages early failed", src.name)
            return res

        jobs = {str(i): one(src) for i, src in enumerate(sources)}
        done = await _run_all(jobs, deadline=self._deadline)
        results: list[FeedResult] = []
        for i, src in enumerate(sources):
            outcome = done[str(i)]
            if isinstance(outcome, str):
                etag, modified = states.get(src.name, (None, None))
                outcome = FeedResult(src, error=outcome, etag=etag, last_modified=modified)
            results.append(outcome)
        return results

    def start_page(self, source: str, url: str) -> None:
        """Start fetching `url` for `source` without waiting (once: the first source to
        name a page starts it; which source keeps it is settled in `pages`)."""
        if url not in self._pages:
            self._pages[url] = (source, asyncio.create_task(self._page(source, url)))

    async def pages(
        self, urls: Sequence[tuple[str, str]], *, deadline: float | None = None
    ) -> dict[str, FetchResult | str]:
        """Return each of the (source name, url) pairs' page, or why there is none.

        A page already started for the same source is awaited, not fetched again; one
        started for a source the run then passed over (another had the item first) is
        fetched again for the source that keeps it when their trust differs, and pages
        of items the run dropped are cancelled. `deadline` (seconds: what is left of
        the run's) bounds the wait.
        """
        owner: dict[str, str] = {}
        for name, url in urls:
            owner.setdefault(url, name)
        stale = []
        for url, name in owner.items():
            started = self._pages.get(url)
            if (
                started is not None
                and started[0] != name
                and not self._same_rules(started[0], name)
            ):
                stale.append(started[1])
                del self._pages[url]
            if url not in self._pages:
                self._pages[url] = (name, asyncio.create_task(self._page(name, url)))
        stale += [task for url, (_, task) in self._pages.items() if url not in owner]
        await cancel_all(stale)
        return await _wait_all(
            {url: self._pages[url][1] for url in owner},
            deadline=self._deadline if deadline is None else deadline,
            # The run's deadline, as configured: what is left of it by now means nothing
            # to whoever reads the report.
            late=f"deadline of {secs(self._deadline)} exceeded",
        )

    def _same_rules(self, one: str, other: str) -> bool:
        """Return True when a page is fetched the same way for either source: the same
        trusted hosts, and neither a local feed (whose pages are read from its folder)."""
        sources = [self._sources.get(one), self._sources.get(other)]
        local = any(src is not None and src.is_local for src in sources)
        trust = self._trust.get(one, frozenset()), self._trust.get(other, frozenset())
        return not local and trust[0] == trust[1]

    async def _page(self, source: str, url: str) -> FetchResult | str:
        return await _page_job(
            self._fetcher,
            url,
            trusted=self._trust.get(source, frozenset()),
            source=self._sources.get(source),
            progress=self._progress,
            on_page=self._on_page,
        )


async def cancel_all(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel the unfinished `tasks` and wait until they have stopped."""
    unfinished = [t for t in tasks if not t.done()]
    for task in unfinished:
        task.cancel()
    if unfinished:
        await asyncio.wait(unfinished)


async def _collect_one(
    fetcher: Fetcher,
    parser: Executor,
    src: SourceConfig,
    state: tuple[str | None, str | None],
    *,
    now: datetime,
    progress: Progress | None,
) -> FeedResult:
    etag, modified = state
    cfg = fetcher.cfg
    try:
        if src.is_local:
            res = await asyncio.to_thread(read_local, src.url, max_bytes=cfg.max_bytes)
            base = src.public_url or res.final_url
        else:
            # The operator chose this host; redirects elsewhere must pass the guard.
            host = urlsplit(src.url).hostname or ""
            res = await fetcher.fetch(
                src.url,
                etag=etag,
                last_modified=modified,
                trusted_hosts=frozenset({host}),
                check_private=True,
            )
            if res.not_modified:
                log.info("source %s: not modified", src.name)
                return FeedResult(
                    src, etag=res.etag, last_modified=res.last_modified, not_modified=True
                )
            base = res.final_url
        if res.truncated:
            raise FetchError(
                f"body over {cfg.max_bytes} bytes, cut; raise [collect] max_bytes "
                "if the feed is really that big"
            )
        # In a worker thread: a huge or pathological feed (feedparser is slow on
        # thousands of inline elements) must not stall the other sources' timeouts.
        # Few threads, not one per feed: 40 parses sharing one GIL would all finish
        # last, and each feed's pages wait for its parse.
        parse = functools.partial(
            parse_feed,
            res.body,
            source=src.name,
            base_url=base,
            content_type=res.content_type,
            now=now,
        )
        entries = await asyncio.get_running_loop().run_in_executor(parser, parse)
        log.info("source %s: %d entries", src.name, len(entries))
        return FeedResult(
            src, entries=tuple(entries), etag=res.etag, last_modified=res.last_modified
        )
    except FetchError as exc:
        return FeedResult(src, error=str(exc), etag=etag, last_modified=modified)
    except Exception as exc:  # a bug must not sink the other sources; keep the traceback
        log.exception("source %s: unexpected error", src.name)
        return FeedResult(
            src,
            error=f"unexpected error: {type(exc).__name__}: {exc}",
            etag=etag,
            last_modified=modified,
        )
    finally:
        if progress is not None:
            progress(src.name)


async def fetch_pages(
    urls: Sequence[tuple[str, str]],
    cfg: CollectConfig,
    *,
    client: httpx.AsyncClient | None = None,
    trusted_hosts_by_source: Mapping[str, frozenset[str]] | None = None,
    sources: Mapping[str, SourceConfig] | None = None,
    progress: Progress | None = None,
    deadline: float | None = None,
    on_page: Callable[[str, FetchResult], Awaitable[None]] | None = None,
) -> dict[str, FetchResult | str]:
    """Fetch article pages for (source name, url) pairs; map each url to a result or an error.

    Pages of a local feed (file:// links, or links below its `public_url`) are read from
    the feed's folder. Other pages must resolve to public addresses unless their host is
    trusted for that source or `cfg.allow_private` is set. `deadline` (seconds, default
    `cfg.deadline`) bounds the whole call. A page given to `on_page` comes back without
    its body (`on_page` had it).
    """
    limit = cfg.deadline if deadline is None else deadline
    async with Gathering(
        cfg,
        client=client,
        trusted_hosts_by_source=trusted_hosts_by_source,
        sources=sources,
        progress=progress,
        on_page=on_page,
        deadline=limit,
    ) as gathering:
        return await gathering.pages(urls, deadline=limit)


async def _page_job(
    fetcher: Fetcher,
    url: str,
    *,
    trusted: frozenset[str],
    source: SourceConfig | None,
    progress: Progress | None,
    on_page: Callable[[str, FetchResult], Awaitable[None]] | None = None,
) -> FetchResult | str:
    try:
        res = await _fetch_page(fetcher, url, trusted=trusted, source=source)
        if on_page is not None:
            await on_page(url, res)
            # Handed over: a day's pages are tens of megabytes, held to the end otherwise.
            res = replace(res, body=b"")
        return res
    except FetchError as exc:
        return str(exc)
    except Exception as exc:  # one odd page must not sink the run; keep the traceback
        log.exception("page %s: unexpected error", url)
        return f"unexpected error: {type(exc).__name__}: {exc}"
    finally:
        if progress is not None:
            progress(url)


async def _fetch_page(
    fetcher: Fetcher, url: str, *, trusted: frozenset[str], source: SourceConfig | None
) -> FetchResult:
    cfg = fetcher.cfg
    scheme = urlsplit(url).scheme.lower()
    if source is not None and source.is_local:
        path = _local_page_path(source, url)
        if path is not None:
            res = await asyncio.to_thread(read_local, str(path), max_bytes=cfg.max_bytes)
            # Pages mapped from public_url keep their web address so relative links work.
            return replace(res, url=url, final_url=res.final_url if scheme == "file" else url)
    if scheme == "file":
        raise FetchError("refused: file: links are only read for local feed files")
    res = await fetcher.fetch(
        url,
        trusted_hosts=trusted - {LOCAL_SOURCE},
        check_private=True,
        accept=PAGE_ACCEPT,
    )
    ctype = (res.content_type or "").split(";")[0].strip().lower()
    if ctype and not ("html" in ctype or "xml" in ctype or ctype.startswith("text/")):
        raise FetchError(f"not a web page ({ctype})")
    return res


def _local_page_path(source: SourceConfig, url: str) -> Path | None:
    """Map a page link of a local feed to a file in the feed's folder (None: not a local page)."""
    folder = Path(source.url).parent.resolve()
    parts = urlsplit(url)
    if parts.scheme.lower() == "file":
        if parts.netloc not in ("", "localhost"):
            raise FetchError(f"refused: {url[:200]} is on another machine")
        path = Path(url2pathname(parts.path))
    elif source.public_url and canonical_url(url).startswith(canonical_url(source.public_url)):
        rest = canonical_url(url)[len(canonical_url(source.public_url)) :]
        path = folder / unquote(urlsplit(rest).path)
    else:
        return None
    resolved = path.resolve()
    if not resolved.is_relative_to(folder):
        raise FetchError(f"refused: {url[:200]} is outside the feed's folder")
    return resolved
