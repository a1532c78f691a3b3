"""compose: the lead rule, the roundup order and cap, and times in words."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from digest.compose import choose_lead, compose_issue, lead_score, relative_time
from digest.models import Article, Story

NOW = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
LONG_TEXT = " ".join(
    "The council approved the transport budget after a six hour debate on Tuesday."
    for _ in range(60)
)


def story(
    title: str,
    *,
    hours_ago: float | None = 1,
    source: str = "City",
    text: str = LONG_TEXT,
    image: str | None = None,
    url: str | None = None,
    first_seen_hours_ago: float | None = None,
) -> Story:
    slug = title.lower().replace(" ", "-")
    return Story(
        article=Article(
            source=source,
            guid=slug,
            url=url or f"https://news.example.com/{slug}",
            title=title,
            text=text,
            published=None if hours_ago is None else NOW - timedelta(hours=hours_ago),
            first_seen=None
            if first_seen_hours_ago is None
            else NOW - timedelta(hours=first_seen_hours_ago),
            image=image,
        ),
        sentences=(f"{title} happened.",),
    )


def test_pinned_url_wins_over_a_better_story() -> None:
    best = story("Big feature", image="https://img.example.com/a.jpg", hours_ago=0)
    pinned = story("Small note", text="Short.", hours_ago=20)
    lead = choose_lead(
        [best, pinned],
        priorities={},
        pin="HTTPS://NEWS.EXAMPLE.COM/small-note/",  # case and trailing slash do not matter
        now=NOW,
    )
    assert lead is pinned


def test_unknown_pin_falls_back_to_scoring() -> None:
    best = story("Big feature", image="https://img.example.com/a.jpg")
    other = story("Small note", text="Short.")
    lead = choose_lead([other, best], priorities={}, pin="https://elsewhere.example/x", now=NOW)
    assert lead is best


def test_image_and_substance_beat_a_thin_newer_story() -> None:
    rich = story("Long read with photo", hours_ago=10, image="https://img.example.com/p.jpg")
    thin = story("Breaking stub", hours_ago=0, text="Council votes. More soon.")
    assert choose_lead([thin, rich], priorities={}, now=NOW) is rich
    # A javascript: "image" is no image at all.
    fake = replace(rich, article=replace(rich.article, image="javascript:alert(1)"))
    assert lead_score(fake, priorities={}, now=NOW) < lead_score(rich, priorities={}, now=NOW)


def test_source_priority_beats_recency() -> None:
    newer = story("Newer", hours_ago=0, source="Blog")
    trusted = story("Trusted", hours_ago=12, source="Wire")
    assert choose_lead([newer, trusted], priorities={"Wire": 2}, now=NOW) is trusted
    assert choose_lead([newer, trusted], priorities={}, now=NOW) is newer


def test_ties_go_to_newest_then_title() -> None:
    a = story("Alpha", hours_ago=30)  # outside the recency window: no recency points
    b = story("Bravo", hours_ago=40)
    assert choose_lead([b, a], priorities={}, now=NOW) is a
    c = story("Charlie", hours_ago=30)
    assert choose_lead([c, a], priorities={}, now=NOW) is a
    assert choose_lead([a, c], priorities={}, now=NOW) is a


def test_empty_day_is_none() -> None:
    issue = compose_issue(
        [], site_name="S", site_url="https://s.example/", now=NOW, tz=BERLIN, priorities={}
    )
    assert issue is None


def test_roundup_is_newest_first_and_capped() -> None:
    lead = story("Lead", hours_ago=2, image="https://img.example.com/l.jpg")
    others = [story(f"Item {i:02d}", hours_ago=3 + i, text="Short item.") for i in range(25)]
    undated = story("Undated", hours_ago=None, text="Short item.")
    seen_only = story("Seen only", hours_ago=None, first_seen_hours_ago=3.5, text="Short item.")
    shuffled = [undated, *others[12:], lead, *others[:12][::-1], seen_only]
    issue = compose_issue(
        shuffled,
        site_name="The Daily",
        site_url="https://news.example.com/",
        now=NOW,
        tz=BERLIN,
        priorities={},
        max_roundup=20,
    )
    assert issue is not None
    assert issue.lead is lead
    assert len(issue.roundup) == 20
    titles = [s.article.title for s in issue.roundup]
    # first_seen stands in for a missing published date; undated stories go last (cut here)
    assert titles[:3] == ["Item 00", "Seen only", "Item 01"]
    assert "Undated" not in titles and "Lead" not in titles
    assert titles[-1] == "Item 18"
    assert issue.date == "2026-11-25" and issue.created_at == NOW
    assert issue.site_name == "The Daily"


def test_issue_date_is_in_the_site_time_zone() -> None:
    late = datetime(2026, 11, 24, 23, 30, tzinfo=UTC)  # already the 25th in Berlin
    issue = compose_issue(
        [story("Only")], site_name="S", site_url="https://s.example/", now=late, tz=BERLIN,
        priorities={},
    )  # fmt: skip
    assert issue is not None and issue.date == "2026-11-25" and issue.roundup == ()


def test_max_roundup_zero_keeps_only_the_lead() -> None:
    issue = compose_issue(
        [story("A"), story("B")], site_name="S", site_url="https://s.example/", now=NOW,
        tz=BERLIN, priorities={}, max_roundup=0,
    )  # fmt: skip
    assert issue is not None and issue.roundup == ()


@pytest.mark.parametrize(
    ("ago", "expected"),
    [
        (timedelta(seconds=20), "just now"),
        (timedelta(minutes=-5), "just now"),  # a feed clock slightly ahead
        (timedelta(minutes=1), "1 minute ago"),
        (timedelta(minutes=5), "5 minutes ago"),
        (timedelta(minutes=61), "1 hour ago"),
        (timedelta(hours=4, minutes=59), "4 hours ago"),
        (timedelta(hours=23, minutes=59), "23 hours ago"),
        (timedelta(hours=30), "yesterday"),
        (timedelta(days=3), "3 days ago"),
        (timedelta(days=22), "Nov 3"),
        (timedelta(days=400), "Oct 21, 2025"),
    ],
)
def test_relative_time(ago: timedelta, expected: str) -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=BERLIN)
    assert relative_time(now - ago, now) == expected


def test_relative_time_across_dst_in_berlin() -> None:
    # 2026-10-25 03:00 CEST falls back to 02:00 CET: four real hours, three on the wall clock.
    when = datetime(2026, 10, 25, 1, 30, tzinfo=BERLIN)
    now = datetime(2026, 10, 25, 4, 30, tzinfo=BERLIN)
    assert relative_time(when, now) == "4 hours ago"
    # 2026-03-29 02:00 CET springs to 03:00 CEST: one real hour, two on the wall clock.
    when = datetime(2026, 3, 29, 1, 30, tzinfo=BERLIN)
    now = datetime(2026, 3, 29, 3, 30, tzinfo=BERLIN)
    assert relative_time(when, now) == "1 hour ago"
    # 22:00 the day before the change to 23:00 after it is 24 real hours: yesterday.
    assert (
        relative_time(
            datetime(2026, 3, 28, 22, 0, tzinfo=BERLIN), datetime(2026, 3, 29, 23, 0, tzinfo=BERLIN)
        )
        == "yesterday"
    )


def test_relative_time_uses_the_calendar_of_now() -> None:
    now = datetime(2026, 11, 25, 0, 30, tzinfo=BERLIN)
    # 25 hours earlier, but 23:30 on the 23rd in Berlin: two calendar days back.
    when = datetime(2026, 11, 23, 22, 30, tzinfo=UTC)
    assert relative_time(when, now) == "2 days ago"


def test_relative_time_rejects_naive() -> None:
    with pytest.raises(ValueError, match="aware"):
        relative_time(datetime(2026, 1, 1), NOW)  # noqa: DTZ001
