"""Story times: placeholders at render time, worded when the reader's moment is known."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from digest.text.storytime import (
    PLACEHOLDER_LEN,
    TIME_PLACEHOLDER,
    absolute_time,
    fill_times,
    time_placeholder,
    word_time,
)

BERLIN = ZoneInfo("Europe/Berlin")
RENDERED = datetime(2026, 11, 25, 6, 30, tzinfo=UTC)
PUBLISHED = RENDERED - timedelta(minutes=10)  # 07:20 in Berlin


def test_a_placeholder_is_a_fixed_length_token_that_round_trips() -> None:
    ph = time_placeholder(PUBLISHED)
    # Letters and digits only: no HTML, URL or quoted-printable encoding changes it.
    assert len(ph) == PLACEHOLDER_LEN and ph.isascii() and ph.isalnum()
    match = TIME_PLACEHOLDER.fullmatch(ph)
    assert match is not None and int(match[1]) == int(PUBLISHED.timestamp())
    with pytest.raises(ValueError, match="timezone-aware"):
        time_placeholder(datetime(2026, 11, 25, 6, 30))  # noqa: DTZ001 - the point of the test


@pytest.mark.parametrize(
    ("sent_after", "expected"),
    [
        (timedelta(0), "10 minutes ago"),
        (timedelta(hours=2), "2 hours ago"),  # sent two hours after rendering
        (timedelta(hours=30), "yesterday"),
        (timedelta(days=9), "Nov 25"),  # a week on: the date it appeared
    ],
)
def test_wording_is_relative_to_the_send(sent_after: timedelta, expected: str) -> None:
    text = f"City Desk · {time_placeholder(PUBLISHED)}"
    assert fill_times(text, BERLIN, now=RENDERED + sent_after) == f"City Desk · {expected}"


def test_never_just_now_two_hours_after_rendering() -> None:
    # Even an item published the very moment the issue was rendered.
    text = time_placeholder(RENDERED)
    sent = fill_times(text, BERLIN, now=RENDERED + timedelta(hours=2))
    assert sent == "2 hours ago" and "just now" not in sent


def test_unknown_gap_gives_an_absolute_local_time() -> None:
    text = f"<p>{time_placeholder(PUBLISHED)}</p>"
    assert fill_times(text, BERLIN, now=None, day=date(2026, 11, 25), html=True) == "<p>07:20</p>"
    assert fill_times(text, BERLIN, now=None, day=date(2026, 11, 26)) == "<p>Nov 25, 07:20</p>"
    assert absolute_time(PUBLISHED, BERLIN, date(2027, 1, 2)) == "Nov 25, 2026, 07:20"


def test_a_story_dated_in_the_future_gets_its_time_not_just_now() -> None:
    ahead = RENDERED + timedelta(hours=3)  # a feed whose clock is three hours fast
    assert word_time(ahead, BERLIN, now=RENDERED, day=None) == "10:30"
    slightly = RENDERED + timedelta(seconds=20)  # clocks a little apart: honest enough
    assert word_time(slightly, BERLIN, now=RENDERED, day=None) == "just now"
