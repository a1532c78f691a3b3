"""Plain values passed between pipeline stages.

Every datetime here is timezone-aware; a naive one is a bug.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

# pending: signed up on the web, not confirmed yet (never mailed an issue).
# complained: reported our mail as spam (an ARF report); never mailed again.
SUBSCRIBER_STATUSES = ("active", "pending", "unsubscribed", "bounced", "complained")


@dataclass(frozen=True)
class Entry:
    """One item of a feed, as the feed described it (text already de-marked-up)."""

    source: str
    guid: str
    url: str
    title: str
    summary: str = ""
    content_html: str = ""  # the feed's full content, still HTML; only for extraction fallback
    published: datetime | None = None
    author: str | None = None
    image: str | None = None
    language: str | None = None  # ISO 639-1, as the feed declared it (item or channel)
    feed_title: str = ""  # the feed's own title, to strip from item titles


@dataclass(frozen=True)
class Page:
    """What the extractor found on an article page."""

    url: str
    title: str | None = None
    author: str | None = None
    date: datetime | None = None
    image: str | None = None
    text: str = ""
    language: str | None = None  # ISO 639-1: the declared one unless the text says otherwise
    declared_language: str | None = None  # what <html lang> / og:locale said
    image_width: int | None = None  # the size the page declares (og:image:width/height)
    image_height: int | None = None
    site_name: str | None = None  # og:site_name, to strip from titles
    # `digest.text.language.detect()` of the extracted text (before its clean-up), worked out
    # in the extraction worker: the main process neither loads the model nor classifies.
    detected: tuple[str | None, float] | None = None


@dataclass(frozen=True)
class Article:
    """An entry merged with its extracted page: what we summarize and store."""

    source: str
    guid: str
    url: str
    title: str
    text: str
    feed_summary: str = ""
    published: datetime | None = None
    first_seen: datetime | None = None
    author: str | None = None
    image: str | None = None
    language: str | None = None  # ISO 639-1 ("de"); None when nothing could tell
    id: int | None = None
    image_width: int | None = None  # declared by the page; None when it said nothing
    image_height: int | None = None


@dataclass(frozen=True)
class Story:
    """One event: the article shown (with its summary) and the same story from other sources."""

    article: Article
    sentences: tuple[str, ...]
    also: tuple[Article, ...] = ()  # other articles on the same event, best first
    section: str = ""  # the roundup section ([[sources]].section of the shown article)

    @property
    def summary(self) -> str:
        """Return the summary as one paragraph."""
        return " ".join(self.sentences)

    @property
    def articles(self) -> tuple[Article, ...]:
        """Return every article of the story, the shown one first."""
        return (self.article, *self.also)

    @property
    def outlets(self) -> int:
        """Return how many distinct sources cover the story."""
        return len({a.source for a in self.articles})


@dataclass(frozen=True)
class Issue:
    """One day's digest: a lead story, a roundup, and the rest of the day's stories."""

    site_name: str
    site_url: str
    date: str  # ISO date in the site's time zone, e.g. "2026-11-25"
    created_at: datetime
    lead: Story
    roundup: tuple[Story, ...] = ()
    more: tuple[Story, ...] = ()  # collected but not in the email: listed in the web archive

    @property
    def stories(self) -> tuple[Story, ...]:
        """Return the lead followed by the roundup (what the email shows)."""
        return (self.lead, *self.roundup)

    @property
    def articles(self) -> tuple[Article, ...]:
        """Return every article the issue accounts for: shown, "also" and "more"."""
        return tuple(a for s in (*self.stories, *self.more) for a in s.articles)


@dataclass(frozen=True)
class RenderedIssue:
    """The finished, email-safe issue: inlined HTML, plain text and subject."""

    date: str
    subject: str
    html: str
    text: str
    preheader: str = ""


# A log record carrying this attribute (`extra={REPORTED: True}`) says something the
# run's report says too: a CLI that prints the report leaves it out of stderr.
REPORTED = "digest_reported"


@dataclass(frozen=True)
class SourceReport:
    """How one source fared during a collection run."""

    source: str
    url: str
    entries: int = 0
    new_articles: int = 0
    error: str | None = None
    # One line per distinct reason a page was skipped ("N pages (…): reason" when shared).
    warnings: tuple[str, ...] = field(default_factory=tuple)
    failures_in_a_row: int = 0  # this run included; 0 when it worked
    flagged: bool = False  # failed [collect].flag_after_failures runs in a row or more
    pages_skipped: int = 0  # pages whose text could not be had (see warnings)

    @property
    def ok(self) -> bool:
        """Return True when the source was fetched and parsed."""
        return self.error is None


@dataclass(frozen=True)
class Subscriber:
    """A reader on the list."""

    email: str
    name: str = ""
    status: str = "active"  # one of SUBSCRIBER_STATUSES
    token: str = ""
    id: int | None = None
    created_at: datetime | None = None
    timezone: str = ""  # IANA name; "" = [site].timezone
    send_at: str = ""  # "HH:MM" local time; "" = the first [schedule].send_at
    sections: tuple[str, ...] = ()  # sections to receive; () = every section


@dataclass(frozen=True)
class Delivery:
    """One (issue, subscriber) row of the delivery ledger."""

    issue_id: int
    subscriber_id: int
    email: str
    status: str  # pending | sending | sent | failed | skipped (unsubscribed before its turn)
    attempts: int = 0
    last_error: str | None = None
    message_id: str | None = None
    updated_at: datetime | None = None


# Stands in for a subscriber's unsubscribe token in a stored issue; delivery swaps in
# the real token per message, the web archive swaps in nothing. Only [A-Z] so no
# escaping (HTML, URL, quoted-printable) can ever alter it.
TOKEN_PLACEHOLDER = "DIGESTXTOKENXPLACEHOLDERXXXXXXXX"
