"""Compose's per-article work done ahead, in the extraction workers (digest.compose.prepare).

What the workers make must be exactly what the issue would make itself; the issue must
use it; a worker must not load a language's model for it. Processes started fresh where
the answer depends on what this test process loaded before.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from digest.compose import grouping, prepare
from digest.config import SummaryConfig
from digest.models import Article, Entry, Page

ROOT = Path(__file__).resolve().parent.parent

TEXT = "\n\n".join(
    [
        "The regional council voted on Tuesday to expand the tram network by 2030, adding "
        "three lines that connect the northern suburbs with the city centre.",
        "Officials said the plan would cost about 4 billion euros and create 12,000 jobs "
        "over the decade, most of them in construction and operations.",
        "Critics argued that the timetable was unrealistic given recent delays on other "
        "projects in the region, and asked for an independent review.",
        "A public consultation on the routes of the new lines will open in the spring.",
    ]
)


def _plan(entry: Entry, summary: SummaryConfig | None = None) -> prepare.Plan:
    summary = summary or SummaryConfig()
    return prepare.Plan(
        entry=entry,
        source_name="City",
        source_language=None,
        repeated=frozenset(),
        fallback_language="english",
        summary=summary,
        sizes=prepare.sizes(summary),
    )


def _page(text: str = TEXT, language: str = "en") -> Page:
    return Page(url="https://news.example.com/trams", title="Trams", text=text, language=language)


def _entry() -> Entry:
    return Entry(
        source="City",
        guid="g1",
        url="https://news.example.com/trams",
        title="Council votes to expand the tram network",
        published=datetime(2026, 11, 25, 8, tzinfo=UTC),
    )


def test_what_a_worker_prepares_is_what_the_issue_would_compute() -> None:
    prepare.warm()  # as the forkserver does: English tools loaded before the work
    plan = _plan(_entry())
    made = prepare.prepare(_page(), plan)
    article = prepare.merged(plan, _page())
    assert [key for key, _ in made.docs] == [grouping.doc_key(article, "english")]
    assert made.docs[0][1] == grouping.make_doc(made.docs[0][0])
    assert {key[4] for key, _ in made.summaries} == {1, 3}  # one line, and the lead's three
    prepare._READY.clear()  # nothing remembered: computed afresh below
    for key, sentences in made.summaries:
        assert sentences, key[4]
        assert all(s in TEXT for s in sentences)
        assert prepare.summarize_article(plan.summary, article, key[4]) == sentences


def test_the_issue_uses_what_was_prepared_and_only_for_the_same_article() -> None:
    prepare.warm()
    cfg = SummaryConfig(max_words=57)  # a setting no other test prepares with
    article = prepare.merged(_plan(_entry(), cfg), _page())
    key = prepare.summary_key(cfg, article, 1)
    marked = ("A sentence only the worker could have chosen.",)
    prepare.remember([prepare.Prepared(docs=(), summaries=((key, marked),))])
    try:
        assert prepare.summarize_article(cfg, article, 1) == marked
        # Another text, title, language or setting is another key: computed, not looked up.
        for other in (
            replace(article, text=article.text + " More."),
            replace(article, title="Another title"),
            replace(article, language="de"),
        ):
            assert prepare.summarize_article(cfg, other, 1) != marked
        assert prepare.summarize_article(replace(cfg, max_words=58), article, 1) != marked
    finally:
        del prepare._READY[key]

    doc_key = grouping.doc_key(article, "english")
    doc = grouping.make_doc(doc_key)
    grouping.remember(doc_key, doc)
    assert grouping._doc(article, "english") is doc


def _fresh(code: str, **env: str) -> str:
    res = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, **env},
    )
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def test_a_worker_prepares_only_languages_whose_model_it_has_or_needs_none() -> None:
    code = """
        import sys
        from digest.compose import prepare
        # A worker whose forkserver did not load the summarizer prepares nothing (and
        # does not import it to find that out).
        assert not prepare._tools_here("ko") and "digest.summarize" not in sys.modules
        import digest.summarize
        before = [prepare._tools_here(c) for c in ("en", "de", "ko", "ja", None)]
        prepare.warm()
        after = [prepare._tools_here(c) for c in ("en", "de", "it", "ko")]
        print(before, after)
    """
    # Korean and Japanese need no model (neutral and CJK splitters): always prepared.
    assert _fresh(code) == "[False, False, True, True, False] [True, False, False, True]"
    # The site's language is loaded with English before the fork.
    assert _fresh(code, DIGEST_WARM_LANGUAGE="de").endswith("[True, True, False, True]")

    made = _fresh(
        """
        from digest.compose import prepare
        from digest.models import Entry, Page
        from digest.config import SummaryConfig
        prepare.warm()
        entry = Entry(source="s", guid="g", url="https://x.example/a", title="Haushalt")
        plan = prepare.Plan(entry, "s", None, frozenset(), "english", SummaryConfig(), (1, 3))
        text = "Der Stadtrat hat am Dienstag den Haushalt beschlossen. " * 30
        page = Page(url="https://x.example/a", title="Haushalt", text=text, language="de")
        print(prepare.prepare(page, plan))
        """
    )
    assert made == "Prepared(docs=(), summaries=())"  # left to the issue, which loads it once


def test_preview_prepares_in_the_workers_and_never_imports_the_summarizer(
    tmp_path: Path,
) -> None:
    """The shipped demo: its pages are English, so the issue finds every summary made."""
    cfg = tmp_path / "config.toml"
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    text = text.replace('url = "digest/sample/feed.xml"', f'url = "{ROOT}/digest/sample/feed.xml"')
    cfg.write_text(text, encoding="utf-8")
    out = _fresh(
        f"""
        import sys
        from digest.cli import main
        from digest.compose import prepare
        sys.argv = ["digest", "--config", {str(cfg)!r}, "preview", "--out",
                    {str(tmp_path / "p.html")!r}]
        try:
            main()
        except SystemExit as exc:
            assert not exc.code, exc.code
        print(len(prepare._READY), "digest.summarize" in sys.modules, "nltk" in sys.modules)
        """
    )
    made, summarizer, nltk = out.splitlines()[-1].split()
    assert int(made) >= 6 * 2  # six stories, a one-line and a lead summary each
    assert (summarizer, nltk) == ("False", "False")
    assert "Xiaomi" in (tmp_path / "p.html").read_text(encoding="utf-8")


def test_an_issue_is_the_same_with_or_without_the_work_done_ahead(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    text = text.replace('url = "digest/sample/feed.xml"', f'url = "{ROOT}/digest/sample/feed.xml"')
    text = text.replace('url = "sqlite:///digest.db"', f'url = "sqlite:///{tmp_path}/s.db"')
    cfg.write_text(text, encoding="utf-8")
    out = _fresh(
        f"""
        from datetime import datetime, UTC
        from digest import pipeline
        from digest.compose import grouping, prepare
        from digest.config.load import load_config
        from digest.store import Store
        config = load_config({str(cfg)!r})
        store = Store.open(config.store.url)
        now = datetime.now(UTC)
        pipeline.collect_articles(config, store, now=now, ahead=True)
        made = len(prepare._READY), len(grouping._READY)
        ahead = pipeline.build_issue(config, store, now=now)
        prepare._READY.clear()
        grouping._READY.clear()
        afresh = pipeline.build_issue(config, store, now=now)
        print(made[0] > 0, made[1] > 0, ahead == afresh, len(ahead.stories))
        """
    )
    assert out.splitlines()[-1] == "True True True 3"


def test_articles_stored_by_a_collection_without_work_ahead_are_computed_as_before() -> None:
    article = Article(
        source="City", guid="x", url="https://x.example/", title="T", text=TEXT, language="en"
    )
    cfg = SummaryConfig(max_words=59)
    assert prepare.summary_key(cfg, article, 1) not in prepare._READY
    sentences = prepare.summarize_article(cfg, article, 1)
    assert len(sentences) == 1 and sentences[0] in TEXT


def test_articles_in_another_language_are_prepared_by_fresh_workers(tmp_path: Path) -> None:
    """An English site with a German page: the workers leave it (no German model loaded
    before the fork), fresh workers make it once the pages are done, and the main
    process still never imports the summarizer; the issue is the same either way."""
    german = (ROOT / "tests" / "data" / "lang" / "de.txt").read_text(encoding="utf-8")
    paragraphs = "".join(f"<p>{p}</p>" for p in german.split("\n\n") if p.strip())
    (tmp_path / "de.html").write_text(
        '<html lang="de"><head><title>Radwege in Leipzig</title></head><body><article>'
        f"<h1>Radwege in Leipzig</h1>{paragraphs}</article></body></html>",
        encoding="utf-8",
    )
    sample = ROOT / "digest" / "sample"
    (tmp_path / "en.html").write_bytes((sample / "xiaomi-ev-us-sanctions.html").read_bytes())
    items = "".join(
        f"<item><title>{title}</title><link>{link}</link><guid>{link}</guid>"
        "<pubDate>Mon, 30 Nov 2026 06:00:00 GMT</pubDate></item>"
        for title, link in (("Radwege in Leipzig", "de.html"), ("Xiaomi and sanctions", "en.html"))
    )
    (tmp_path / "feed.xml").write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Mixed</title>'
        f"<link>https://news.example.com/</link>{items}</channel></rss>",
        encoding="utf-8",
    )
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        '[site]\nname = "Mixed"\nurl = "https://digest.example.org"\ntimezone = "UTC"\n\n'
        f'[[sources]]\nname = "Mixed"\nurl = "{tmp_path / "feed.xml"}"\n\n'
        f'[store]\nurl = "sqlite:///{tmp_path}/s.db"\n\n[compose]\nlanguages = ["*"]\n',
        encoding="utf-8",
    )
    out = _fresh(
        f"""
        import sys
        from datetime import datetime, UTC
        from digest import pipeline
        from digest.collect.pool import prestart
        from digest.compose import grouping, prepare
        from digest.config.load import load_config
        from digest.store import Store
        prestart(compose="en")
        config = load_config({str(cfg)!r})
        store = Store.open(config.store.url)
        now = datetime(2026, 11, 30, 8, tzinfo=UTC)
        pipeline.collect_articles(config, store, now=now, ahead=True)
        languages = sorted(key[3] for key in prepare._READY)
        ahead = pipeline.build_issue(config, store, now=now)
        print(languages, "digest.summarize" in sys.modules)
        prepare._READY.clear()
        grouping._READY.clear()
        afresh = pipeline.build_issue(config, store, now=now)
        print(ahead == afresh, sorted(s.article.language for s in ahead.stories))
        """
    )
    made, same = out.splitlines()[-2:]
    assert made == "['de', 'de', 'en', 'en'] False"  # two summary sizes each
    assert same == "True ['de', 'en']"
