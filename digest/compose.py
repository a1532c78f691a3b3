"""Compose an issue: pick the lead story, order the roundup, word the times.

Everything here is pure: stories and a clock in, an `Issue` (or words) out.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from digest import i18n
from digest.models import Issue, Story

log = logging.getLogger(__name__)

# How the lead story is chosen (highest total wins):
#
#   signal            points                                   why
#   ----------------  ---------------------------------------  ---------------------------------
#   pinned URL        wins outright                            the editor said so
#   source priority   5 × [[sources]].priority                 the operator's trust in a source
#   image             +3 when the article has an http(s) image a lead without a picture looks bare
#   substance         +1 per 100 words of text, at most +6     a lead needs something to summarize
#   recency           +4 when brand new, falling linearly to   today's news, but a long read from
#                     0 at 24 hours old                        this morning beats a stub from now
#
# Ties go to the newest story (published, else first seen), then to the title A→Z,
# then the URL, so the same stories always give the same lead.
PRIORITY_WEIGHT = 5.0
IMAGE_POINTS = 3.0
WORDS_PER_POINT = 100
MAX_SUBSTANCE_WORDS = 600
RECENCY_POINTS = 4.0
RECENCY_WINDOW = timedelta(hours=24)

_OLDEST = datetime.min.replace(tzinfo=UTC)


def story_time(story: Story) -> datetime | None:
    """Return when a story appeared: its published date, else when we first saw it."""
    art = story.article
    return art.published or art.first_seen


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


def lead_score(story: Story, *, priorities: Mapping[str, int], now: datetime) -> float:
    """Return a story's lead score by the table above (higher is better)."""
    art = story.article
    score = PRIORITY_WEIGHT * priorities.get(art.source, 0)
    if _is_http(art.image):
        score += IMAGE_POINTS
    words = min(len(art.text.split()), MAX_SUBSTANCE_WORDS)
    score += words / WORDS_PER_POINT
    when = story_time(story)
    if when is not None:
        age = max(now.astimezone(UTC) - when.astimezone(UTC), timedelta(0))
        score += RECENCY_POINTS * max(0.0, 1 - age / RECENCY_WINDOW)
    return score


def _newest_first_key(story: Story) -> tuple[float, str, str]:
    # Undated stories sort last (datetime.min); then A→Z by title, then URL.
    when = story_time(story) or _OLDEST
    return (-when.timestamp(), story.article.title, story.article.url)


def choose_lead(
    stories: Sequence[Story], *, priorities: Mapping[str, int], pin: str = "", now: datetime
) -> Story:
    """Return the lead story: the pinned URL if present, else the best `lead_score`."""
    if not stories:
        raise ValueError("choose_lead needs at least one story")
    if pin:
        key = _url_key(pin)
        for story in stories:
            if story.article.url and _url_key(story.article.url) == key:
                return story
        log.info(
            "pinned URL %s is not among today's %d stories; scoring instead", pin, len(stories)
        )
    return min(
        stories,
        key=lambda s: (-lead_score(s, priorities=priorities, now=now), *_newest_first_key(s)),
    )


def compose_issue(
    stories: Sequence[Story],
    *,
    site_name: str,
    site_url: str,
    now: datetime,
    tz: ZoneInfo,
    priorities: Mapping[str, int],
    pin: str = "",
    max_roundup: int = 20,
) -> Issue | None:
    """Return the day's issue (lead + newest-first roundup), or None when there are no stories."""
    if not stories:
        return None
    lead = choose_lead(stories, priorities=priorities, pin=pin, now=now)
    # Identity, not equality: two stories may compare equal yet both belong in the roundup.
    rest = [s for s in stories if s is not lead]
    rest.sort(key=_newest_first_key)
    roundup = tuple(rest[: max(max_roundup, 0)])
    if len(rest) > len(roundup):
        log.info("roundup capped at %d of %d stories", len(roundup), len(rest))
    return Issue(
        site_name=site_name,
        site_url=site_url,
        date=now.astimezone(tz).date().isoformat(),
        created_at=now,
        lead=lead,
        roundup=roundup,
    )


def relative_time(when: datetime, now: datetime, language: str = "en") -> str:
    """Return how long ago `when` was, in words of `language` ("4 hours ago", "vor 4 Stunden").

    Calendar words use `now`'s time zone. The words come from Babel (CLDR) and the
    catalogs of `digest.i18n`.
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
