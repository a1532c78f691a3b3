"""Property tests: random bytes, random XML and random Unicode through the whole pipeline.

parse → summarize → compose → render → message. Whatever comes in, no exception but a
`FetchError` escapes the parser, and what comes out passes the email-safety checks
with a clean one-line subject. Derandomized, so CI sees the same examples every run.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest import pipeline
from digest.collect.feeds import parse_feed
from digest.collect.merge import merge_article
from digest.config import Config, SiteConfig, SmtpConfig, SourceConfig
from digest.errors import FetchError
from digest.mail.message import build_template
from digest.models import Entry
from digest.render.emailsafety import check_email_html

NOW = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
FAST = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CONFIG = Config(
    path=Path("config.toml"),
    site=SiteConfig(name="Digest <b>&amp;", url="https://digest.example.org", timezone="UTC"),
    sources=(SourceConfig(name="S", url="https://s.example/feed"),),
    smtp=SmtpConfig(host="127.0.0.1", security="none", from_="D <d@digest.example.org>"),
)
# Controls, bidi and zero-width characters that must never reach a subject or title.
_INVISIBLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u200b\u200e\u200f\u2028\u2029\u202a-\u202e\u2060\u2066-\u2069\ufeff]"
)


def parse(body: bytes, content_type: str | None = None) -> list[Entry]:
    """Parse like the collector does; only a FetchError may come out."""
    try:
        return parse_feed(
            body,
            source="S",
            base_url="https://s.example/feed",
            content_type=content_type,
            now=NOW,
        )
    except FetchError as exc:
        assert str(exc) and "\n" not in str(exc)
        return []


def check_entry(entry: Entry) -> None:
    assert entry.title == entry.title.strip() and not _INVISIBLE.search(entry.title)
    assert len(entry.title) <= 300 and len(entry.summary) <= 1000
    # No markup survives: text such as "<A." (no closing ">") is not a tag; templates escape it.
    assert not re.search(r"<[a-zA-Z/!][^<>]*>", entry.title)
    if entry.url:
        assert urlsplit(entry.url).scheme in ("http", "https")
    if entry.image:
        assert urlsplit(entry.image).scheme in ("http", "https")
    if entry.published is not None:
        assert entry.published.tzinfo is not None and entry.published <= NOW + timedelta(days=1)


# --- random bytes ---------------------------------------------------------------------------

PREFIXES = [b"", b"\xef\xbb\xbf", b"\xff\xfe", b"<?xml version='1.0'?>", b"<rss", b"{", b"["]


@FAST
@given(
    prefix=st.sampled_from(PREFIXES),
    body=st.binary(max_size=2000),
    content_type=st.sampled_from([None, "application/rss+xml", "application/json", "text/html"]),
)
def test_random_bytes_never_crash_the_parser(
    prefix: bytes, body: bytes, content_type: str | None
) -> None:
    for entry in parse(prefix + body, content_type):
        check_entry(entry)


# --- random XML -----------------------------------------------------------------------------

TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=60) | st.sampled_from(
    [
        "Hello <script>alert(1)</script> world",
        "&lt;img src=x onerror=alert(1)&gt;",
        "&amp;lt;b&amp;gt;bold",
        "&#x110000; &#xD800; &#0; &bogus; &eacute;",
        "<![CDATA[<iframe src=javascript:alert(1)>",
        "]]>",
        "javascript:alert(1)",
        "\u202egnp.exe\u2066",
    ]
)
FEED_TAGS = [
    "title",
    "link",
    "description",
    "guid",
    "pubDate",
    "updated",
    "published",
    "summary",
    "content",
    "author",
    "enclosure",
    "media:content",
    "content:encoded",
]


@st.composite
def xml_fragments(draw: st.DrawFn, depth: int = 0) -> str:
    """A random, often ill-formed, fragment of feed-shaped XML."""
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["text", "elem", "cdata", "junk"] if depth < 3 else ["text"]))
        if kind == "text":
            parts.append(draw(TEXT))
        elif kind == "cdata":
            end = draw(st.sampled_from(["]]>", ""]))
            parts.append("<![CDATA[" + draw(TEXT) + end)
        elif kind == "junk":
            parts.append(draw(st.sampled_from(["<", "&", "</item>", "<item>", "<!--", "<?x"])))
        else:
            tag = draw(st.sampled_from(FEED_TAGS))
            attrs = draw(st.sampled_from(["", ' href="javascript:x"', ' url="/img.png"', " x"]))
            inner = draw(xml_fragments(depth + 1))
            close = draw(st.sampled_from([f"</{tag}>", f"</{tag}>", ""]))
            parts.append(f"<{tag}{attrs}>{inner}{close}")
    return "".join(parts)


@st.composite
def xml_feeds(draw: st.DrawFn) -> bytes:
    items = "".join(f"<item>{draw(xml_fragments())}</item>" for _ in range(draw(st.integers(0, 4))))
    shape = draw(st.sampled_from(["rss", "atom", "rdf"]))
    if shape == "rss":
        doc = f'<rss version="2.0"><channel><title>{draw(TEXT)}</title>{items}</channel></rss>'
    elif shape == "atom":
        doc = f'<feed xmlns="http://www.w3.org/2005/Atom">{items.replace("item>", "entry>")}</feed>'
    else:
        doc = (
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
            f'xmlns="http://purl.org/rss/1.0/"><channel/>{items}</rdf:RDF>'
        )
    data = doc.encode(draw(st.sampled_from(["utf-8", "utf-16", "latin-1"])), "replace")
    cut = draw(st.integers(0, len(data)))
    return data[: len(data) - cut // 4]  # sometimes cut short


@FAST
@given(xml_feeds())
def test_random_xml_never_crashes_the_parser(body: bytes) -> None:
    for entry in parse(body, "application/xml"):
        check_entry(entry)


# --- random Unicode titles and text through the whole pipeline ------------------------------

UNICODE = st.text(max_size=300)  # every code point, controls, bidi and surrogates included
SENTENCES = st.lists(
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=80),
    max_size=8,
).map(lambda ss: " ".join(s.strip() + "." for s in ss))


TRAPS = (
    '<p onclick="x()">Words <script>alert(1)</script> here. More <b>words</b> follow.</p>'
    '<img src="https://tracker.example/p.gif" width="1"><iframe src="https://e.example/">'
    '</iframe><form action="https://e.example/"></form><a href="javascript:alert(2)">x</a>'
)


def feed_with(items: list[tuple[str, str, str]]) -> bytes:
    """A JSON Feed (JSON carries any code point, even NUL) with (title, url, text) items."""
    return json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "items": [
                {
                    "id": f"id{i}",
                    "title": title,
                    "url": url,
                    "content_html": text,
                    "date_published": (NOW - timedelta(hours=i + 1)).isoformat(),
                }
                for i, (title, url, text) in enumerate(items)
            ],
        }
    ).encode()


def subject_of(data: bytes) -> str:
    head = data.split(b"\r\n\r\n", 1)[0]
    subject_lines = [line for line in head.split(b"\r\n") if line.lower().startswith(b"subject:")]
    assert len(subject_lines) == 1  # never a second Subject, never an injected header
    msg = message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return str(msg["Subject"])


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    items=st.lists(
        st.tuples(
            UNICODE,
            st.sampled_from(
                ["https://s.example/a", "javascript:alert(1)", "", "data:,x", "//x.example/p"]
            ),
            st.one_of(SENTENCES, UNICODE, st.just(TRAPS)),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_random_titles_and_text_become_a_safe_email(items: list[tuple[str, str, str]]) -> None:
    entries = parse(feed_with(items), "application/feed+json")
    for entry in entries:
        check_entry(entry)
    articles = [
        replace(merge_article(e, None, language="english"), first_seen=NOW, id=i)
        for i, e in enumerate(entries)
    ]
    issue = pipeline.compose_articles(CONFIG, articles, now=NOW)
    if issue is None:
        assert not articles
        return
    rendered = pipeline.render_email(CONFIG, issue, now=NOW)
    assert check_email_html(rendered.html) == []
    lowered = rendered.html.lower()
    for needle in ("<script", "javascript:", "onerror", "<iframe", "data:,"):
        assert needle not in lowered
    subject = rendered.subject
    assert subject == subject.strip() and not _INVISIBLE.search(subject)
    assert 0 < len(subject) <= CONFIG.render.max_subject
    assert CONFIG.smtp is not None
    data = build_template(rendered, smtp=CONFIG.smtp, site=CONFIG.site).render(
        to="reader@example.org",
        date="Wed, 25 Nov 2026 07:00:00 +0000",
        message_id="<1@digest.example.org>",
        token="T" * 32,
    )
    assert subject_of(data) == subject
