"""Tests for digest.collect.extract: real trafilatura on realistic pages, no network."""

from __future__ import annotations

import gzip
import json
import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.collect.cleanup import RULES, clean_lines
from digest.collect.extract import extract_page
from digest.collect.merge import html_paragraphs, merge_article, repeated_feed_text
from digest.errors import ExtractError
from digest.models import Entry, Page

DATA = Path(__file__).parent / "data"
XIAOMI_URL = "https://news.example.com/2024/07/22/xiaomi-ev-sanctions/"
GAZETTE_URL = "https://gazette.example.org/local/2025/03/cycle-lanes"


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail any attempt to open a connection: extraction must never fetch."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield


def xiaomi_page() -> Page:
    return extract_page((DATA / "pages" / "xiaomi.html").read_bytes(), XIAOMI_URL)


# --- extract_page ---------------------------------------------------------------------


def test_xiaomi_text_is_exactly_the_article_paragraphs() -> None:
    page = xiaomi_page()
    expected = (DATA / "text" / "xiaomi-article.txt").read_text(encoding="utf-8").strip()
    assert page.text == expected
    assert len(page.text.split("\n\n")) == 4


@pytest.mark.parametrize(
    "boilerplate",
    [
        "Image source",
        "Published by",
        "admin",
        "Share",
        "Recent Posts",
        "Scientists have found a way",  # first "Recent Posts" headline
        "Until now, it was believed",  # a "Recent Posts" teaser
        "hours ago",
        "gadgetfan88",
        "sanctions or no sanctions",  # comment text
        "Leave a Reply",
        "cookies",
        "All rights reserved",
        "Tech News Today",
        "Skip to content",
        "Facebook",
        "Tagged",
    ],
)
def test_xiaomi_text_has_no_boilerplate(boilerplate: str) -> None:
    pattern = rf"(?i)(?<!\w){re.escape(boilerplate)}(?!\w)"  # "admin", not "administration"
    assert re.search(pattern, xiaomi_page().text) is None


def test_xiaomi_metadata() -> None:
    page = xiaomi_page()
    assert page.url == XIAOMI_URL
    assert page.title == (
        "The founder of Xiaomi admitted that the company was forced to produce electric cars "
        "by the threat of US sanctions"
    )
    assert page.author is None  # "admin" is a CMS placeholder, not a byline
    assert page.date == datetime(2024, 7, 22, 7, 15, tzinfo=UTC)
    assert page.date is not None and page.date.utcoffset() is not None
    assert (
        page.image == "https://news.example.com/wp-content/uploads/2024/07/xiaomi-su7-1200x675.jpg"
    )


def test_relative_og_image_is_made_absolute_and_json_ld_date_is_read() -> None:
    page = extract_page((DATA / "pages" / "relative-image.html").read_text("utf-8"), GAZETTE_URL)
    assert page.image == "https://gazette.example.org/media/2025/03/cycle-lanes.jpg"
    assert page.date == datetime(2025, 3, 14, 8, 30, tzinfo=UTC)
    assert page.author == "Jane Okafor"
    assert page.text.startswith("The city council voted on Thursday evening")
    assert page.text.endswith("on the old depot site if needed.")
    for junk in (
        "By Jane Okafor",
        "Photo:",
        "Advertisement",
        "Read more",
        "Bus fares",
        "Copyright",
    ):
        assert junk not in page.text


@pytest.mark.parametrize(
    "html",
    [
        "",
        b"",
        "   \n ",
        "<html><body></body></html>",
        "<html><head><title>Home</title></head><body><nav><a href='/'>Home</a> "
        "<a href='/news'>News</a></nav><div class='share'>Share</div>"
        "<p>Published by admin</p><footer>© 2025 Example</footer></body></html>",
        b"\xff\xfe\x00\x00garbage",
    ],
)
def test_page_without_article_raises(html: str | bytes) -> None:
    with pytest.raises(ExtractError, match="no article text found"):
        extract_page(html, "https://example.org/empty")


def article_html(head: str = "", body_extra: str = "") -> str:
    paragraphs = "".join(
        f"<p>Paragraph {i} of the report explains, in plain words, what the committee "
        f"decided about the harbour project and why the vote took so long this year.</p>"
        for i in range(1, 5)
    )
    return (
        f"<html><head><title>Harbour vote</title>{head}</head><body><article>"
        f"<h1>Harbour vote</h1>{paragraphs}{body_extra}</article></body></html>"
    )


@pytest.mark.parametrize(
    "og_image", ["javascript:alert(1)", "data:image/png;base64,AAAA", "ftp://x.example/a.jpg"]
)
def test_non_http_images_are_dropped(og_image: str) -> None:
    page = extract_page(
        article_html(f'<meta property="og:image" content="{og_image}">'), "https://a.example/x"
    )
    assert page.image is None
    assert "Paragraph 1 of the report" in page.text


def test_date_only_and_naive_dates_become_utc() -> None:
    page = extract_page(
        article_html('<meta property="article:published_time" content="2025-02-03T09:10:11">'),
        "https://a.example/x",
    )
    assert page.date == datetime(2025, 2, 3, 9, 10, 11, tzinfo=UTC)


def test_missing_date_is_none_not_guessed_from_text() -> None:
    page = extract_page(
        article_html(body_extra="<p>It began in January 2021.</p>"), "https://a.ex/"
    )
    assert page.date is None


def test_windows_1252_bytes_are_decoded() -> None:
    html = article_html('<meta charset="windows-1252">', "<p>Café owners said “no” to it.</p>")
    page = extract_page(html.encode("cp1252"), "https://a.example/x")
    assert "Café owners said “no” to it." in page.text


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_arbitrary_input_returns_page_or_raises_extract_error(html: str | bytes) -> None:
    try:
        page = extract_page(html, "https://a.example/x")
    except ExtractError:
        return
    assert page.text.strip()


# --- clean_lines ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "Share",
        "Share this article",
        "Published by admin",
        "Published by",
        "Posted on July 22, 2024 by John Smith",
        "Image source: Xiaomi",
        "Photo: Reuters/John Doe",
        "Photo credit: AP",
        "Read more",
        "Read more: Council budget for 2025 explained",
        "Advertisement",
        "Click here to subscribe",
        "Scroll down for video",
        "We use cookies to give you the best experience. Accept",
        "This website uses cookies.",
        "Tags: Xiaomi, EV",
        "By Jane Doe | Transport correspondent",
        "4 hours ago",
        "The post Xiaomi builds cars appeared first on Tech News Today.",
    ],
)
def test_boilerplate_lines_are_dropped(line: str) -> None:
    kept = "The council approved the new budget after a long debate on Tuesday."
    assert clean_lines([kept, line, kept + " Again."]) == [kept, kept + " Again."]


@pytest.mark.parametrize(
    "line",
    [
        "Share prices fell sharply on Monday after the announcement.",
        "Copyright law was reformed in 2019 after years of debate.",
        "Category 5 hurricanes are the strongest storms on the scale.",
        "Published in 1990, the novel sold millions of copies.",
        "Google said it uses cookies to measure advertising, regulators noted.",
        "By Tuesday, officials had counted most of the votes.",
    ],
)
def test_article_lines_that_look_like_boilerplate_are_kept(line: str) -> None:
    assert clean_lines([line]) == [line]


def test_recent_posts_cuts_everything_after_it() -> None:
    lines = ["First real paragraph of the story.", "Recent Posts", "Another headline here."]
    assert clean_lines(lines) == ["First real paragraph of the story."]


def test_trailing_stubs_and_author_lines_are_dropped() -> None:
    lines = ["Jane Roe", "The story itself ends here.", "Jane Roe", "Senior writer"]
    assert clean_lines(lines, author="Jane Roe") == ["The story itself ends here."]


def test_leading_title_repeat_is_dropped_but_headings_inside_are_kept() -> None:
    lines = ["Big News Today", "The first paragraph.", "What happens next", "The last one."]
    assert clean_lines(lines, title="Big news today") == lines[1:]


# --- each clean-up rule on real page text: where it must cut, where it must not ---------

RULES_DATA = json.loads((DATA / "text" / "cleanup-rules.json").read_text(encoding="utf-8"))
ARTICLE = RULES_DATA["article"]
FURNITURE = RULES_DATA["furniture"]


@pytest.mark.parametrize(
    ("rule", "line"), [(r, line) for r, d in FURNITURE.items() for line in d["cut"]]
)
def test_furniture_rule_cuts_real_furniture(rule: str, line: str) -> None:
    assert clean_lines([ARTICLE, line, ARTICLE]) == [ARTICLE, ARTICLE]
    # ... and it is this rule that does it.
    assert line in clean_lines([ARTICLE, line, ARTICLE], rules=RULES - {rule})


@pytest.mark.parametrize("line", [line for d in FURNITURE.values() for line in d["keep"]])
def test_furniture_rules_keep_real_article_lines(line: str) -> None:
    assert clean_lines([ARTICLE, line, ARTICLE]) == [ARTICLE, line, ARTICLE]


@pytest.mark.parametrize("line", RULES_DATA["copyright_kept"])
def test_copyright_lines_are_kept(line: str) -> None:
    """People marking article text keep these; cutting them lowered F1 on the dev set."""
    assert clean_lines([ARTICLE, line]) == [ARTICLE, line]


def test_menu_run_cuts_a_real_menu_but_keeps_a_real_list() -> None:
    menu, items = RULES_DATA["menu"], RULES_DATA["list"]
    assert clean_lines([ARTICLE, *menu, ARTICLE]) == [ARTICLE, ARTICLE]
    assert clean_lines([ARTICLE, *menu, ARTICLE], rules=RULES - {"menu-run"}) == [
        ARTICLE,
        *menu,
        ARTICLE,
    ]
    assert clean_lines([ARTICLE, *items, ARTICLE]) == [ARTICLE, *items, ARTICLE]
    # Five labels in a row are not yet a menu (a short list of names in a story).
    assert clean_lines([ARTICLE, *menu[:5], ARTICLE]) == [ARTICLE, *menu[:5], ARTICLE]


def test_trailing_stub_cuts_contact_lines_but_keeps_japanese_text() -> None:
    stubs = RULES_DATA["trailing_stubs"]
    assert clean_lines([ARTICLE, *stubs]) == [ARTICLE]
    assert clean_lines([ARTICLE, *stubs], rules=RULES - {"trailing-stub"}) == [ARTICLE, *stubs]
    japanese = RULES_DATA["japanese"]
    assert clean_lines(japanese) == japanese  # a line of Japanese is one "word"


def test_title_repeat_cuts_only_a_leading_headline() -> None:
    title = RULES_DATA["title"]
    assert clean_lines([title, ARTICLE], title=title) == [ARTICLE]
    assert clean_lines([ARTICLE, title, ARTICLE], title=title) == [ARTICLE, title, ARTICLE]


@pytest.mark.parametrize(
    ("headline", "title"),
    [  # first lines and <title>s of real pages
        (
            "NASA adds five companies to commercial lunar lander program",
            "NASA adds five companies to commercial lunar lander program - SpaceNews.com",
        ),
        (
            "How to Tackle Game Day Snack Temptations",
            "How to Tackle Game Day Snack Temptations | The Beachbody Blog",
        ),
        (
            "Kindle for PCをCtrl＋Alt＋Kのショートカットキーで立ち上がらなくする方法",
            "Kindle for PCをCtrl＋Alt＋Kのショートカットキーで立ち上がらなくする方法"
            " | ノート100YEN.com",
        ),
    ],
)
def test_title_repeat_knows_the_title_with_the_sites_name(headline: str, title: str) -> None:
    assert clean_lines([headline, ARTICLE], title=title) == [ARTICLE]
    assert clean_lines([headline, ARTICLE], title=title, rules=RULES - {"title-repeat"}) == [
        headline,
        ARTICLE,
    ]
    # A first line that only shares the headline's start is text, not the title.
    shorter = headline.rsplit(" ", 2)[0]
    assert clean_lines([shorter, ARTICLE], title=title) == [shorter, ARTICLE]
    assert clean_lines([title, ARTICLE], title=title, rules=RULES - {"title-repeat"}) == [
        title,
        ARTICLE,
    ]


@pytest.mark.parametrize("line", RULES_DATA["cut_tail"])
def test_cut_tail_drops_everything_after_a_tail_heading(line: str) -> None:
    assert clean_lines([ARTICLE, line, "A related headline here."]) == [ARTICLE]


@pytest.mark.parametrize("line", RULES_DATA["cut_tail_keep"])
def test_cut_tail_keeps_article_lines_that_start_alike(line: str) -> None:
    assert clean_lines([ARTICLE, line, ARTICLE]) == [ARTICLE, line, ARTICLE]


def test_author_line_rule_cuts_the_byline_name_only_as_a_whole_line() -> None:
    named = "Jane Roe said the council would vote again in March."
    assert clean_lines([ARTICLE, "Jane Roe", named], author="Jane Roe") == [ARTICLE, named]
    assert clean_lines([ARTICLE, "admin", ARTICLE]) == [ARTICLE, ARTICLE]
    off = RULES - {"author-line"}
    assert clean_lines([ARTICLE, "admin", ARTICLE], rules=off) == [ARTICLE, "admin", ARTICLE]


# --- html_paragraphs / merge_article --------------------------------------------------


def test_html_paragraphs_keeps_paragraphs_and_drops_scripts() -> None:
    html = (
        "<p>First &amp; foremost.</p><script>var x = '<p>no</p>';</script>"
        "<ul><li>One item</li><li>Two items</li></ul><div>Last<br>line</div>"
    )
    assert html_paragraphs(html) == ["First & foremost.", "One item", "Two items", "Last line"]
    assert html_paragraphs("") == []
    assert html_paragraphs("plain text\n\nsecond para") == ["plain text", "second para"]


WHEN = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
LONG = " ".join(["Harbour workers voted to accept the new contract offer on Friday."] * 6)


def entry(**kw: Any) -> Entry:
    base: dict[str, Any] = {
        "source": "gazette",
        "guid": "g-1",
        "url": "https://a.example/story",
        "title": "Feed title",
        "summary": "The feed summary sentence is short.",
    }
    base.update(kw)
    return Entry(**base)


def test_merge_prefers_long_page_text_and_feed_metadata() -> None:
    page = Page(
        url="https://a.example/story",
        title="Page title",
        author="Page Author",
        date=datetime(2024, 1, 1, tzinfo=UTC),
        image="https://a.example/page.jpg",
        text=LONG,
    )
    art = merge_article(
        entry(published=WHEN, author="Feed Author", image="https://a.example/feed.jpg"),
        page,
        language="en",
    )
    assert art.text == LONG
    assert art.title == "Feed title"
    assert art.published == WHEN
    assert art.author == "Feed Author"
    assert art.image == "https://a.example/page.jpg"  # the page's image is the better one
    assert art.feed_summary == "The feed summary sentence is short."
    assert art.language == "en"
    assert (art.source, art.guid, art.url) == ("gazette", "g-1", "https://a.example/story")


def test_merge_falls_back_to_feed_content_then_summary() -> None:
    short_page = Page(url="u", title="Page title", text="Too short to use.", date=WHEN)
    content = f"<p>{LONG}</p><p>The post Harbour deal appeared first on Gazette.</p>"
    art = merge_article(entry(title="", content_html=content), short_page, language=None)
    assert art.text == LONG
    assert art.title == "Page title"
    assert art.published == WHEN  # the feed had none
    assert art.language == "en"  # nothing declared it: detected from the text

    art = merge_article(entry(image="https://a.example/feed.jpg"), None, language="german")
    assert art.text == "The feed summary sentence is short."
    assert art.image == "https://a.example/feed.jpg"
    assert art.published is None and art.author is None


def test_merge_min_words_threshold() -> None:
    page = Page(url="u", text="one two three four five six seven eight nine ten")
    art = merge_article(entry(), page, min_words=10, language=None)
    assert art.text == page.text
    art = merge_article(entry(content_html=f"<p>{LONG}</p>"), page, min_words=11, language=None)
    assert art.text == LONG


def test_merge_short_everything_keeps_the_longest() -> None:
    page = Page(url="u", text="A page text of seven words here.")
    art = merge_article(entry(summary="Tiny."), page, language=None)
    assert art.text == "A page text of seven words here."


@pytest.mark.parametrize(
    ("head", "size"),
    [
        (
            '<meta property="og:image" content="/img/a.jpg">'
            '<meta property="og:image:width" content="1200">'
            '<meta property="og:image:height" content="630">',
            (1200, 630),
        ),
        # Half a size, a nonsense size, or a size of another picture: unknown.
        (
            '<meta property="og:image" content="/a.jpg">'
            '<meta property="og:image:width" content="9">',
            (None, None),
        ),
        (
            '<meta property="og:image" content="/a.jpg">'
            '<meta property="og:image:width" content="wide">'
            '<meta property="og:image:height" content="630">',
            (None, None),
        ),
        (
            '<meta name="twitter:image" content="https://a.example/t.jpg">'
            '<meta property="og:image:width" content="1200">'
            '<meta property="og:image:height" content="630">',
            (None, None),
        ),
    ],
)
def test_the_og_image_size_is_read_when_declared(
    head: str, size: tuple[int | None, int | None]
) -> None:
    page = extract_page(article_html(head), "https://a.example/x")
    assert page.image is not None
    assert (page.image_width, page.image_height) == size


def test_merge_keeps_the_image_size_only_with_the_pages_own_image() -> None:
    page = Page(
        url="https://a.example/story",
        image="https://a.example/page.jpg",
        text=LONG,
        image_width=1200,
        image_height=630,
    )
    art = merge_article(entry(), page, language="english")
    assert (art.image, art.image_width, art.image_height) == (
        "https://a.example/page.jpg",
        1200,
        630,
    )
    no_image = Page(url=page.url, text=LONG, image_width=1200, image_height=630)
    art = merge_article(entry(image="https://a.example/feed.jpg"), no_image, language="english")
    assert (art.image, art.image_width, art.image_height) == (
        "https://a.example/feed.jpg",
        None,
        None,
    )


# --- feed-text fallback: what repeats across a source's items, or repeats the title -----

SIGNATURE = "Die wichtigsten Nachrichten aus der SPIEGEL-Redaktion."


def episode(n: int, **kw: Any) -> Entry:
    return entry(
        guid=f"ep-{n}",
        title=f"Folge {n}: Nachrichten vom Tag",
        summary=f"In Folge {n} geht es um die Wahl in Sachsen und die Folgen. {SIGNATURE}",
        **kw,
    )


def test_text_in_most_of_a_sources_items_is_found_and_dropped() -> None:
    items = [episode(n) for n in range(1, 6)]
    repeated = repeated_feed_text(items)
    assert "die wichtigsten nachrichten aus der spiegel redaktion" in repeated
    assert not any("folge 3" in key for key in repeated)  # each item's own text stays
    art = merge_article(items[2], None, language="german", repeated=repeated)
    assert art.text == "In Folge 3 geht es um die Wahl in Sachsen und die Folgen."
    assert art.feed_summary == art.text
    assert SIGNATURE not in art.text
    # As a paragraph of its own, in the feed's HTML content, it goes as well.
    html = f"<p>{LONG}</p><p>{SIGNATURE}</p>"
    art = merge_article(episode(9, content_html=html), None, language=None, repeated=repeated)
    assert art.text == LONG


def test_too_few_items_or_text_in_only_some_of_them_is_kept() -> None:
    assert repeated_feed_text([episode(1), episode(2)]) == frozenset()
    items = [episode(1), episode(2), *(entry(guid=f"x{n}", summary=f"Item {n}.") for n in range(4))]
    assert not any("spiegel" in key for key in repeated_feed_text(items))  # 2 of 6


def test_feed_text_that_repeats_the_title_is_dropped() -> None:
    art = merge_article(
        entry(title="bash - Expansão de Parâmetros", summary="bash - Expansão de Parâmetros"),
        None,
        language=None,
    )
    assert art.text == "" and art.feed_summary == ""
    art = merge_article(
        entry(title="Harbour deal", summary="Harbour deal.\n\nWorkers accepted the offer."),
        None,
        language=None,
    )
    assert art.feed_summary == "Workers accepted the offer."


# -- a body cut in parts (advertisements between them) -------------------------------

_PART = (
    "<p>The regional council voted on Tuesday to expand the tram network by 2030, "
    "adding three lines that connect the northern suburbs with the city centre. {n}</p>"
    "<p>Officials said the plan would cost about 4 billion euros and create 12,000 "
    "jobs over the decade, most of them in construction and operations. {n}</p>"
)


def _split_page() -> str:
    parts = [
        f'<div class="article__body grid">{_PART.format(n=f"Part {i}.")}</div>'
        f'<div class="ad"><p>Advertisement</p></div>'
        for i in range(1, 4)
    ]
    teasers = "".join(
        f'<div class="teaser"><p>Another story, number {i}, about something else.</p></div>'
        for i in range(3)
    )
    return f"<html><body><main>{''.join(parts)}</main><aside>{teasers}</aside></body></html>"


def test_the_article_block_gathers_every_part_of_a_split_body_in_order() -> None:
    from digest.collect.extract import _densest_block, _parse

    block = _densest_block(_parse(_split_page()))
    parts = [re.search(r"Part (\d)", piece) for piece in block]
    assert [m.group(1) for m in parts if m] == ["1", "1", "2", "2", "3", "3"]
    assert not any("Another story" in piece or "Advertisement" in piece for piece in block)


def test_a_partial_extraction_is_rescued_only_from_its_own_block() -> None:
    from digest.collect.extract import _densest_block, _parse, _rescued

    block = _densest_block(_parse(_split_page()))
    whole = "\n".join(block)
    first = "\n".join(block[:2])  # what an extractor stopped by the first ad keeps
    assert _rescued(first, block) == whole
    # Most of the block already kept: left alone (the clean-up may have cut the rest).
    assert _rescued("\n".join(block[:4]), block) == "\n".join(block[:4])
    # Text from elsewhere on the page is never swapped for this block.
    elsewhere = "A different article about the harbour, the ferries and the night boats."
    assert _rescued(elsewhere, block) == elsewhere
    assert _rescued("", block) == ""


def test_a_body_cut_by_advertisements_comes_back_whole() -> None:
    """trafilatura alone stops at the first advertisement here (as on wired.com)."""
    text = extract_page(_split_page(), "https://news.example.com/tram").text
    parts = re.findall(r"Part \d", text)
    assert parts == ["Part 1", "Part 1", "Part 2", "Part 2", "Part 3", "Part 3"]
    assert "Advertisement" not in text and "Another story" not in text


# -- one <article> holding the page's prose ------------------------------------------

_STORY = "".join(
    f"<p>The harbour authority said on Monday that the night ferries would run again "
    f"from March, after a winter of repairs to the northern pier. Paragraph {n}.</p>"
    for n in range(6)
)


def _article_page(*, outside: str = "", articles: int = 1) -> str:
    body = "".join(f"<article><h1>Ferries return</h1>{_STORY}</article>" for _ in range(articles))
    nav = "<nav><ul><li><a href='/'>Home</a></li><li><a href='/news'>News</a></li></ul></nav>"
    teasers = "<aside><h3>Most read</h3><p>Another story about the budget.</p></aside>"
    return f"<html><body>{nav}<main>{outside}{body}</main>{teasers}</body></html>"


def test_the_one_article_holding_the_prose_becomes_the_whole_body() -> None:
    from digest.collect.extract import _focus_article, _parse

    tree = _parse(_article_page())
    assert _focus_article(tree)
    body = tree.find("body")
    assert [child.tag for child in body] == ["article"]
    assert "Most read" not in body.text_content() and "Paragraph 5." in body.text_content()
    assert not _focus_article(tree)  # already done: nothing left to cut

    page = extract_page(_article_page(), "https://news.example.com/ferries")
    assert all(f"Paragraph {n}." in page.text for n in range(6))
    assert "budget" not in page.text


def test_an_article_with_prose_outside_it_or_a_list_of_articles_is_left_alone() -> None:
    from digest.collect.extract import _focus_article, _parse

    standfirst = "".join(
        f"<p>Standfirst outside the article element, sentence {n}, with many more words "
        "that belong to the story the reader came for and must not be lost.</p>"
        for n in range(4)
    )
    tree = _parse(_article_page(outside=standfirst))  # under 80% of the prose inside
    assert not _focus_article(tree)
    assert "Standfirst outside" in tree.find("body").text_content()

    tree = _parse(_article_page(articles=2))  # a front page of teasers
    assert not _focus_article(tree)
    assert len(tree.xpath("//article")) == 2


def test_the_article_rule_on_the_shipped_real_pages() -> None:
    """The demo's news pages: one <article> each, beside a "Recent Posts" list."""
    from digest.collect.extract import _focus_article, _parse

    sample = Path(__file__).resolve().parent.parent / "digest" / "sample"
    xiaomi = (sample / "xiaomi-ev-us-sanctions.html").read_bytes()
    tree = _parse(xiaomi)
    assert _focus_article(tree)  # 80 % of the page's prose is the story
    assert "Two independent research groups" not in tree.find("body").text_content()
    page = extract_page(xiaomi, "https://news.example.com/sample/xiaomi-ev-us-sanctions.html")
    assert "Lei Jun" in page.text and "Two independent research groups" not in page.text

    # A short story beside long teasers: most prose is outside its <article>; untouched.
    short = (sample / "globalfoundries-intel.html").read_bytes()
    tree = _parse(short)
    assert not _focus_article(tree)
    assert "Two independent research groups" in tree.find("body").text_content()


# --- a page flattened into one paragraph ------------------------------------------------

PANARMENIAN = DATA / "pages" / "panarmenian-tables.html.gz"


def test_a_page_laid_out_in_tables_comes_back_in_paragraphs_without_its_neighbours() -> None:
    """trafilatura's default pass returns this real page as one run of 516 words."""
    import trafilatura

    html = gzip.decompress(PANARMENIAN.read_bytes())
    url = "http://www.panarmenian.net/eng/news/275221/"
    plain = trafilatura.extract(html, url=url, fast=True, include_comments=False) or ""
    assert len(plain.splitlines()) == 1 and len(plain.split()) > 400  # what it undoes
    page = extract_page(html, url)
    paragraphs = page.text.split("\n\n")
    assert len(paragraphs) >= 6
    assert "Verified video footage, eyewitness testimony" in page.text
    assert "Philip Luther, Research and Advocacy Director" in page.text
    # The headlines of other stories that the flat text ran together with it.
    assert "Armenia named most popular spot for Russian travelers" not in page.text
    assert "Kim Kardashian" not in page.text


def test_only_one_long_paragraph_and_nothing_else_counts_as_flattened() -> None:
    from digest.collect.extract import FLAT_WORDS, _flattened

    long = " ".join(["word"] * FLAT_WORDS)
    assert _flattened(long) and _flattened(f"\n{long}\n")
    assert not _flattened(f"{long}\nA second paragraph.")  # a long paragraph in a story
    assert not _flattened(" ".join(["word"] * (FLAT_WORDS - 1)))  # a short story


def test_a_page_laid_out_in_a_table_loses_the_table_bars_but_real_tables_keep_them() -> None:
    """trafilatura writes table rows as "| cell | cell |"; an article in a layout cell
    must not reach a summary as "| The council said ..."."""
    para = "The regional rail operator said on Monday that it will add forty trains."
    html = (
        f"<html><body><table><tr><td></td><td>{para} {para}</td></tr></table>"
        "<table><tr><th>Line</th><th>Trains</th></tr><tr><td>North</td><td>12</td></tr>"
        "</table></body></html>"
    )
    lines = extract_page(html, "https://news.example.com/rail").text.split("\n\n")
    assert lines[0] == f"{para} {para}"
    assert "| Line | Trains |" in lines and "| North | 12 |" in lines
    # As the lines of a real space-news page laid out in tables came out of trafilatura.
    row = "| | Seeking a bigger role for a big rocket by Jeff Foust Monday, November 18, 2019 |"
    assert clean_lines([row]) == [row.strip("| ")]
    assert clean_lines(["|---|---|", "| a | b |"]) == ["|---|---|", "| a | b |"]


# --- lines after the article's block -------------------------------------------------


def _real(name: str) -> bytes:
    return gzip.decompress((DATA / "pages" / name).read_bytes())


@pytest.mark.parametrize(
    ("name", "url", "last", "gone"),
    [
        (
            "inexhibit-related.html.gz",
            "https://www.inexhibit.com/marker/milan-design-week-2018-michael-anastassiades-"
            "light-installation-flos/",
            "9.30 A.M. / 7.00 P.M.",
            "Seiko’s ‘The Flow of Time’ at the Triennale",
        ),
        (
            "ascom-about-us.html.gz",
            "https://www.ascom.com/news-and-events/Ascom-business-news/ascom-and-draeger-"
            "introduce-integrated-clinical-alarm-management-solution-in-north-america-to-"
            "improve-patient-care.html",
            "Rob Goldman, President Ascom North America, says:",
            "Ascom is headquartered in Baar (Switzerland)",
        ),
    ],
)
def test_lines_after_the_articles_block_are_cut(name: str, url: str, last: str, gone: str) -> None:
    """Related headlines and the company's "About us", on real pages."""
    html = _real(name)
    kept = extract_page(html, url).text.split("\n\n")
    assert kept[-1].startswith(last)
    assert gone not in "\n".join(kept)
    # ... and it is this rule that does it.
    assert gone in extract_page(html, url, rules=RULES - {"after-block"}).text


def test_a_list_that_ends_the_story_inside_its_block_is_kept() -> None:
    """The story's own closing list ("- Wales (Group E): ...") is part of its block."""
    url = (
        "https://www.cbssports.com/soccer/news/uefa-euro-2020-qualifying-tracking-every-"
        "team-to-clinch-a-spot-as-wales-punches-ticket/"
    )
    html = _real("cbssports-closing-list.html.gz")
    text = extract_page(html, url).text
    assert text == extract_page(html, url, rules=RULES - {"after-block"}).text
    assert text.endswith("- Wales (Group E): Second appearance")


def test_the_block_must_hold_most_of_the_text_before_anything_is_cut() -> None:
    from digest.collect.extract import BLOCK_SHARE, _cut_after_block

    story = [
        "The council approved the new budget on Tuesday after a debate of six hours.",
        "Spending on public transport doubles over the next five years, the mayor said.",
    ]
    tail = ["Another story's headline", "Footer"]
    assert _cut_after_block([*story, *tail], story) == story
    # The block is a minority of the text: it is not the article, nothing is cut.
    other = ["A long paragraph from outside the block with many more words in it " * 3]
    assert BLOCK_SHARE > 0.5
    assert _cut_after_block([*story, *other], story) == [*story, *other]
    assert _cut_after_block(story, []) == story
