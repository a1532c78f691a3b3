"""Feed parsing (RSS 0.9x/1.0/2.0, Atom, JSON Feed), text cleaning and URL/title keys."""

from __future__ import annotations

import importlib.abc
import json
import logging
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest.collect.feeds import canonical_url, parse_feed, title_key
from digest.errors import FetchError
from digest.models import Entry
from digest.text.clean import html_to_text, one_line

DATA = Path(__file__).parent / "data" / "feeds"
NOW = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)


def parse(
    body: bytes | str,
    base: str = "https://feeds.example/f/feed.xml",
    content_type: str | None = None,
) -> list[Entry]:
    raw = body.encode("utf-8") if isinstance(body, str) else body
    return parse_feed(raw, source="src", base_url=base, content_type=content_type, now=NOW)


def rss(items: str, decl: str = '<?xml version="1.0"?>') -> str:
    return (
        f'{decl}<rss version="2.0"><channel><title>T</title><link>https://site.example/</link>'
        f"{items}</channel></rss>"
    )


# --- formats ------------------------------------------------------------------------------


def test_rss2_fields() -> None:
    entries = parse(
        (DATA / "rss2.xml").read_bytes(),
        base="https://city.example/feeds/main.xml",
        content_type="application/rss+xml",
    )
    budget, buses, js = entries
    assert budget.source == "src"
    assert budget.guid == "city-budget-2026"
    assert budget.url == "https://city.example/news/budget.html"  # relative link made absolute
    assert budget.title == "Council doubles transport budget & more"
    assert budget.summary == "The council approved a new budget. It doubles spending."
    assert "<em>new</em>" in budget.content_html
    assert budget.published == datetime(2026, 11, 24, 17, 30, tzinfo=UTC)
    assert budget.author == "Jane Reporter"
    assert budget.image == "https://city.example/feeds/img/budget.jpg"
    # No guid: the link stands in for it.
    assert buses.guid == buses.url == "https://city.example/news/night-buses"
    assert buses.image == "https://cdn.city.example/thumb.jpg"
    # A javascript: link is dropped, never kept as the URL.
    assert js.url == "" and js.title == "Click me"


def test_a_feed_is_parsed_without_looking_for_a_missing_xml_driver(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """feedparser's preferred SAX driver is never installed: asking costs a path search."""
    asked: list[str] = []

    class Recorder(importlib.abc.MetaPathFinder):
        def find_spec(self, name: str, *_args: object) -> None:
            asked.append(name)

    monkeypatch.setattr(sys, "meta_path", [Recorder(), *sys.meta_path])
    entries = parse(rss("<item><title>One</title><link>https://a.example/1</link></item>"))
    assert [e.title for e in entries] == ["One"]
    assert "drv_libxml2" not in asked


def test_atom_fields() -> None:
    first, second = parse(
        (DATA / "atom.xml").read_bytes(),
        base="https://science.example/feed",
        content_type="application/atom+xml",
    )
    assert first.url == "https://science.example/2026/batteries.html"  # xml:base honoured
    assert first.title == "Batteries charge faster"
    assert first.guid == "tag:science.example,2026:batteries"
    assert first.published == datetime(2026, 11, 24, 7, 15, tzinfo=UTC)
    assert first.author == "Dr. Ada Volt"
    assert first.image == "https://science.example/img/cell.png"
    assert 'href="https://science.example/refs"' in first.content_html
    # Only <updated>: that date is used.
    assert second.published == datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def test_rss1_rdf() -> None:
    (entry,) = parse((DATA / "rss1.xml").read_bytes(), base="https://rdf.example/rss")
    assert entry.title == "RDF item one"
    assert entry.url == "https://rdf.example/a"
    assert entry.published == datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    assert entry.author == "Tim"


def test_rss091_without_dates() -> None:
    body = (
        '<?xml version="1.0"?><rss version="0.91"><channel><title>Old</title>'
        "<link>https://old.example/</link><item><title>Ancient format</title>"
        "<link>https://old.example/1</link></item></channel></rss>"
    )
    (entry,) = parse(body)
    assert (entry.title, entry.url, entry.published) == (
        "Ancient format",
        "https://old.example/1",
        None,
    )


def test_json_feed_tolerates_wrong_types(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        entries = parse(
            (DATA / "jsonfeed.json").read_bytes(),
            base="https://sport.example/feed.json",
            content_type="application/feed+json",
        )
    by_guid = {e.guid: e for e in entries}
    cup = by_guid["sport-1"]
    assert cup.url == "https://sport.example/match/final"
    assert cup.title == "Local team wins the cup"
    assert cup.published == datetime(2026, 11, 24, 19, 0, tzinfo=UTC)
    assert cup.author == "Sam Striker"
    assert cup.image == "https://sport.example/img/cup.jpg"
    assert "<script>" not in cup.content_html and "The local team won." in cup.content_html
    # Numeric id, no title: the title comes from the text; the feed's author fills in.
    tennis = by_guid["42"]
    assert tennis.title.startswith("A tennis story without a title")
    assert tennis.author == "Sport Desk"
    assert tennis.published == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    # Wrong-typed fields are skipped one by one; external_url stands in for url.
    odd = by_guid["https://elsewhere.example/story"]
    assert odd.url == "https://elsewhere.example/story"
    assert odd.published is None and odd.image is None
    # A data: URL is dropped; an item with nothing usable is dropped.
    assert by_guid["data-link"].url == ""
    assert "empty" not in by_guid
    assert len(entries) == 4
    assert "item 2 is not an object" in caplog.text


def test_json_feed_10_author_and_sniffed_without_content_type() -> None:
    doc = {
        "version": "https://jsonfeed.org/version/1",
        "title": "x",
        "items": [
            {"id": "1", "url": "https://a.example/1", "title": "One", "author": {"name": "Al"}}
        ],
    }
    (entry,) = parse(json.dumps(doc), content_type="text/plain")
    assert entry.author == "Al" and entry.title == "One"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('{"title": "no version", "items": []}', "not a feed: JSON without a JSON Feed version"),
        ('{"version": "https://jsonfeed.org/version/1.1", "items": {}}', '"items" list'),
        ('{"version": ', "invalid JSON"),
        ("[1, 2]", "not a feed"),
    ],
)
def test_json_errors(body: str, reason: str) -> None:
    with pytest.raises(FetchError, match=reason):
        parse(body, content_type="application/feed+json")


# --- encodings ----------------------------------------------------------------------------

RU_TITLE = "Новости дня: правительство утвердило бюджет"
RU_TEXT = (
    "Министерство финансов сообщило, что новый бюджет предусматривает рост расходов "
    "на образование и здравоохранение."
)
JA_TITLE = "東京で新しい美術館が開館しました"
JA_TEXT = (
    "東京都内に新しい現代美術館が開館し、初日から多くの来場者が訪れました。"
    "展示には国内外の作品が含まれています。"
)
FR_TITLE = "Café crème à la française"
FR_TEXT = (
    "Le célèbre café parisien a rouvert ses portes après des années de travaux, "
    "à la grande joie des habitués du quartier."
)


def one_item(title: str, text: str) -> str:
    return f"<item><title>{title}</title><link>/a</link><description>{text}</description></item>"


@pytest.mark.parametrize("content_type", ["application/rss+xml", "text/xml", None])
def test_koi8r_undeclared(content_type: str | None) -> None:
    body = rss(one_item(RU_TITLE, RU_TEXT)).encode("koi8-r")
    (entry,) = parse(body, content_type=content_type)
    assert entry.title == RU_TITLE
    assert entry.summary == RU_TEXT


def test_shift_jis_undeclared() -> None:
    body = rss(one_item(JA_TITLE, JA_TEXT)).encode("shift_jis")
    (entry,) = parse(body, content_type="application/rss+xml")
    assert entry.title == JA_TITLE
    assert entry.summary == JA_TEXT


def test_latin1_sent_as_utf8() -> None:
    body = rss(one_item(FR_TITLE, FR_TEXT), decl='<?xml version="1.0" encoding="utf-8"?>')
    (entry,) = parse(body.encode("latin-1"), content_type="application/rss+xml; charset=utf-8")
    assert entry.title == FR_TITLE
    assert entry.summary == FR_TEXT


def test_declared_encoding_is_used() -> None:
    body = rss(one_item(RU_TITLE, RU_TEXT), decl='<?xml version="1.0" encoding="windows-1251"?>')
    (entry,) = parse(body.encode("windows-1251"), content_type="application/xml")
    assert entry.title == RU_TITLE


# --- cleaning -----------------------------------------------------------------------------


def test_title_html_is_cleaned() -> None:
    items = "".join(
        [
            "<item><title>Hello &lt;script&gt;alert(1)&lt;/script&gt; world</title>"
            "<link>https://a.example/1</link></item>",
            "<item><title><![CDATA[Hello <script>alert(1)</script> world]]></title>"
            "<link>https://a.example/2</link></item>",
            "<item><title>Tom &amp;amp; Jerry\u202e\u2066 &#8211;\tnew\nline\x01</title>"
            "<link>https://a.example/3</link></item>",
            f"<item><title>{'word ' * 100}</title><link>https://a.example/4</link></item>",
        ]
    )
    first, second, third, long = parse(rss(items))
    assert first.title == "Hello world"
    assert second.title == "Hello world"
    assert third.title == "Tom & Jerry – new line"
    assert len(long.title) <= 300 and long.title.endswith("word…")


def test_summary_is_capped_and_plain() -> None:
    text = "<p>" + "sentence with words. " * 200 + "</p>"
    (entry,) = parse(
        rss(
            f"<item><title>t</title><link>/x</link><description><![CDATA[{text}]]></description></item>"
        )
    )
    assert len(entry.summary) <= 1000 and entry.summary.endswith("…")
    assert "<" not in entry.summary


def test_future_dates_become_none_and_one_day_is_tolerated() -> None:
    soon = (NOW + timedelta(hours=20)).strftime("%a, %d %b %Y %H:%M:%S +0000")
    late = (NOW + timedelta(days=3)).strftime("%a, %d %b %Y %H:%M:%S +0000")
    items = (
        f"<item><title>a</title><link>/a</link><pubDate>{soon}</pubDate></item>"
        f"<item><title>b</title><link>/b</link><pubDate>{late}</pubDate></item>"
    )
    a, b = parse(rss(items))
    assert a.published == NOW + timedelta(hours=20)
    assert b.published is None


def test_image_must_be_http() -> None:
    items = (
        "<item><title>a</title><link>/a</link>"
        '<enclosure url="javascript:alert(1)" type="image/png" length="1"/></item>'
    )
    (entry,) = parse(rss(items))
    assert entry.image is None


def test_file_links_only_for_file_base() -> None:
    items = "<item><title>a</title><link>pages/a.html</link></item>"
    (local,) = parse(rss(items), base="file:///srv/feeds/feed.xml")
    assert local.url == "file:///srv/feeds/pages/a.html"
    file_item = "<item><title>b</title><link>file:///etc/passwd</link></item>"
    (remote,) = parse(rss(file_item), base="https://feeds.example/feed.xml")
    assert remote.url == ""


# --- not a feed ---------------------------------------------------------------------------


def test_html_page_is_not_a_feed_and_hint_names_its_feed() -> None:
    html = (
        "<!DOCTYPE html><html><head><title>Blog</title>"
        '<link rel="alternate" type="application/rss+xml" href="/feed.xml"></head>'
        "<body><p>Hello</p></body></html>"
    )
    with pytest.raises(FetchError) as info:
        parse(html, base="https://blog.example/", content_type="text/html")
    assert str(info.value).startswith("not a feed: the document is HTML")
    assert "https://blog.example/feed.xml" in str(info.value)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty document"),
        (b"  \n\t ", "empty document"),
        (b"<rss><channel><title>broken", "invalid XML"),
        (b"<rss version='2.0'>\n<channel><title>cut off", "invalid XML: line 2"),
        (b"<note><to>x</to></note>", "not a feed: no RSS, Atom or JSON Feed"),
        (b"plain text, not markup", "not a feed: the document is neither XML nor JSON"),
    ],
)
def test_not_a_feed(body: bytes, reason: str) -> None:
    with pytest.raises(FetchError, match=reason):
        parse(body)


def test_body_that_looks_like_a_path_is_not_opened(tmp_path: Path) -> None:
    # feedparser opens a *bytes* argument as a file name; the body must never be a path.
    feed = tmp_path / "secret.xml"
    feed.write_text(rss("<item><title>secret</title><link>https://a.example/</link></item>"))
    with pytest.raises(FetchError, match="not a feed"):
        parse(str(feed).encode())


def test_broken_feed_with_items_is_accepted(caplog: pytest.LogCaptureFixture) -> None:
    body = rss(
        "<item><title>Fish & Chips</title><link>https://a.example/1</link></item>"
        "<item><title>Second</title><link>https://a.example/2</link></item>"
    )
    with caplog.at_level(logging.WARNING):
        entries = parse(body)
    assert [e.title for e in entries] == ["Fish & Chips", "Second"]
    assert "not well-formed" in caplog.text


def test_empty_valid_feed_gives_no_entries() -> None:
    assert parse(rss("")) == []


# --- textclean ----------------------------------------------------------------------------


def test_html_to_text() -> None:
    assert html_to_text("Hello <script>alert(1)</script> world") == "Hello world"
    assert html_to_text("<style>p{color:red}</style><p>a</p><p>b</p>") == "a b"
    assert html_to_text("<noscript>enable js</noscript>x &amp; y &lt;z&gt;") == "x & y <z>"
    assert html_to_text("a<br>b<br/>c") == "a b c"
    assert html_to_text("plain  text\n\nhere") == "plain text here"
    assert html_to_text("") == ""


def test_one_line() -> None:
    assert one_line("a\r\nb\x00c\x85d\u202eе\u2066f\u200e", 100) == "a bcdеf"
    assert one_line("one two three four", 12) == "one two…"
    assert len(one_line("x" * 50, 10)) == 10
    assert one_line("short", 10) == "short"


# --- URL and title keys -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        (
            "HTTPS://News.Example.COM:443/a?utm_source=x&id=3&fbclid=y#frag",
            "https://news.example.com/a?id=3",
        ),
        ("http://example.com:80", "http://example.com/"),
        ("http://example.com:8080/p?b=2&a=1&ref=tw", "http://example.com:8080/p?b=2&a=1"),
        (
            "https://example.com/p?UTM_Campaign=z&gclid=1&mc_cid=2&mc_eid=3&igshid=4",
            "https://example.com/p",
        ),
        (
            "https://example.com/p?_hsenc=1&_hsmi=2&yclid=3&ref_src=4&q=%20x",
            "https://example.com/p?q=%20x",
        ),
        ("https://[2001:DB8::1]:8443/x", "https://[2001:db8::1]:8443/x"),
    ],
)
def test_canonical_url(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical


def test_title_key() -> None:
    assert title_key("Council doubles transport budget!") == title_key(
        "  council DOUBLES  transport budget "
    )
    assert title_key("Trump’s “plan” — explained") == title_key('Trump\'s "plan" - explained')
    assert title_key("Budget passes") != title_key("Budget fails")


def test_deeply_nested_json_is_an_error_not_a_crash() -> None:
    with pytest.raises(FetchError, match="invalid JSON"):
        parse(b"[" * 200_000, content_type="application/feed+json")
