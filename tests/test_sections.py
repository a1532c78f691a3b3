"""Sections per reader: one render per distinct choice, only the chosen sections' stories."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from digest import pipeline
from digest.config import ComposeConfig, SourceConfig
from digest.mail.deliver import send_issue
from digest.models import Article
from digest.store import Store, StoredIssue
from digest.store.schema import issue_variants
from tests.smtpserver import LocalSMTPServer
from tests.test_web import make_config

NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
TEXT = (
    "The {topic} team announced a result on Tuesday after months of careful work. "
    "Researchers said the finding could change how the field approaches the problem. "
    "Independent experts called the work promising but asked for more data. "
    "The group plans to publish the full details next spring."
)


WORDS = [
    "harbour",
    "lantern",
    "orchard",
    "quarry",
    "meadow",
    "glacier",
    "canyon",
    "prairie",
    "tundra",
    "lagoon",
    "falcon",
    "otter",
    "badger",
    "heron",
    "salmon",
    "walrus",
    "beetle",
    "cricket",
    "lizard",
    "pigeon",
    "violin",
    "trumpet",
    "cello",
    "banjo",
    "flute",
    "organ",
    "drum",
    "harp",
    "oboe",
    "tuba",
]


def text_for(topic: str, i: int) -> str:
    """Return a distinct article text (stories that read alike would be grouped as one)."""
    seed = sum(map(ord, topic)) * 7 + i * 13
    words = [WORDS[(seed + k * 5) % len(WORDS)] for k in range(12)]
    return (
        f"The {topic} report {i} describes the {words[0]} near the {words[1]} in detail. "
        f"Officials said the {words[2]} and the {words[3]} changed after the {words[4]} study. "
        f"Residents compared the {words[5]} with the {words[6]} and the {words[7]} last week. "
        f"A {words[8]} survey of the {words[9]} follows, with the {words[10]} and {words[11]}."
    )


def config_with_sections(tmp_path: Path, port: int):  # type: ignore[no-untyped-def]
    return replace(
        make_config(tmp_path, port),
        sources=(
            SourceConfig(name="Tech Feed", url="https://a.example/feed", section="Technology"),
            SourceConfig(name="Lab Feed", url="https://b.example/feed", section="Science"),
            SourceConfig(name="Misc Feed", url="https://c.example/feed"),  # the first section
        ),
        compose=ComposeConfig(sections=("Technology", "Science")),
    )


def make_issue(store: Store, config) -> StoredIssue:  # type: ignore[no-untyped-def]
    items = []
    for source, topic, n in (
        ("Tech Feed", "chip", 3),
        ("Lab Feed", "physics", 2),
        ("Misc Feed", "gadget", 1),
    ):
        for i in range(n):
            items.append(
                (
                    Article(
                        source=source,
                        guid=f"{source}-{i}",
                        url=f"https://{topic}.example/{i}",
                        title=f"{topic.title()} story {i}",
                        text=text_for(topic, i),
                        published=NOW - timedelta(hours=i + 1),
                        first_seen=NOW,
                    ),
                    f"{topic} story {i}",
                )
            )
    articles = store.add_articles(items)
    issue = pipeline.compose_articles(config, articles, now=NOW)
    assert issue is not None
    rendered = pipeline.render_email(config, issue, now=NOW)
    return store.create_issue(
        date=issue.date,
        created_at=NOW,
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        preheader=rendered.preheader,
        article_ids=[s.article.id for s in issue.stories if s.article.id is not None],
    )


def titles(html: str) -> set[str]:
    return set(re.findall(r"(?:Chip|Physics|Gadget) story \d", html))


def test_a_reader_who_chose_one_section_gets_only_its_stories(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'digest.db'}")
    with LocalSMTPServer() as smtp:
        config = config_with_sections(tmp_path, smtp.port)
        issue = make_issue(store, config)
        readers = {
            "all@example.org": (),
            "science@example.org": ("Science",),
            "science2@example.org": ("Science",),
            "tech@example.org": ("Technology",),
            "both@example.org": ("Science", "Technology"),  # every section = the full issue
        }
        for email, sections in readers.items():
            sub, _ = store.add_subscriber(email, now=NOW)
            assert sub.id is not None
            store.set_preferences(sub.id, now=NOW, sections=sections)
        report = send_issue(store, issue, config, now=NOW)
        assert report.sent == 5
        got = {}
        for m in smtp.messages:
            html = m.parse().get_body(("html",))
            assert html is not None
            got[m.rcpt_tos[0]] = titles(html.get_content())
    everything = {f"Chip story {i}" for i in range(3)} | {"Physics story 0", "Physics story 1"}
    everything |= {"Gadget story 0"}
    assert got["all@example.org"] == everything
    assert got["both@example.org"] == everything
    assert (
        got["science@example.org"]
        == got["science2@example.org"]
        == {
            "Physics story 0",
            "Physics story 1",
        }
    )
    # Stories of a source without a section go in the first section.
    assert got["tech@example.org"] == {f"Chip story {i}" for i in range(3)} | {"Gadget story 0"}
    # One render per distinct choice, kept in the store: (Science) and (Technology).
    with store.db.begin() as conn:
        kept = sorted(conn.execute(sa.select(issue_variants.c.sections)).scalars())
    assert kept == ['["Science"]', '["Technology"]']
    store.close()


def test_a_choice_with_no_story_today_is_skipped_not_sent_the_full_issue(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'digest.db'}")
    with LocalSMTPServer() as smtp:
        config = config_with_sections(tmp_path, smtp.port)
        config = replace(config, compose=ComposeConfig(sections=("Technology", "Science", "Arts")))
        issue = make_issue(store, config)
        sub, _ = store.add_subscriber("arts@example.org", now=NOW)
        assert sub.id is not None
        store.set_preferences(sub.id, now=NOW, sections=("Arts",))
        store.add_subscriber("all@example.org", now=NOW)
        report = send_issue(store, issue, config, now=NOW)
        assert (report.sent, report.skipped) == (1, 1)
        assert smtp.handler.recipients() == ["all@example.org"]
        again = send_issue(store, issue, config, now=NOW)  # a re-run sends nothing more
        assert again.sent == 0 and smtp.handler.recipients() == ["all@example.org"]
    store.close()
