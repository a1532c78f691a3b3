"""Wall-clock times in a reader's time zone as instants, correct across daylight saving.

A reader's delivery time "HH:MM" in zone Z names one instant per local day:

- a time the clock passes twice (the fall-back night) is its *first* occurrence, so
  the reader is sent to once;
- a time the clock skips (the spring-forward gap) becomes the next minute that exists,
  the moment the clocks jump (02:30 in Berlin's gap is 03:00 CEST; Lord Howe's
  half-hour gap works the same way).

Instants are returned in UTC; everything here is pure.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_MINUTE = timedelta(minutes=1)


def parse_hhmm(text: str) -> time:
    """Return the time of an "HH:MM" or "HH:MM:SS" string (already validated)."""
    h, m, *s = (int(x) for x in text.split(":"))
    return time(h, m, s[0] if s else 0)


def slot_on(day: date, at: time, tz: ZoneInfo) -> datetime:
    """Return the instant (UTC) of wall time `at` on local date `day` in `tz`."""
    naive = datetime.combine(day, at)
    first = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == naive:
        return first  # exists (in a repeated hour, fold=0 is the first occurrence)
    # In a gap: fold=1 reads the wall time with the offset from after the jump, an
    # instant before the jump; walk forward to the first minute at or past `naive`.
    t = naive.replace(tzinfo=tz, fold=1).astimezone(UTC).replace(second=0, microsecond=0)
    for _ in range(24 * 60):
        if t.astimezone(tz).replace(tzinfo=None) >= naive:
            return t
        t += _MINUTE
    return first  # unreachable for real zones (gaps last minutes to hours)


def last_slot(now: datetime, at: time, tz: ZoneInfo) -> datetime:
    """Return the latest instant at or before `now` that is `at` local time in `tz`."""
    today = now.astimezone(tz).date()
    for back in range(0, 3):
        t = slot_on(today - timedelta(days=back), at, tz)
        if t <= now:
            return t
    raise AssertionError("no slot in three days")  # pragma: no cover


def next_slot(now: datetime, at: time, tz: ZoneInfo) -> datetime:
    """Return the earliest instant after `now` that is `at` local time in `tz`."""
    today = now.astimezone(tz).date()
    for ahead in range(-1, 3):
        t = slot_on(today + timedelta(days=ahead), at, tz)
        if t > now:
            return t
    raise AssertionError("no slot in three days")  # pragma: no cover


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def weekdays(days: str) -> frozenset[int]:
    """Return the weekday numbers (Monday = 0) of a validated [schedule].days value."""
    if days in ("*", ""):
        return frozenset(range(7))
    out: set[int] = set()
    for part in days.split(","):
        ends = part.split("-")
        lo, hi = WEEKDAYS.index(ends[0]), WEEKDAYS.index(ends[-1])
        out.update(range(lo, hi + 1))
    return frozenset(out)
