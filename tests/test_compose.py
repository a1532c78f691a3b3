"""compose: grouping articles into stories, the ranking rules, caps, sections, times in words."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.compose import (
    Rules,
    article_language,
    choose_lead,
    compose_issue,
    make_stories,
    rank,
    relative_time,
    story_value,
)
from digest.compose.document import issue_document
from digest.compose.grouping import group_articles
from digest.models import Article, Story

NOW = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
DATA = Path(__file__).parent / "data"
LONG_TEXT = " ".join(
    "The council approved the transport budget after a six hour debate on Tuesday."
    for _ in range(60)
)
RULES = Rules()


def article(
    title: str,
    *,
    hours_ago: float | None = 1,
    source: str = "City",
    text: str = LONG_TEXT,
    image: str | None = None,
    url: str | None = None,
    first_seen_hours_ago: float | None = None,
    language: str | None = "english",
) -> Article:
    slug = title.lower().replace(" ", "-")
    return Article(
        source=source,
        guid=f"{source}/{slug}",
        url=url if url is not None else f"https://{source.lower()}.example.com/{slug}",
        title=title,
        text=text,
        published=None if hours_ago is None else NOW - timedelta(hours=hours_ago),
        first_seen=None
        if first_seen_hours_ago is None
        else NOW - timedelta(hours=first_seen_hours_ago),
        image=image,
        language=language,
    )


def story(title: str, *, also: tuple[Article, ...] = (), **kwargs: object) -> Story:
    return Story(article=article(title, **kwargs), sentences=(f"{title} happened.",), also=also)  # type: ignore[arg-type]


def issue_of(stories: list[Story], rules: Rules = RULES):  # type: ignore[no-untyped-def]
    issue = compose_issue(
        stories, site_name="The Daily", site_url="https://news.example.com/", now=NOW, tz=BERLIN,
        rules=rules,
    )  # fmt: skip
    assert issue is not None
    return issue


# -- the lead ---------------------------------------------------------------------


def test_pinned_url_wins_over_a_better_story() -> None:
    best = story("Big feature", image="https://img.example.com/a.jpg", hours_ago=0)
    pinned = story("Small note", text="Short.", hours_ago=20, source="News")
    rules = Rules(pin="HTTPS://NEWS.EXAMPLE.COM/small-note/")  # case and trailing slash ignored
    assert choose_lead([best, pinned], rules) is pinned


def test_unknown_pin_falls_back_to_ranking() -> None:
    best = story("Big feature", image="https://img.example.com/a.jpg")
    other = story("Small note", text="Short.")
    assert choose_lead([other, best], Rules(pin="https://elsewhere.example/x")) is best


def test_more_outlets_beat_image_substance_and_recency() -> None:
    # The Davis Cup result was newer and richer; three outlets covered the other story.
    newer = story("Doubles result", hours_ago=0, image="https://img.example.com/t.jpg")
    covered = story(
        "Governor's slogan",
        hours_ago=5,
        text="Short text.",
        source="Argus",
        also=(article("Slogan", source="Herald"), article("Slogan too", source="Tribune")),
    )
    assert covered.outlets == 3
    assert choose_lead([newer, covered], RULES) is covered


def test_image_and_substance_beat_a_thin_newer_story() -> None:
    rich = story("Long read with photo", hours_ago=10, image="https://img.example.com/p.jpg")
    thin = story("Breaking stub", hours_ago=0, text="Council votes. More soon.")
    assert choose_lead([thin, rich], RULES) is rich
    # A javascript: "image" is no image at all.
    fake = replace(rich, article=replace(rich.article, image="javascript:alert(1)"))
    assert not story_value(fake, RULES).image and story_value(rich, RULES).image


def test_source_priority_beats_outlets() -> None:
    covered = story("Covered", source="Blog", also=(article("Same", source="Other"),))
    trusted = story("Trusted", hours_ago=12, source="Wire")
    assert choose_lead([covered, trusted], Rules(priorities={"Wire": 2})) is trusted
    assert choose_lead([covered, trusted], RULES) is covered


def test_recency_only_breaks_ties_then_title() -> None:
    a = story("Alpha", hours_ago=30)
    b = story("Bravo", hours_ago=40)
    assert choose_lead([b, a], RULES) is a
    c = story("Charlie", hours_ago=30)
    assert choose_lead([c, a], RULES) is a and choose_lead([a, c], RULES) is a


def test_an_article_in_another_language_never_leads() -> None:
    german = story(
        "Regierung stürzt",
        language="german",
        image="https://img.example.com/g.jpg",
        also=(article("Regierung", source="Zeit", language="german"),),
    )
    english = story("Council meets", text="Short.", hours_ago=20)
    assert choose_lead([german, english], RULES) is english
    # ISO 639-1 codes; the site's language stands in for an article nobody could place.
    assert article_language(replace(german.article, language=None), "en") == "en"
    assert article_language(replace(german.article, language="german"), "en") == "de"


def test_a_story_shows_its_best_article_and_the_pinned_one_when_pinned() -> None:
    plain = article("Rescue in the hills", source="Argus", text="Short.")
    rich = article("Hikers rescued", source="Herald", image="https://img.example.com/h.jpg")
    (shown,) = make_stories([plain, rich], RULES, grouped=[[plain, rich]])
    assert shown.article is rich and shown.also == (plain,)
    (pinned,) = make_stories([plain, rich], Rules(pin=plain.url), grouped=[[plain, rich]])
    assert pinned.article is plain


# -- the roundup -------------------------------------------------------------------


def test_roundup_is_ranked_capped_per_source_and_the_rest_is_more() -> None:
    lead = story("Lead", source="Wire", image="https://img.example.com/l.jpg")
    wire = [story(f"Wire {i}", source="Wire", hours_ago=1 + i) for i in range(6)]
    blog = [story(f"Blog {i}", source="Blog", text="Short item.", hours_ago=i) for i in range(4)]
    issue = issue_of([*blog, lead, *wire], Rules(max_per_source=3))
    assert issue.lead is lead
    sources = [s.article.source for s in issue.stories]
    assert sources.count("Wire") == 3 and sources.count("Blog") == 3  # the lead counts
    assert [s.article.title for s in issue.roundup] == [
        "Wire 0", "Wire 1", "Blog 0", "Blog 1", "Blog 2",
    ]  # fmt: skip
    assert [s.article.title for s in issue.more] == [
        "Wire 2",
        "Wire 3",
        "Wire 4",
        "Wire 5",
        "Blog 3",
    ]
    capped = issue_of([*blog, lead, *wire], Rules(max_per_source=10, max_roundup=2))
    assert len(capped.roundup) == 2 and len(capped.more) == 8


def test_undated_items_sort_by_first_seen_time() -> None:
    seen_early = story("Seen early", hours_ago=None, first_seen_hours_ago=5, source="A")
    seen_late = story("Seen late", hours_ago=None, first_seen_hours_ago=1, source="B")
    dated = story("Dated", hours_ago=3, source="C")
    issue = issue_of([seen_early, dated, seen_late, story("Lead", hours_ago=0, source="D")])
    assert [s.article.title for s in issue.roundup] == ["Seen late", "Dated", "Seen early"]


def test_sections_group_the_roundup_in_the_configured_order() -> None:
    arts = [
        article("Chip plant", source="Tech", hours_ago=1),
        article("Election", source="World", hours_ago=2),
        article("Derby", source="Sport", hours_ago=3),
        article("App update", source="Tech", hours_ago=4),
        article("Lead", source="Wire", image="https://img.example.com/l.jpg", hours_ago=0),
    ]
    rules = Rules(
        sections={"Tech": "Technology", "World": "World", "Sport": "Sport"},
        section_order=("World", "Technology"),
    )
    issue = issue_of(make_stories(arts, rules, grouped=[[a] for a in arts]), rules)
    assert [(s.section, s.article.title) for s in issue.roundup] == [
        ("World", "Election"),
        ("Technology", "Chip plant"),
        ("Technology", "App update"),
        ("Sport", "Derby"),  # named by a source but not in the order: after those listed
    ]


def test_empty_day_is_none() -> None:
    issue = compose_issue(
        [], site_name="S", site_url="https://s.example/", now=NOW, tz=BERLIN, rules=RULES
    )
    assert issue is None


def test_issue_date_is_in_the_site_time_zone() -> None:
    late = datetime(2026, 11, 24, 23, 30, tzinfo=UTC)  # already the 25th in Berlin
    issue = compose_issue(
        [story("Only")], site_name="S", site_url="https://s.example/", now=late, tz=BERLIN,
        rules=RULES,
    )  # fmt: skip
    assert issue is not None and issue.date == "2026-11-25" and issue.roundup == ()


def test_max_roundup_zero_keeps_only_the_lead() -> None:
    issue = issue_of([story("A"), story("B")], Rules(max_roundup=0))
    assert issue.roundup == () and len(issue.more) == 1


# -- the whole day accounted for ---------------------------------------------------

_words = st.sampled_from(
    ["council", "budget", "storm", "rescue", "election", "market", "chip", "derby"]
)


@st.composite
def days(draw: st.DrawFn) -> list[Article]:
    n = draw(st.integers(1, 40))
    out = []
    for i in range(n):
        title = " ".join(draw(st.lists(_words, min_size=1, max_size=5)))
        linked = draw(st.booleans()) or i == 0
        out.append(
            Article(
                source=draw(st.sampled_from(["A", "B", "C", "D"])),
                guid=f"g{i}",
                url=f"https://news.example.com/{i}" if linked else "",
                title=title,
                text=" ".join(draw(st.lists(_words, max_size=120))),
                published=draw(st.none() | st.just(NOW - timedelta(hours=i % 7))),
                first_seen=NOW - timedelta(minutes=i),
                image=draw(st.none() | st.just("https://img.example.com/x.jpg")),
                language=draw(st.sampled_from(["english", "english", "german"])),
            )
        )
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(days(), st.integers(0, 5), st.integers(1, 4))
def test_every_collected_article_is_accounted_for_exactly_once(
    articles: list[Article], max_roundup: int, max_per_source: int
) -> None:
    rules = Rules(max_roundup=max_roundup, max_per_source=max_per_source)
    issue = issue_of(make_stories(articles, rules), rules)
    assert sorted(a.guid for a in issue.articles) == sorted(a.guid for a in articles)
    shown = [s.article.source for s in issue.stories]
    assert all(shown.count(src) <= max_per_source for src in set(shown))
    assert len(issue.roundup) <= max_roundup
    doc = json.loads(json.dumps(issue_document(issue, subject="S", language="english")))
    stories = [doc["lead"], *doc["stories"], *doc["more"]]
    urls = [u for s in stories for u in [s["url"], *(a["url"] for a in s["also"])] if u]
    assert sorted(urls) == sorted(a.url for a in articles if a.url)


def test_the_json_document_has_the_documented_shape() -> None:
    dated = article("Storm", source="A", image="https://img.example.com/s.jpg")
    also = article("Storm hits", source="B")
    undated = article("Later", source="C", hours_ago=None, first_seen_hours_ago=1)
    rules = Rules(sections={"A": "World"})
    issue = issue_of(
        make_stories([dated, also, undated], rules, grouped=[[dated, also], [undated]]), rules
    )
    doc = issue_document(issue, subject="The Daily — Storm", language="english")
    assert set(doc) == {"date", "subject", "lead", "stories", "more"}
    assert doc["lead"] == {
        "url": dated.url, "title": "Storm", "source": "A", "section": "World",
        "language": "en", "published": dated.published.isoformat(),  # type: ignore[union-attr]
        "summary": [], "also": [{"url": also.url, "source": "B", "title": "Storm hits"}],
    }  # fmt: skip
    assert doc["stories"][0]["published"] is None and doc["more"] == []


# -- grouping real headlines and leads ----------------------------------------------


def _articles_from(items: list[dict[str, str]]) -> list[Article]:
    return [
        Article(
            source=it["source"], guid=it["title"], url=f"https://x.example/{k}", title=it["title"],
            text=it["text"], language="english",
        )
        for k, it in enumerate(items)
    ]  # fmt: skip


def test_one_event_from_two_sources_is_one_story_and_different_events_never_are() -> None:
    data = json.loads((DATA / "stories.json").read_text(encoding="utf-8"))
    same = _articles_from(data["same_event"])
    different = [a for pair in data["different_events"] for a in _articles_from(pair)]
    groups = group_articles([*same, *different])
    by_title = {a.title: len(g) for g in groups for a in g}
    assert [len(g) for g in groups if same[0] in g] == [2]
    assert all(by_title[a.title] == 1 for a in different), groups
    # One source running two pieces on one event meant two pieces.
    one_source = [replace(a, source="Business Daily") for a in same]
    assert [len(g) for g in group_articles(one_source)] == [1, 1]
    # The same words in another language is another edition, not another outlet.
    german = replace(same[1], language="german")
    assert [len(g) for g in group_articles([same[0], german])] == [1, 1]


def test_grouped_stories_count_their_outlets_in_the_lead_choice() -> None:
    data = json.loads((DATA / "stories.json").read_text(encoding="utf-8"))
    arts = [*_articles_from(data["same_event"])]
    arts += [a for pair in data["different_events"] for a in _articles_from(pair)]
    rich = article("Unrelated long read", source="Blog", image="https://img.example.com/r.jpg")
    stories = make_stories([*arts, rich], RULES)
    assert len(stories) == 6
    assert choose_lead(stories, RULES).outlets == 2
    assert rank(stories, RULES)[1].article is rich


# -- times in words ----------------------------------------------------------------


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


def test_the_cheap_link_test_agrees_with_the_full_score_on_every_pair() -> None:
    """`Similarity.link` skips the costly cosines; it must decide exactly as `score` does."""
    from digest.compose.grouping import Similarity

    data = json.loads((DATA / "stories.json").read_text(encoding="utf-8"))
    items = [*data["same_event"], *(it for pair in data["different_events"] for it in pair)]
    arts = _articles_from(items)
    sim = Similarity(arts)
    links = 0
    for i in range(len(arts)):
        for j in range(i + 1, len(arts)):
            full = sim.score(i, j)
            assert sim.link(i, j) == (full if full.loose else None), (i, j)
            links += full.loose
    assert links >= 1  # the same-event pair at least: the test compares real links too


def test_stored_articles_language_codes_get_the_same_stemming_as_names() -> None:
    """Articles carry "en"; grouping must stem them as it does "english" (as evaluated)."""
    from digest.compose.grouping import Similarity

    data = json.loads((DATA / "stories.json").read_text(encoding="utf-8"))
    named = _articles_from(data["same_event"])
    coded = [replace(a, language="en") for a in named]
    by_name, by_code = Similarity(named), Similarity(coded)
    assert by_code.docs == by_name.docs
    assert by_code.score(0, 1) == by_name.score(0, 1)
    # ... which is not the tool-less treatment an unknown language gets.
    bare = Similarity([replace(a, language="zz") for a in named])
    assert by_code.docs != bare.docs
