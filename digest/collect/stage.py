"""One collection run: every source's feed, its new items' pages, extracted and stored.

Feeds and pages are fetched by `digest.collect.gather` (each feed's pages as soon as it
is in), pages extracted in `digest.collect.pool`'s workers (which, when an issue
follows, also make each article's grouping terms and summaries:
`digest.compose.prepare`), and the day's new articles stored in one transaction. Which
items are new (older than the cutoff, already stored, or another source's) is decided
here, in the config's order of sources. `digest.pipeline.collect_articles` is the
entry point.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from urllib.parse import urlsplit

import httpx

from digest.collect.feeds import canonical_url, title_key
from digest.collect.fetch import FetchResult
from digest.collect.gather import LOCAL_SOURCE, FeedResult, Gathering, Progress, cancel_all
from digest.collect.merge import merge_article, repeated_feed_text
from digest.collect.netguard import is_public_address
from digest.collect.pool import ExtractPool
from digest.compose import prepare
from digest.config import Config, SourceConfig
from digest.models import REPORTED, Article, Entry, Page, SourceReport
from digest.store import SourceResult, Store
from digest.text.language import language_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CollectReport:
    """What one collection run did, per source."""

    sources: tuple[SourceReport, ...]
    cutoff: datetime

    @property
    def new_articles(self) -> int:
        """Return how many new articles were stored."""
        return sum(s.new_articles for s in self.sources)

    @property
    def failures(self) -> tuple[SourceReport, ...]:
        """Return the sources that failed."""
        return tuple(s for s in self.sources if not s.ok)


async def collect(
    config: Config,
    store: Store,
    *,
    now: datetime,
    cutoff: datetime,
    progress: Progress | None = None,
    client: httpx.AsyncClient | None = None,
    extract_workers: int | None = None,
    ahead: bool = False,
) -> CollectReport:
    """Fetch every source, extract and store its items newer than `cutoff` not yet stored;
    one bad source never sinks the run.

    Pages are extracted in `extract_workers` processes (default: one per core). With
    `ahead`, for a caller that composes an issue next, the workers also make each
    article's grouping terms and summaries (`digest.compose.prepare`).
    """
    started = time.monotonic()
    states = {n: (s.etag, s.last_modified) for n, s in store.source_states().items()}
    # Extraction workers start now, so they are warm when the first page arrives.
    compose = config.site.language if ahead else None
    async with ExtractPool(extract_workers, compose=compose) as pool:
        return await _collect_with(
            config,
            store,
            pool,
            now=now,
            started=started,
            cutoff=cutoff,
            states=states,
            progress=progress,
            client=client,
            ahead=ahead,
        )


async def _collect_with(
    config: Config,
    store: Store,
    pool: ExtractPool,
    *,
    now: datetime,
    started: float,
    cutoff: datetime,
    states: dict[str, tuple[str | None, str | None]],
    progress: Progress | None,
    client: httpx.AsyncClient | None,
    ahead: bool = False,
) -> CollectReport:
    seen = store.seen_keys()
    by_name = {s.name: s for s in config.sources}
    limit = config.collect.max_items_per_source
    extracted: dict[str, Page | str] = {}
    plans: dict[str, prepare.Plan] = {}
    made: list[prepare.Prepared] = []
    later: list[tuple[Page, prepare.Plan]] = []  # languages the workers had no model for
    repeated: dict[str, frozenset[str]] = {}  # per source: feed text in most of its items

    async def extract_now(url: str, fetched: FetchResult) -> None:
        # In a worker process, as each page arrives: extraction overlaps the other pages'
        # network waits and uses every core. A crashed worker yields CRASHED for this page.
        plan = plans.get(url)
        then = functools.partial(prepare.prepare, plan=plan) if plan is not None else None
        extracted[url], ready = await pool.extract_then(fetched.body, fetched.final_url, then)
        if ready is not None:
            made.append(ready)
            page = extracted[url]
            if plan is not None and isinstance(page, Page) and not ready.docs:
                later.append((page, plan))

    def start_pages(res: FeedResult) -> None:
        # As each feed arrives, its new items' pages start (the keys of other sources
        # are not known yet: the few items another source turns out to have first are
        # settled, and their pages dropped, once every feed is in).
        name = res.source.name
        if res.error:
            return
        # All of the feed's items, not only the new ones: a day may bring just one.
        repeated[name] = repeated_feed_text(res.entries)
        if not by_name[name].fetch_pages:
            return
        entries = _keep_entries(
            res.entries, cutoff=cutoff, seen=seen, taken=(set(), set(), set()), limit=limit
        )
        if ahead:
            early = _plans(config, {name: entries}, repeated)
            for url, plan in early.items():
                plans.setdefault(url, plan)
        for e in entries:
            if e.url:
                gathering.start_page(name, e.url)

    gathering = Gathering(
        config.collect,
        client=client,
        trusted_hosts_by_source={s.name: _source_trust(s) for s in config.sources},
        sources=by_name,
        progress=progress,
        on_page=extract_now,
    )
    async with gathering:
        results = await gathering.feeds(config.sources, states, on_feed=start_pages)
        kept: dict[str, list[Entry]] = {}
        reports: dict[str, SourceReport] = {}
        states_now = store.record_source_results(
            [
                SourceResult(r.source.name, r.source.url, r.error, r.etag, r.last_modified)
                for r in results
            ],
            now=now,
        )
        taken: Keys = (set(), set(), set())
        for res in results:
            name = res.source.name
            if res.error:
                reports[name] = _failed(res, states_now[name].consecutive_failures, config)
                continue
            kept[name] = _keep_entries(
                res.entries, cutoff=cutoff, seen=seen, taken=taken, limit=limit
            )
            if name not in repeated:  # its `start_pages` failed: it logged why
                repeated[name] = repeated_feed_text(res.entries)
            reports[name] = SourceReport(source=name, url=res.source.url, entries=len(res.entries))

        wanted = [
            (name, e.url)
            for name, entries in kept.items()
            if by_name[name].fetch_pages
            for e in entries
            if e.url
        ]
        if ahead:  # each page's final owner (the same source but for a few duplicates)
            plans.update(_plans(config, kept, repeated))
        remaining = config.collect.deadline - (time.monotonic() - started)
        pages = await gathering.pages(wanted, deadline=max(remaining, 1.0))
    later = [(page, plan) for page, plan in later if plan.entry.url in pages]
    if later:
        remaining = config.collect.deadline - (time.monotonic() - started)
        made += await _prepare_rest(pool, later, deadline=max(remaining, 1.0))
    prepare.remember(made)

    to_add: list[tuple[Article, str]] = []
    warned: dict[str, dict[str, list[str]]] = {}  # source -> reason -> pages
    for name, entries in kept.items():
        src = by_name[name]
        skipped = warned.setdefault(name, {})  # reason -> pages, in order of first sight
        for e in entries:
            fetched = pages.get(e.url)
            page = extracted.get(e.url)
            if isinstance(fetched, str):
                skipped.setdefault(fetched, []).append(e.url)
            if isinstance(page, str):
                skipped.setdefault(page, []).append(e.url)
                page = None
            art = merge_article(
                e,
                page,
                language=src.language or None,
                fallback_language=config.summary.language or None,
                repeated=repeated.get(name, frozenset()),
                source_name=name,
            )
            art = replace(art, first_seen=now)
            to_add.append((art, title_key(art.title)))
    # One transaction for the whole run, not one per source.
    added = Counter(a.source for a in store.add_articles(to_add))
    for name, skipped in warned.items():
        warnings = _skipped_lines(skipped)
        for w in warnings:
            log.info("source %s: page skipped: %s", name, w)
        reports[name] = replace(
            reports[name],
            new_articles=added[name],
            warnings=warnings,
            pages_skipped=sum(len(urls) for urls in skipped.values()),
        )
    ordered = tuple(reports[s.name] for s in config.sources if s.name in reports)
    return CollectReport(sources=ordered, cutoff=cutoff)


def _failed(res: FeedResult, streak: int, config: Config) -> SourceReport:
    """Log a failed source once and return its report."""
    flagged = streak >= config.collect.flag_after_failures
    # The one log line per failure; callers print the report, never log it again.
    log.warning(
        "source %s: %s%s",
        res.source.name,
        res.error,
        f" (failed {streak} runs in a row; fix or remove the source)" if flagged else "",
        extra={REPORTED: True},  # a CLI printing the report drops it from stderr
    )
    return SourceReport(
        source=res.source.name,
        url=res.source.url,
        error=res.error,
        failures_in_a_row=streak,
        flagged=flagged,
    )


async def _prepare_rest(
    pool: ExtractPool, later: list[tuple[Page, prepare.Plan]], *, deadline: float
) -> list[prepare.Prepared]:
    """Prepare the articles the workers left for lack of a language model.

    In fresh workers, once extraction is over: the old ones' memory (a day of parsed
    pages) is gone before the models load, so the run's peak does not grow, and the
    main process still never imports the summarizer. Unfinished by `deadline`: the
    issue computes those itself.
    """
    await pool.renew()
    jobs = [asyncio.ensure_future(pool.call(prepare.prepare, p, plan, True)) for p, plan in later]
    done, pending = await asyncio.wait(jobs, timeout=deadline)
    await cancel_all(pending)
    return [r for job in done if not job.cancelled() and (r := job.result()) is not None]


def _plans(
    config: Config, kept: dict[str, list[Entry]], repeated: dict[str, frozenset[str]]
) -> dict[str, prepare.Plan]:
    """Return, by page URL, what a worker needs to prepare that page's article."""
    by_name = {s.name: s for s in config.sources}
    sizes = prepare.sizes(config.summary)
    fallback = language_name(config.site.language)  # as `compose_articles` groups
    return {
        e.url: prepare.Plan(
            entry=e,
            source_name=name,
            source_language=by_name[name].language or None,
            repeated=repeated.get(name, frozenset()),
            fallback_language=fallback,
            summary=config.summary,
            sizes=sizes,
        )
        for name, entries in kept.items()
        for e in entries
        if e.url
    }


def _skipped_lines(skipped: dict[str, list[str]]) -> tuple[str, ...]:
    """Say each reason once: eight pages refused for one loopback host are one line."""
    lines = []
    for reason, urls in skipped.items():
        if len(urls) == 1:
            lines.append(f"{urls[0]}: {reason}")
        else:
            lines.append(f"{len(urls)} pages ({urls[0]}, …): {reason}")
    return tuple(lines)


Keys = tuple[set[str], set[str], set[str]]  # guids, canonical URLs, title keys


def _keep_entries(
    entries: Sequence[Entry],
    *,
    cutoff: datetime,
    seen: Keys,
    taken: Keys,
    limit: int,
) -> list[Entry]:
    """Drop old and already-seen items; dedup by guid, canonical URL and title.

    `seen` (the store's keys) is only read; the keys of the items kept are added to
    `taken`, which earlier sources of this run filled.
    """
    kept: list[Entry] = []
    for e in entries:
        if e.published is not None and e.published < cutoff:
            continue  # undated items count as new the first time they are seen
        url = canonical_url(e.url) if e.url else ""
        # Near-identical titles are the same article only when they link somewhere:
        # link-less items (status feeds) often share a title and differ in their text.
        key = title_key(e.title) if url else ""
        if any(
            e.guid in keys[0] or (url and url in keys[1]) or (key and key in keys[2])
            for keys in (seen, taken)
        ):
            continue
        taken[0].add(e.guid)
        if url:
            taken[1].add(url)
        if key:
            taken[2].add(key)
        kept.append(replace(e, url=url or e.url))
        if len(kept) >= limit:
            break
    return kept


def _source_trust(src: SourceConfig) -> frozenset[str]:
    """Trust a source's own host when the source itself is local or on a private network."""
    if src.is_local:
        return frozenset({LOCAL_SOURCE})
    host = urlsplit(src.url).hostname or ""
    try:
        local = not is_public_address(host)
    except ValueError:  # a name, not an address literal
        local = host == "localhost" or host.endswith((".local", ".localhost", ".internal"))
    return frozenset({host}) if local else frozenset()
