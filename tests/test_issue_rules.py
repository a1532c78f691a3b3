"""Issue 13 end to end: redo before sending, link-less and undated items, titles, archive."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from digest import pipeline
from digest.cli import cli
from digest.collect.feeds import parse_feed
from digest.collect.titles import best_title, clean_title
from digest.config.load import load_config
from digest.models import Article, Issue, Story
from digest.render import make_environment, render_issue
from digest.store import Store
from digest.text.storytime import fill_times
from digest.web import create_app
from tests import configfile
from tests.smtpserver import LocalSMTPServer
from tests.test_web import LocalWebServer

NOW = datetime.now(tz=UTC)
TEXT = (
    "The harbour authority said on Monday that the new ferry terminal will open in March. "
    "Officials expect 4,000 passengers a day once the second pier is finished next year."
)


def feed_file(tmp_path: Path, items: Sequence[tuple[str, str, str, datetime | None]]) -> Path:
    """Write an RSS file of (link, title, description, date) items; "" link = no <link>."""
    parts = []
    for i, (link, title, desc, when) in enumerate(items):
        parts.append(
            "<item>"
            + (f"<link>{link}</link><guid>{link}</guid>" if link else "")
            + f"<title>{title}</title><description>{desc} {TEXT} ({i})</description>"
            + (f"<pubDate>{format_datetime(when)}</pubDate>" if when else "")
            + "</item>"
        )
    path = tmp_path / "feed.xml"
    path.write_text(
        "<rss version='2.0'><channel><title>Harbour News</title>"
        + "".join(parts)
        + "</channel></rss>",
        encoding="utf-8",
    )
    return path


def config_for(tmp_path: Path, *, extra: str = "", smtp_port: int | None = None) -> Path:
    items = [
        (
            f"https://harbour.example.com/story-{i}",
            f"Ferry story {i}",
            f"Story {i}.",
            NOW - timedelta(hours=i),
        )
        for i in range(6)
    ]
    return configfile.write_config(
        tmp_path,
        source=str(feed_file(tmp_path, items)),
        source_name="Harbour News",
        source_keys={"fetch_pages": False},
        smtp_port=smtp_port,
        extra=extra,
    )


def run(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    return result.exit_code, result.output


# -- redo before sending ---------------------------------------------------------


def test_preview_composes_afresh_until_deliveries_then_the_issue_is_frozen(
    tmp_path: Path,
) -> None:
    config = config_for(tmp_path)
    out, doc = tmp_path / "p.html", tmp_path / "p.json"
    code, text = run(config, "preview", "--out", str(out), "--json", str(doc))
    assert code == 0, text
    first = json.loads(doc.read_text(encoding="utf-8"))
    assert len(first["stories"]) == 2 and len(first["more"]) == 3  # 3 per source, lead counts

    # A config change shows at once: nothing was stored by the preview.
    config.write_text(
        config.read_text(encoding="utf-8") + "[compose]\nmax_per_source = 5\n", encoding="utf-8"
    )
    code, text = run(config, "preview", "--out", str(out), "--json", str(doc), "--no-collect")
    assert code == 0, text
    assert len(json.loads(doc.read_text(encoding="utf-8"))["stories"]) == 4

    cfg = load_config(config)
    store = Store.open(cfg.store.url)
    stored = pipeline.ensure_issue(cfg, store, now=datetime.now(tz=UTC))
    assert len(stored.article_ids) == 6  # shown or not, every article is the issue's
    # Stored but never delivered: still composed afresh, and the CLI says what send will do.
    code, text = run(config, "preview", "--out", str(out), "--no-collect")
    assert code == 0 and "composed afresh" in text and "issue discard" in text

    store.add_subscriber("ann@example.org", now=NOW)
    assert store.ledger.ensure_deliveries(stored.id, now=NOW) == 1
    code, text = run(config, "preview", "--out", str(out), "--json", str(doc), "--no-collect")
    assert code == 0 and "frozen" in text
    assert json.loads(doc.read_text(encoding="utf-8"))["subject"] == stored.subject
    assert out.read_text(encoding="utf-8").count("Ferry story") >= 1

    code, text = run(config, "issue", "discard", "--date", stored.date)
    assert code == 1 and "frozen" in text and len(text.strip().splitlines()) == 1
    assert store.issue_for_date(stored.date) is not None
    store.close()


def test_issue_discard_frees_the_articles_for_the_next_issue(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    cfg = load_config(config)
    store = Store.open(cfg.store.url)
    now = datetime.now(tz=UTC)
    stored = pipeline.ensure_issue(cfg, store, now=now)
    assert store.unissued_articles(now - timedelta(days=2)) == []
    code, text = run(config, "issue", "discard", "--date", stored.date)
    assert code == 0 and "6 article(s) freed" in text
    assert store.issue_for_date(stored.date) is None
    assert len(store.unissued_articles(now - timedelta(days=2))) == 6
    again = pipeline.ensure_issue(cfg, store, now=now)
    assert sorted(again.article_ids) == sorted(stored.article_ids)
    code, text = run(config, "issue", "discard", "--date", "2001-01-01")
    assert code == 1 and "no issue stored for 2001-01-01" in text
    code, text = run(config, "issue", "discard", "--date", "yesterday")
    assert code == 1 and "YYYY-MM-DD" in text
    store.close()


def test_a_test_send_is_composed_afresh_and_stores_nothing(tmp_path: Path) -> None:
    with LocalSMTPServer() as server:
        config = config_for(tmp_path, smtp_port=server.port)
        code, text = run(config, "send", "--to", "editor@example.org")
        assert code == 0, text
        assert len(server.messages) == 1
        cfg = load_config(config)
        store = Store.open(cfg.store.url)
        assert store.list_issues() == []  # a test send stores no issue
        config.write_text(
            config.read_text(encoding="utf-8") + '[render]\nsubject = "Harbour: {lead}"\n',
            encoding="utf-8",
        )
        code, text = run(config, "send", "--to", "editor@example.org")
        assert code == 0, text
        assert "Subject: Harbour: " in server.messages[-1].data.decode()
        store.close()


# -- link-less and undated items -------------------------------------------------


def test_items_without_links_keep_distinct_identities(tmp_path: Path) -> None:
    items = [("", "Service status", f"Update {i}: the ferry runs late.", None) for i in range(10)]
    entries = parse_feed(
        feed_file(tmp_path, items).read_bytes(), source="Status", base_url="file:///x.xml"
    )
    assert len({e.guid for e in entries}) == 10
    config = configfile.write_config(
        tmp_path,
        source=str(tmp_path / "feed.xml"),
        source_keys={"fetch_pages": False},
    )
    cfg = load_config(config)
    store = Store.open(cfg.store.url)
    report = pipeline.collect_articles(cfg, store, now=NOW)
    assert report.new_articles == 10
    # And the next run finds nothing new: each keeps its identity across runs.
    assert pipeline.collect_articles(cfg, store, now=NOW).new_articles == 0
    issue = pipeline.build_issue(cfg, store, now=NOW)
    assert issue is not None and len(issue.articles) == 10
    store.close()


def test_undated_items_show_no_relative_time() -> None:
    undated = Article(
        source="Status", guid="u", url="https://s.example.com/u", title="Undated note",
        text="The ferry runs late.", first_seen=NOW - timedelta(hours=5),
    )  # fmt: skip
    dated = Article(
        source="Harbour", guid="d", url="https://s.example.com/d", title="Dated story",
        text="The ferry runs late.", published=NOW - timedelta(hours=3), first_seen=NOW,
    )  # fmt: skip
    issue = Issue(
        site_name="S", site_url="https://s.example.com", date=NOW.date().isoformat(),
        created_at=NOW, lead=Story(dated, ("x.",)), roundup=(Story(undated, ("y.",)),),
    )  # fmt: skip
    out = render_issue(
        issue, env=make_environment(None), now=NOW, tz=UTC,
        unsubscribe_url="https://s.example.com/u", view_url="https://s.example.com/archive/x",
    )  # fmt: skip
    text = fill_times(out.text, UTC, now=NOW)  # worded as delivery does, at send time
    assert "3 hours ago" in text
    undated_meta = text.split("Undated note", 1)[1].split("\n\n", 1)[0]
    assert "Status" in undated_meta and "ago" not in undated_meta and "just now" not in text


# -- titles -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Blue Jays add reliever - Sportsnet.ca", "Blue Jays add reliever"),
        ("New gravel trail opens | MoreBikes", "New gravel trail opens"),
        ("Internet-Law » Court rules on linking", "Court rules on linking"),
        ("NASA adds five companies - SpaceNews.com", "NASA adds five companies"),
        ("Brexit: what happens now", "Brexit: what happens now"),
        ("COVID-19 cases rise - and fall", "COVID-19 cases rise - and fall"),
        ("Sportsnet", "Sportsnet"),  # never cut a title down to nothing
    ],
)
def test_site_names_are_cut_from_titles(title: str, expected: str) -> None:
    assert clean_title(title, ["Sportsnet", "MoreBikes", "Internet-Law"]) == expected


def test_a_generic_feed_title_gives_way_to_the_page_headline() -> None:
    names = ["Daily Photo", "The Daily Photo Blog"]
    assert (
        best_title("Photo", "Storm floods harbour | Daily Photo", names) == "Storm floods harbour"
    )
    assert best_title("", "Storm floods harbour", names) == "Storm floods harbour"
    assert best_title("Daily Photo", "Storm floods harbour", names) == "Storm floods harbour"
    assert best_title("Ferry delayed", "Something else", names) == "Ferry delayed"


# -- the archive -------------------------------------------------------------------


def test_archive_lists_more_stories_and_serves_the_json(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    cfg = load_config(config)
    store = Store.open(cfg.store.url)
    stored = pipeline.ensure_issue(cfg, store, now=datetime.now(tz=UTC))
    assert "and 3 more stories" in stored.html
    assert f"https://news.example.com/archive/{stored.date}#more" in stored.html
    with LocalWebServer(create_app(cfg, store)) as client:
        check_archive(client, stored.date)
    store.close()


def check_archive(client: httpx.Client, date: str) -> None:
    page = client.get(f"/archive/{date}")
    assert page.status_code == 200 and 'id="more"' in page.text
    doc = client.get(f"/archive/{date}.json").json()
    for story in doc["more"]:
        assert story["title"] in page.text and story["url"] in page.text
    urls = [s["url"] for s in [doc["lead"], *doc["stories"], *doc["more"]]]
    assert len(urls) == len(set(urls)) == 6
    assert client.get("/archive/2001-01-01.json").status_code == 404


def test_the_email_shows_section_headings_also_links_and_more_stories() -> None:
    def art(title: str, source: str) -> Article:
        slug = title.lower().replace(" ", "-")
        return Article(
            source=source, guid=slug, url=f"https://{source.lower()}.example.com/{slug}",
            title=title, text=TEXT, published=NOW - timedelta(hours=2),
        )  # fmt: skip

    lead = Story(
        art("Ferry terminal opens", "Harbour"), ("x.",), also=(art("Terminal", "Gazette"),)
    )
    roundup = (
        Story(art("Vote on budget", "City"), ("y.",), section="World"),
        Story(art("Mayor resigns", "Herald"), ("z.",), section="World"),
        Story(art("Chip plant", "Tech"), ("w.",), section="Technology"),
    )
    more = (Story(art("Minor note", "City"), ()), Story(art("Other note", "Tech"), ()))
    issue = Issue(
        site_name="S", site_url="https://s.example.com", date=NOW.date().isoformat(),
        created_at=NOW, lead=lead, roundup=roundup, more=more,
    )  # fmt: skip
    out = render_issue(
        issue, env=make_environment(None), now=NOW, tz=UTC,
        unsubscribe_url="https://s.example.com/u", view_url="https://s.example.com/archive/d",
    )  # fmt: skip
    assert out.html.count('class="section-heading"') == 2
    assert out.html.index(">World</h3>") < out.html.index(">Technology</h3>")
    assert 'href="https://gazette.example.com/terminal"' in out.html and "Also:" in out.html
    assert "and 2 more stories" in out.html and "https://s.example.com/archive/d#more" in out.html
    assert "WORLD" in out.text and "Also: Gazette" in out.text
    assert "and 2 more stories: https://s.example.com/archive/d#more" in out.text
