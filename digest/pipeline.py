"""Wire the stages together: collect → extract → summarize → compose → render → store.

This is the library API behind the CLI: `collect_articles`, `build_issue`, `render` and
`ensure_issue` take a `Config`, a `Store` and the current time, so a user (or a
test with a fixed clock) can drive a whole run from Python.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import httpx

from digest.collect import Progress
from digest.collect.stage import CollectReport as CollectReport
from digest.collect.stage import collect
from digest.compose import Rules, compose_issue, make_stories
from digest.compose.document import issue_document
from digest.config import Config
from digest.errors import EmptyIssueError
from digest.mail.tokens import archive_url, preferences_url, unsubscribe_url
from digest.models import (
    Article,
    Issue,
    RenderedIssue,
    Story,
)
from digest.store import Store, StoredIssue

log = logging.getLogger(__name__)


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

    Today's articles are those newer than `cutoff_for`; the run is
    `digest.collect.stage.collect` (pages extracted in `extract_workers` processes,
    default one per core; with `ahead` the workers also prepare the issue's work).
    """
    return await collect(
        config,
        store,
        now=now,
        cutoff=cutoff_for(config, store, now),
        progress=progress,
        client=client,
        extract_workers=extract_workers,
        ahead=ahead,
    )


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
