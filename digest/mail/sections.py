"""Sections per reader: an issue rendered once per distinct choice of sections.

A reader who chose sections gets an issue of only those sections' stories; its lead
is the best story among them (the same scoring as the full issue, at the moment the
issue was composed). Each distinct choice is composed, summarized, rendered and
inlined once per issue, never per reader, and stored (`issue_variants`), so every
sender and a re-run after a crash mail the same bytes; the personal parts (To, Date,
Message-ID, the token) are still substituted into the finished bytes per message.

Cost: the first reader of a new choice pays one summarization of the chosen stories
plus one render and premailer pass (about what composing the issue costs, scaled by
the share of stories chosen); every later reader of that choice pays a dictionary
lookup. With k distinct choices a send does k such renders up front, whatever the
number of readers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from digest.config import Config
from digest.models import RenderedIssue
from digest.store import Store, StoredIssue, StoredVariant

log = logging.getLogger(__name__)


def normalize_choice(config: Config, sections: Iterable[str]) -> tuple[str, ...]:
    """Return a choice in issue order, known sections only; () means the full issue."""
    wanted = set(sections)
    known = config.sections
    chosen = tuple(s for s in known if s in wanted)
    return () if not chosen or len(chosen) == len(known) else chosen


class Variants:
    """The rendered variants of one issue, made on first use and kept in the store."""

    def __init__(self, config: Config, store: Store, issue: StoredIssue) -> None:
        self.config = config
        self.store = store
        self.issue = issue
        self._made: dict[tuple[str, ...], RenderedIssue | None] = {}
        self._lock = threading.Lock()

    def get(self, sections: tuple[str, ...], *, now: datetime) -> RenderedIssue | None:
        """Return the issue for a (normalized, non-empty) choice; None when it has no story."""
        with self._lock:
            if sections not in self._made:
                self._made[sections] = self._make(sections, now=now)
            return self._made[sections]

    def _make(self, sections: tuple[str, ...], *, now: datetime) -> RenderedIssue | None:
        stored = self.store.variant(self.issue.id, sections)
        if stored is None:
            stored = self._render(sections, now=now)
            if stored is None:
                return None
        return RenderedIssue(
            date=self.issue.date,
            subject=stored.subject,
            html=stored.html,
            text=stored.text,
            preheader=stored.preheader,
        )

    def _render(self, sections: tuple[str, ...], *, now: datetime) -> StoredVariant | None:
        from digest import pipeline  # composing and rendering: only when readers chose sections

        config = self.config
        chosen = set(sections)
        articles = [
            a
            for a in self.store.articles_by_ids(self.issue.article_ids)
            if config.section_of(a.source) in chosen
        ]
        if not articles:
            log.info("issue %s has no story in %s", self.issue.date, ", ".join(sections))
            return None
        at = self.issue.created_at  # the full issue's clock: same scores, same "4 hours ago"
        lenient = replace(config, compose=replace(config.compose, min_articles=1, pin=""))
        issue = pipeline.compose_articles(lenient, articles, now=at)
        if issue is None:
            return None
        issue = replace(issue, date=self.issue.date)
        rendered = pipeline.render_email(config, issue, now=at)
        log.info(
            "issue %s rendered for sections %s: %d stor(ies)",
            self.issue.date,
            ", ".join(sections),
            len(issue.stories),
        )
        return self.store.save_variant(
            self.issue.id,
            sections,
            now=now,
            subject=rendered.subject,
            html=rendered.html,
            text=rendered.text,
            preheader=rendered.preheader,
            article_ids=[s.article.id for s in issue.stories if s.article.id is not None],
        )
