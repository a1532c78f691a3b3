"""Compose an issue: group articles into stories, rank them, pick the lead and the roundup.

Everything here is pure: articles and a clock in, an `Issue` (or words) out. Grouping
same-event articles lives in `digest.compose.grouping`, the issue as JSON in
`digest.compose.document`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from digest.models import Article, Issue, Story
from digest.text import i18n
from digest.text.language import language_name, to_code

log = logging.getLogger(__name__)

# How stories are ranked: the lead is the first, the roundup follows in this order.
# Each signal only matters when every signal above it is equal.
#
#   signal            rule                                         why
#   ----------------  -------------------------------------------  ---------------------------
#   pinned URL        wins outright                                the editor said so
#   language          in the issue's language before any other     a reader cannot read it
#   source priority   higher [[sources]].priority first            the operator's trust
#   outlets           more distinct sources covering the story     what the day's news is
#   substance, image  +3 for an http(s) image, +1 per 100 words    a story needs something
#                     of text (at most +6)                         to summarize and show
#   recency           newer first (published, else first seen)     only to break ties
#
# Then the title A→Z and the URL, so the same stories always give the same issue.
# The roundup takes stories in that order, at most [compose].max_per_source per source
# (the lead counts) and [compose].max_roundup in all; the rest are "more stories".
IMAGE_POINTS = 3
WORDS_PER_POINT = 100
MAX_SUBSTANCE_POINTS = 6

_OLDEST = datetime.min.replace(tzinfo=UTC)


def story_time(story: Story) -> datetime | None:
    """Return when a story appeared: its published date, else when we first saw it."""
    art = story.article
    return art.published or art.first_seen


def article_language(article: Article, default: str) -> str:
    """Return the ISO 639-1 code of the language an article is written in, else `default`."""
    try:
        return to_code(article.language or default) or default
    except ValueError:
        return default


def _is_http(url: str | None) -> bool:
    if not url:
        return False
    parts = urlsplit(url.strip())
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def _url_key(url: str) -> str:
    """Normalize a URL just enough that a hand-typed pin matches the stored link."""
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


@dataclass(frozen=True)
class Rules:
    """What ranking needs to know from the configuration."""

    language: str = "en"  # the issue's language ([site].language, ISO 639-1)
    priorities: Mapping[str, int] = field(default_factory=dict)
    pin: str = ""
    max_roundup: int = 20
    max_per_source: int = 3
    sections: Mapping[str, str] = field(default_factory=dict)  # source name -> section
    section_order: tuple[str, ...] = ()


@dataclass(frozen=True)
class Value:
    """A story's (or article's) news value, part by part, as the table above ranks it."""

    pinned: bool
    in_language: bool
    priority: int
    outlets: int
    image: bool
    words: int
    when: datetime | None

    @property
    def quality(self) -> int:
        """Return the substance and image points."""
        substance = min(self.words // WORDS_PER_POINT, MAX_SUBSTANCE_POINTS)
        return substance + (IMAGE_POINTS if self.image else 0)

    def key(self) -> tuple[bool, bool, int, int, int, float]:
        """Return a sort key: smaller is better."""
        when = self.when or _OLDEST
        return (
            not self.pinned,
            not self.in_language,
            -self.priority,
            -self.outlets,
            -self.quality,
            -when.timestamp(),
        )


def _pinned(article: Article, pin: str) -> bool:
    return bool(pin and article.url and _url_key(article.url) == _url_key(pin))


def article_value(article: Article, rules: Rules, *, outlets: int = 1) -> Value:
    """Return an article's value by the table above."""
    return Value(
        pinned=_pinned(article, rules.pin),
        in_language=article_language(article, rules.language) == rules.language,
        priority=rules.priorities.get(article.source, 0),
        outlets=outlets,
        image=_is_http(article.image),
        words=len(article.text.split()),
        when=article.published or article.first_seen,
    )


def story_value(story: Story, rules: Rules) -> Value:
    """Return a story's value: its shown article's, with the story's count of outlets."""
    value = article_value(story.article, rules, outlets=story.outlets)
    if not value.pinned and any(_pinned(a, rules.pin) for a in story.also):
        value = replace(value, pinned=True)
    return value


def _rank_key(story: Story, rules: Rules) -> tuple[object, ...]:
    return (*story_value(story, rules).key(), story.article.title, story.article.url)


def rank(stories: Sequence[Story], rules: Rules) -> list[Story]:
    """Return the stories best first, by the table above."""
    return sorted(stories, key=lambda s: _rank_key(s, rules))


def make_stories(
    articles: Sequence[Article], rules: Rules, *, grouped: Sequence[Sequence[Article]] | None = None
) -> list[Story]:
    """Group the day's articles by event; each story shows its best article, the rest as "also".

    `grouped` skips the grouping (tests and callers that grouped already).
    """
    from digest.compose.grouping import group_articles

    groups = (
        grouped
        if grouped is not None
        else group_articles(articles, language=language_name(rules.language))
    )
    stories = []
    for group in groups:
        best = sorted(group, key=lambda a: (*article_value(a, rules).key(), a.title, a.url))
        stories.append(
            Story(
                article=best[0],
                sentences=(),
                also=tuple(best[1:]),
                section=rules.sections.get(best[0].source, ""),
            )
        )
    return stories


def choose_lead(stories: Sequence[Story], rules: Rules) -> Story:
    """Return the lead story: the pinned URL if present, else the best-ranked story."""
    if not stories:
        raise ValueError("choose_lead needs at least one story")
    if rules.pin and not any(story_value(s, rules).pinned for s in stories):
        log.info(
            "pinned URL %s is not among today's %d stories; ranking instead",
            rules.pin,
            len(stories),
        )
    lead = rank(stories, rules)[0]
    if not story_value(lead, rules).in_language:
        log.warning("no story in %s today; the lead is in another language", rules.language)
    return lead


def _by_section(roundup: list[Story], order: Sequence[str]) -> list[Story]:
    """Order the roundup by section ([compose].sections first), keeping rank within each."""
    if not any(s.section for s in roundup):
        return roundup
    seen = list(order)
    for s in roundup:
        if s.section and s.section not in seen:
            seen.append(s.section)
    seen.append("")  # stories of sources without a section come last
    return sorted(roundup, key=lambda s: seen.index(s.section))


def compose_issue(
    stories: Sequence[Story],
    *,
    site_name: str,
    site_url: str,
    now: datetime,
    tz: ZoneInfo,
    rules: Rules,
) -> Issue | None:
    """Return the day's issue (lead, ranked roundup, the rest as "more"); None without stories."""
    if not stories:
        return None
    ranked = rank(stories, rules)
    lead = choose_lead(ranked, rules)
    shown: Counter[str] = Counter({lead.article.source: 1})
    roundup: list[Story] = []
    more: list[Story] = []
    # Identity, not equality: two stories may compare equal yet both belong in the issue.
    for story in (s for s in ranked if s is not lead):
        source = story.article.source
        if len(roundup) < max(rules.max_roundup, 0) and shown[source] < rules.max_per_source:
            roundup.append(story)
            shown[source] += 1
        else:
            more.append(story)
    if more:
        log.info("roundup: %d stories shown, %d more in the archive", len(roundup), len(more))
    return Issue(
        site_name=site_name,
        site_url=site_url,
        date=now.astimezone(tz).date().isoformat(),
        created_at=now,
        lead=lead,
        roundup=tuple(_by_section(roundup, rules.section_order)),
        more=tuple(more),
    )


def relative_time(when: datetime, now: datetime, language: str = "en") -> str:
    """Return how long ago `when` was, in words of `language` ("4 hours ago", "vor 4 Stunden").

    Calendar words use `now`'s time zone. The words come from Babel (CLDR) and the
    catalogs of `digest.text.i18n`.
    """
    if when.tzinfo is None or now.tzinfo is None:
        raise ValueError("relative_time needs timezone-aware datetimes")
    # Subtract in UTC: two datetimes sharing one ZoneInfo subtract as wall-clock times,
    # which is an hour off across a DST change.
    elapsed = now.astimezone(UTC) - when.astimezone(UTC)
    if elapsed < timedelta(minutes=1):
        return i18n.translate(language, "just now")  # also a feed clock slightly in the future
    if elapsed < timedelta(hours=1):
        return i18n.ago(int(elapsed // timedelta(minutes=1)), "minutes", language)
    if elapsed < timedelta(hours=24):
        return i18n.ago(int(elapsed // timedelta(hours=1)), "hours", language)
    local_when = when.astimezone(now.tzinfo)
    days = (now.date() - local_when.date()).days
    if days <= 1:
        return i18n.translate(language, "yesterday")
    if days < 7:
        return i18n.ago(days, "days", language)
    return i18n.short_date(local_when.date(), language, with_year=local_when.year != now.year)
