"""Wire the stages together: collect → extract → summarize → compose → render → store.

This is the library API behind the CLI: `collect_articles`, `build_issue`, `render` and
`ensure_issue` take a `Config`, a `Store` and the current time, so a user (or a
test with a fixed clock) can drive a whole run from Python.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from digest.collect import Progress
from digest.collect.feeds import canonical_url, title_key
from digest.collect.fetch import FetchResult
from digest.collect.gather import FeedResult, Gathering
from digest.collect.merge import merge_article, repeated_feed_text
from digest.collect.netguard import is_public_address
from digest.collect.pool import ExtractPool
from digest.compose import Rules, compose_issue, make_stories, prepare
from digest.compose.document import issue_document
from digest.config import Config, SourceConfig
from digest.errors import EmptyIssueError
from digest.mail.tokens import archive_url, preferences_url, unsubscribe_url
from digest.models import (
    REPORTED,
    Article,
    Entry,
    Issue,
    Page,
    RenderedIssue,
    SourceReport,
    Story,
)
from digest.store import SourceResult, Store, StoredIssue
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


def cutoff_for(config: Config, store: Store, now: datetime) -> datetime:
    """Return the start of 'today's articles': the last earlier issue, or the look-back window.

    Today's own issue counts only once deliveries started: until then it can be redone.
    """
    date = today(config, now)
    last = store.last_issue()
    if last is not None and last.date >= date and not is_frozen(store, last):
        last = store.last_issue(before=date)
    if last is not None:
        return last.created_at
    return now - timedelta(hours=config.collect.lookback_hours)


def is_frozen(store: Store, issue: StoredIssue) -> bool:
    """Return True once deliveries of an issue started: from then on it never changes."""
    return bool(store.ledger.delivery_counts(issue.id))


def _source_trust(src: SourceConfig) -> frozenset[str]:
    """Trust a source's own host when the source itself is local or on a private network."""
    if src.is_local:
        return frozenset({"__local__"})
    host = urlsplit(src.url).hostname or ""
    try:
        local = not is_public_address(host)
    except ValueError:  # a name, not an address literal
        local = host == "localhost" or host.endswith((".local", ".localhost", ".internal"))
    return frozenset({host}) if local else frozenset()


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


async def collect_articles_async(
    config: Config,
    store: Store,
    *,
    now: datetime,
    progress: Progress | None = None,
    client: httpx.AsyncClient | None = None,
    extract_workers: int | None = None,
    ahead: bool = False,
) -> CollectReport:
    """Fetch every source, extract and store new articles; one bad source never sinks the run.

    Pages are extracted in `extract_workers` processes (default: one per core). With
    `ahead`, for a caller that composes an issue next, the workers also make each
    article's grouping terms and summaries (`digest.compose.prepare`).
    """
    started = time.monotonic()
    cutoff = cutoff_for(config, store, now)
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
        if res.error or not by_name[name].fetch_pages:
            return
        entries = _keep_entries(
            res.entries, cutoff=cutoff, seen=seen, taken=(set(), set(), set()), limit=limit
        )
        if ahead:
            early = _plans(config, {name: entries}, {name: repeated_feed_text(res.entries)})
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
        repeated: dict[str, frozenset[str]] = {}  # per source: feed text in most of its items
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
            # All of the feed's items, not only the new ones: a day may bring just one.
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
    for job in pending:
        job.cancel()
    if pending:
        await asyncio.wait(pending)
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


def collect_articles(
    config: Config,
    store: Store,
    *,
    now: datetime,
    progress: Progress | None = None,
    ahead: bool = False,
) -> CollectReport:
    """Run `collect_articles_async` to completion."""
    return asyncio.run(
        collect_articles_async(config, store, now=now, progress=progress, ahead=ahead)
    )


def _summarize(config: Config, article: Article, sentences: int) -> tuple[str, ...]:
    from digest.compose.prepare import summarize_article

    return summarize_article(config.summary, article, sentences)


def rules(config: Config) -> Rules:
    """Return the ranking rules the configuration asks for."""
    return Rules(
        language=config.site.language,
        priorities={s.name: s.priority for s in config.sources},
        pin=config.compose.pin,
        max_roundup=config.compose.max_roundup,
        max_per_source=config.compose.max_per_source,
        sections={s.name: s.section for s in config.sources if s.section},
        section_order=config.compose.sections,
    )


def compose_articles(config: Config, articles: Sequence[Article], *, now: datetime) -> Issue | None:
    """Group, rank and summarize articles into the issue; None when there is nothing to send."""
    if len(articles) < max(config.compose.min_articles, 1):
        return None
    how = rules(config)
    # [compose].languages: other-language articles stay out of the lead and the roundup;
    # they are listed with the day's other stories ("More stories today").
    site = config.site.language
    kept = [a for a in articles if config.compose.allows(a.language, site)]
    others = [a for a in articles if not config.compose.allows(a.language, site)]
    if others:
        log.info(
            "%d article(s) not in %s kept out of the lead and roundup ([compose].languages)",
            len(others),
            ", ".join(config.compose.languages or (site,)),
        )
    issue = compose_issue(
        make_stories(kept, how),
        site_name=config.site.name,
        site_url=config.site.url,
        now=now,
        tz=config.site.tz,
        rules=how,
    )
    if issue is None:
        return None
    if others:
        issue = replace(issue, more=(*issue.more, *make_stories(others, how)))
    lead = _summarized(config, issue.lead, config.summary.lead_sentences)
    roundup = tuple(_summarized(config, s, config.summary.roundup_sentences) for s in issue.roundup)
    # The archive lists these with one line each.
    more = tuple(_summarized(config, s, 1) for s in issue.more)
    return replace(issue, lead=lead, roundup=roundup, more=more)


def _summarized(config: Config, story: Story, sentences: int) -> Story:
    """Return `story` with its summary; with none, it shows its title alone.

    The feed's own description was tried under the summarizer's rules already; the
    renderer's fallback to it would print what those rules turned down (a teaser, a
    sign-off, a sentence that points back), so it is cleared on the story's copy.
    """
    chosen = _summarize(config, story.article, sentences)
    if chosen:
        return replace(story, sentences=chosen)
    return replace(story, sentences=(), article=replace(story.article, feed_summary=""))


def render_email(config: Config, issue: Issue, *, now: datetime) -> RenderedIssue:
    """Render and inline an issue once, with the token placeholder for delivery."""
    from digest.render import make_environment, render_issue

    env = make_environment(config.render.templates or None, config.site.language)
    return render_issue(
        issue,
        language=config.site.language,
        env=env,
        now=now,
        tz=config.site.tz,
        subject_template=config.render.subject,
        max_subject=config.render.max_subject,
        unsubscribe_url=unsubscribe_url(config.site.url),
        view_url=archive_url(config.site.url, issue.date),
        preferences_url=preferences_url(config.site.url),
        postal_address=config.site.postal_address,
    )


def today(config: Config, now: datetime) -> str:
    """Return today's ISO date in the site's time zone."""
    return now.astimezone(config.site.tz).date().isoformat()


def build_issue(config: Config, store: Store, *, now: datetime) -> Issue | None:
    """Compose today's issue afresh from the stored articles no earlier issue took.

    The articles of today's stored issue count as free while it has no deliveries,
    so a preview or a test send shows what a redone issue would be.
    """
    stored = store.issue_for_date(today(config, now))
    redo = stored.id if stored is not None and not is_frozen(store, stored) else None
    articles = store.unissued_articles(cutoff_for(config, store, now), redo=redo)
    return compose_articles(config, articles, now=now)


def document(config: Config, issue: Issue, rendered: RenderedIssue) -> dict[str, Any]:
    """Return the issue as the JSON document of `digest preview --json` and the archive."""
    return issue_document(issue, subject=rendered.subject, language=config.site.language)


def ensure_issue(
    config: Config, store: Store, *, now: datetime, progress: Progress | None = None
) -> StoredIssue:
    """Return today's frozen issue, collecting, composing and storing it if needed.

    A day with fewer than `[compose].min_articles` new articles raises EmptyIssueError,
    unless `[schedule].quiet_day = "send"`: then it gets a short issue. `digest send`
    and `digest run` both come here, so both follow the same rule.
    """
    date = today(config, now)
    existing = store.issue_for_date(date)
    if existing is not None:
        return existing
    if config.schedule.quiet_day == "send" and config.compose.min_articles > 1:
        config = replace(config, compose=replace(config.compose, min_articles=1))
    report = collect_articles(config, store, now=now, progress=progress)
    issue = build_issue(config, store, now=now)
    if issue is None:
        raise EmptyIssueError(
            f"no new articles since {report.cutoff.astimezone(config.site.tz):%Y-%m-%d %H:%M}"
            f" from {len(config.sources)} source(s); nothing to send today"
        )
    rendered = render_email(config, issue, now=now)
    # Every article composed into the issue is claimed, shown or not: none comes back tomorrow.
    return store.create_issue(
        date=date,
        created_at=now,
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        preheader=rendered.preheader,
        article_ids=[a.id for a in issue.articles if a.id is not None],
        doc=json.dumps(document(config, issue, rendered), ensure_ascii=False),
    )
