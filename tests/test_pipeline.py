"""End to end: feeds and pages on a real local HTTP server → stored articles → issue → HTML."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from digest import pipeline
from digest.config.load import load_config
from digest.models import TOKEN_PLACEHOLDER, Article
from digest.render.emailsafety import check_email_html
from digest.store import Store
from tests.httpserver import LocalHTTPServer, Response

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)

PARAGRAPHS = [
    "The city council approved a new budget on Tuesday that doubles spending on public transport "
    "over the next five years, the mayor's office said.",
    "The plan adds twelve bus lines, extends two tram routes to the northern suburbs and funds "
    "a night service that residents have requested for a decade.",
    "Council members voted 31 to 9 in favour after a debate that lasted more than six hours.",
    "Opposition members argued that the plan relies on optimistic forecasts of ticket revenue "
    "and could force cuts elsewhere if the economy slows.",
    "The transport authority expects construction of the tram extensions to begin next spring "
    "and to finish within three years.",
    "Residents can comment on the proposed bus routes at public meetings scheduled for January.",
]


def page(title: str, paragraphs: list[str], image: str | None = None) -> str:
    og = f'<meta property="og:image" content="{image}">' if image else ""
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f"<!doctype html><html><head><title>{title}</title>{og}</head><body>"
        "<nav><a href='/'>Home</a> <a href='/world/'>World</a></nav>"
        f"<article><h1>{title}</h1>{body}</article>"
        "<div class='share'>Share</div><p>Published by admin</p>"
        "<section class='comments'><h3>Comments</h3><p>First! Great article, thanks.</p></section>"
        "</body></html>"
    )


def rss(server: LocalHTTPServer, prefix: str, items: list[tuple[str, str, datetime | None]]) -> str:
    out = []
    for slug, title, when in items:
        date = f"<pubDate>{format_datetime(when)}</pubDate>" if when else ""
        out.append(
            f"<item><title>{title}</title><link>{server.url(f'/{prefix}/{slug}')}</link>"
            f"<guid>{prefix}-{slug}</guid>{date}"
            f"<description>Feed summary of {title}.</description></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{prefix}</title><link>{server.base}/</link>{''.join(out)}</channel></rss>"
    )


@pytest.fixture
def site(http_server: LocalHTTPServer, tmp_path: Path) -> tuple[LocalHTTPServer, Path]:
    s = http_server
    city = [
        ("budget", "Council doubles transport budget", NOW - timedelta(hours=3)),
        ("old", "An old story from last week", NOW - timedelta(days=8)),
        ("undated", "A story without a date", None),
    ]
    s.routes["/city/feed"] = Response(rss(s, "city", city), content_type="application/rss+xml")
    s.routes["/city/budget"] = Response(page("Council doubles transport budget", PARAGRAPHS))
    s.routes["/city/undated"] = Response(page("A story without a date", PARAGRAPHS[2:]))
    s.routes["/city/old"] = Response(page("An old story from last week", PARAGRAPHS))
    # A second source repeating one story (same title) and adding its own.
    sport = [
        ("dup", "Council doubles transport budget", NOW - timedelta(hours=2)),
        ("match", "Local team wins the cup final", NOW - timedelta(hours=1)),
    ]
    s.routes["/sport/feed.json"] = Response(
        json.dumps(
            {
                "version": "https://jsonfeed.org/version/1.1",
                "title": "Sport",
                "items": [
                    {
                        "id": f"sport-{slug}",
                        "url": s.url(f"/sport/{slug}"),
                        "title": title,
                        "date_published": when.isoformat(),
                        "summary": f"Summary of {title}.",
                    }
                    for slug, title, when in sport
                ],
            }
        ),
        content_type="application/feed+json",
    )
    s.routes["/sport/match"] = Response(
        page(
            "Local team wins the cup final",
            [
                "The local football team won the national cup final on Sunday evening, "
                "beating the defending champions two goals to one.",
                "The winning goal came in the final minute of extra time from a substitute.",
                "Thousands of supporters gathered in the main square to celebrate the victory.",
                "It is the club's first national trophy in more than forty years.",
            ],
        )
    )
    s.routes["/broken/feed"] = Response("oops", status=500, content_type="text/plain")
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f"""
[site]
name = "Test Digest"
url = "https://digest.example.org"
timezone = "Europe/Berlin"

[[sources]]
name = "City"
url = "{s.url("/city/feed")}"
priority = 1

[[sources]]
name = "Sport"
url = "{s.url("/sport/feed.json")}"

[[sources]]
name = "Broken"
url = "{s.url("/broken/feed")}"

[store]
url = "sqlite:///state.db"

[collect]
timeout = 2.0
deadline = 20.0
""",
        encoding="utf-8",
    )
    return s, cfg


def test_collect_compose_render(site: tuple[LocalHTTPServer, Path]) -> None:
    server, cfg_path = site
    config = load_config(cfg_path)
    store = Store.open(config.store.url)
    report = pipeline.collect_articles(config, store, now=NOW)

    by_source = {r.source: r for r in report.sources}
    assert by_source["Broken"].error and "500" in by_source["Broken"].error
    assert by_source["City"].ok and by_source["Sport"].ok
    # old story dropped; undated kept; duplicate title across sources kept once
    assert by_source["City"].new_articles == 2
    assert by_source["Sport"].new_articles == 1
    assert not any(path == "/city/old" for path, _ in server.requests)

    issue = pipeline.build_issue(config, store, now=NOW)
    assert issue is not None
    titles = [s.article.title for s in issue.stories]
    assert titles.count("Council doubles transport budget") == 1
    assert "Local team wins the cup final" in titles
    assert issue.date == "2026-11-25"
    # The lead story's summary is whole sentences from its page, not boilerplate.
    lead = issue.lead
    assert 1 <= len(lead.sentences) <= 3
    page_text = " ".join(PARAGRAPHS)
    if lead.article.title == "Council doubles transport budget":
        assert all(s in page_text for s in lead.sentences)
    assert all(
        s != "Share" and "Published by" not in s for st in issue.stories for s in st.sentences
    )

    rendered = pipeline.render_email(config, issue, now=NOW)
    assert check_email_html(rendered.html) == []
    assert TOKEN_PLACEHOLDER in rendered.html and TOKEN_PLACEHOLDER in rendered.text
    assert "Council doubles transport budget" in rendered.text
    # The lead's headline (and one more when both fit); the site's name is in From only.
    assert rendered.subject.startswith(issue.lead.article.title)
    assert "Test Digest" not in rendered.subject and len(rendered.subject) <= 70
    assert "First! Great article" not in rendered.html


def test_second_run_adds_nothing_and_issued_articles_never_return(
    site: tuple[LocalHTTPServer, Path],
) -> None:
    _, cfg_path = site
    config = load_config(cfg_path)
    store = Store.open(config.store.url)
    pipeline.collect_articles(config, store, now=NOW)
    again = pipeline.collect_articles(config, store, now=NOW + timedelta(minutes=5))
    assert again.new_articles == 0

    stored = pipeline.ensure_issue(config, store, now=NOW + timedelta(minutes=10))
    assert stored.date == "2026-11-25"
    assert pipeline.ensure_issue(config, store, now=NOW + timedelta(hours=1)).id == stored.id
    # The next day nothing from that issue is offered again.
    tomorrow = NOW + timedelta(days=1)
    pipeline.collect_articles(config, store, now=tomorrow)
    assert pipeline.build_issue(config, store, now=tomorrow) is None


def test_conditional_get_remembered(site: tuple[LocalHTTPServer, Path]) -> None:
    server, cfg_path = site

    def feed_with_etag(handler: object) -> Response:
        headers = dict(getattr(handler, "headers").items())  # noqa: B009
        if headers.get("If-None-Match") == '"v1"':
            return Response(b"", status=304)
        return Response(
            rss(server, "city", [("budget", "Council doubles transport budget", NOW)]),
            headers={"ETag": '"v1"'},
            content_type="application/rss+xml",
        )

    server.routes["/city/feed"] = feed_with_etag
    config = load_config(cfg_path)
    store = Store.open(config.store.url)
    pipeline.collect_articles(config, store, now=NOW)
    pipeline.collect_articles(config, store, now=NOW + timedelta(minutes=30))
    feed_requests = [h for p, h in server.requests if p == "/city/feed"]
    assert len(feed_requests) == 2
    assert feed_requests[1].get("If-None-Match") == '"v1"'
    assert store.source_states()["City"].last_error is None


def test_preview_on_shipped_config_offline(tmp_path: Path) -> None:
    """The README's demo: `digest preview` on the shipped config, no network needed."""
    cfg = tmp_path / "config.toml"
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    text = text.replace('url = "digest/sample/feed.xml"', f'url = "{ROOT}/digest/sample/feed.xml"')
    cfg.write_text(text, encoding="utf-8")
    out = tmp_path / "preview.html"
    doc_path = tmp_path / "issue.json"
    env = {**os.environ, "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
    res = subprocess.run(
        [sys.executable, "-m", "digest", "--config", str(cfg), "preview", "--out", str(out)]
        + ["--json", str(doc_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr + res.stdout
    html = out.read_text(encoding="utf-8")
    assert "Xiaomi" in html
    # One source, six stories: three in the email (max_per_source), three more in the archive.
    assert "and 3 more stories" in html and "/archive/" in html
    doc = json.loads(doc_path.read_text(encoding="utf-8"))
    assert len(doc["stories"]) == 2 and len(doc["more"]) == 3
    urls = [s["url"] for s in [doc["lead"], *doc["stories"], *doc["more"]]]
    assert len(set(urls)) == 6 and any("lithium-sulfur" in u for u in urls)
    assert "Why this lead" in res.stdout and "runner-up" in res.stdout
    assert check_email_html(html) == []
    assert "https://news.example.com/sample/xiaomi-ev-us-sanctions.html" in html
    text_part = out.with_suffix(".txt").read_text(encoding="utf-8")
    assert "Lei Jun" in text_part
    assert "Example News" in res.stdout


def test_feed_text_fallback_drops_what_every_item_repeats(
    http_server: LocalHTTPServer, tmp_path: Path
) -> None:
    # A podcast feed: no pages, every episode's description ends with the same line. Only
    # one episode is new today, so the check has to look at the whole feed.
    signature = "Die wichtigsten Nachrichten aus der SPIEGEL-Redaktion."
    items = []
    for n, hours in ((1, 2), (2, 30), (3, 54), (4, 78)):
        when = format_datetime(NOW - timedelta(hours=hours))
        items.append(
            f"<item><title>Folge {n}: Die Lage am Morgen</title><guid>ep-{n}</guid>"
            f"<link>{http_server.url(f'/ep/{n}')}</link><pubDate>{when}</pubDate>"
            f"<description>In Folge {n} sprechen wir über die Wahl in Sachsen und ihre "
            f"Folgen für die Regierung in Berlin. {signature}</description></item>"
        )
    http_server.routes["/podcast"] = Response(
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Lage</title>'
        f"<link>{http_server.base}/</link>{''.join(items)}</channel></rss>",
        content_type="application/rss+xml",
    )
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f"""
[site]
name = "Test Digest"
url = "https://digest.example.org"
timezone = "Europe/Berlin"
language = "de"

[[sources]]
name = "Podcast"
url = "{http_server.url("/podcast")}"
fetch_pages = false
language = "german"

[store]
url = "sqlite:///state.db"
""",
        encoding="utf-8",
    )
    config = load_config(cfg)
    store = Store.open(config.store.url)
    report = pipeline.collect_articles(config, store, now=NOW)
    assert report.new_articles == 1
    issue = pipeline.build_issue(config, store, now=NOW)
    assert issue is not None
    article = issue.lead.article
    assert signature not in article.text and signature not in article.feed_summary
    assert issue.lead.sentences == (
        "In Folge 1 sprechen wir über die Wahl in Sachsen und ihre Folgen für die Regierung "
        "in Berlin.",
    )


def test_roundup_item_without_a_sentence_that_stands_alone_shows_its_title_alone(
    tmp_path: Path,
) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        '[site]\nname = "T"\nurl = "https://t.example"\ntimezone = "UTC"\n\n'
        '[[sources]]\nname = "S"\nurl = "https://s.example/feed"\n\n'
        '[store]\nurl = "sqlite:///state.db"\n',
        encoding="utf-8",
    )
    config = load_config(cfg)

    def article(n: int, text: str, feed_summary: str) -> Article:
        return Article(
            source="S",
            guid=f"g{n}",
            url=f"https://s.example/{n}",
            title=f"Story number {n} of the day",
            text=text,
            feed_summary=feed_summary,
            published=NOW - timedelta(hours=n),
        )

    pointing = "In a new case study out Monday, they detail how the man lost his savings."
    issue = pipeline.compose_articles(
        config,
        [
            article(1, " ".join(PARAGRAPHS), ""),
            article(2, pointing, "to her Instagram page to share some stunning photos of herself."),
        ],
        now=NOW,
    )
    assert issue is not None
    (item,) = issue.roundup
    assert item.sentences == () and item.article.feed_summary == ""
    text = pipeline.render_email(config, issue, now=NOW).text
    assert "Story number 2 of the day" in text
    assert "they detail" not in text and "Instagram" not in text
