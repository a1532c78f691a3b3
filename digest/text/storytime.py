"""Story times that stay true: written as placeholders at render time, worded at send time.

An issue is rendered once and may be sent hours later (a late schedule, a resend, a
`--date` delivery), so "31 minutes ago" written at render time would be wrong by the
time anyone reads it. `render` writes `time_placeholder(published)` instead; whoever
knows when the reader gets the issue words it with `fill_times`:

    delivery   relative to the moment the message is sent ("2 hours ago"), per batch
    preview    relative to now
    archive    an absolute local time ("07:42", "Nov 24, 21:10"): the gap is unknown

A placeholder is 32 characters of [A-Z0-9] (like `TOKEN_PLACEHOLDER`), so no HTML,
URL or quoted-printable encoding alters it and no wording is longer than the slot.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, tzinfo
from html import escape

from digest.compose import relative_time
from digest.text import i18n

TIME_PLACEHOLDER = re.compile(r"DIGESTXTIMEX(\d{12})XXXXXXXX")
PLACEHOLDER_LEN = 32
# A feed clock a little ahead of ours is still "just now"; further ahead, say the time.
_FUTURE_SLACK = timedelta(minutes=1)


def time_placeholder(when: datetime) -> str:
    """Return the placeholder that stands for `when` until the reader's moment is known."""
    if when.tzinfo is None:
        raise ValueError("time_placeholder needs a timezone-aware datetime")
    seconds = max(int(when.timestamp()), 0)
    return f"DIGESTXTIMEX{seconds:012d}XXXXXXXX"


def placeholder_time(match: re.Match[str] | re.Match[bytes]) -> datetime:
    """Return the moment a `TIME_PLACEHOLDER` match stands for."""
    return datetime.fromtimestamp(int(match[1]), tz=UTC)


def absolute_time(when: datetime, tz: tzinfo, day: date | None = None, language: str = "en") -> str:
    """Return a local clock time, "07:42", with the date (in `language`) when it is not `day`."""
    local = when.astimezone(tz)
    clock = f"{local:%H:%M}"
    if day is not None and local.date() == day:
        return clock
    with_year = day is not None and local.year != day.year
    return f"{i18n.short_date(local.date(), language, with_year=with_year)}, {clock}"


def word_time(
    when: datetime,
    tz: tzinfo,
    *,
    now: datetime | None,
    day: date | None,
    language: str = "en",
) -> str:
    """Return how a reader at `now` should see `when` in `language`; absolute without `now`."""
    if now is None or when - now > _FUTURE_SLACK:
        anchor = day if now is None else now.astimezone(tz).date()
        return absolute_time(when, tz, anchor, language)
    return relative_time(when, now.astimezone(tz), language)


def fill_times(
    text: str,
    tz: tzinfo,
    *,
    now: datetime | None,
    day: date | None = None,
    html: bool = False,
    language: str = "en",
) -> str:
    """Replace every time placeholder in `text` with its wording at `now` (None: absolute)."""

    def word(match: re.Match[str]) -> str:
        out = word_time(placeholder_time(match), tz, now=now, day=day, language=language)
        return escape(out) if html else out

    return TIME_PLACEHOLDER.sub(word, text)
