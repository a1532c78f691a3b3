"""Compose's per-article work, done in the extraction workers beside each page.

An article's grouping terms and its summaries are pure functions of the article. Made
in the worker that extracted its page (on every core, while other pages download),
they come back with the page and are remembered here by content, so composing the issue
is left only its cheap part: no summarizer to import (nltk and sumy: most of a second)
and no article to stem or summarize, on one core, after the workers have gone idle.

Nothing depends on it: a summary or a set of terms that was not made ahead is made when
the issue asks for it, with the same result (tests compare both ways).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass

from digest.collect.pool import WARM_LANGUAGE_ENV
from digest.compose import grouping
from digest.config import SummaryConfig
from digest.models import Article, Entry, Page
from digest.text.language import choose_language

# What a summary depends on: the article's texts, title and language, the sentence
# count and the summary settings.
SummaryKey = tuple[str, str, str, str, int, SummaryConfig]
_READY: dict[SummaryKey, tuple[str, ...]] = {}
_READY_MAX = 20_000


@dataclass(frozen=True)
class Plan:
    """What a worker needs to turn a page into the article the issue will see."""

    entry: Entry
    source_name: str
    source_language: str | None  # [[sources]].language
    repeated: frozenset[str]  # the source's feed text found in most of its items
    fallback_language: str  # grouping's, as the issue groups (a name: "english")
    summary: SummaryConfig
    sizes: tuple[int, ...]  # sentence counts the issue asks for (lead, roundup, one line)


@dataclass(frozen=True)
class Prepared:
    """An article's grouping terms and summaries, with the keys they were made for."""

    docs: tuple[tuple[grouping.DocKey, grouping._Doc], ...]
    summaries: tuple[tuple[SummaryKey, tuple[str, ...]], ...]


def sizes(summary: SummaryConfig) -> tuple[int, ...]:
    """Return the sentence counts an issue summarizes with: lead, roundup, one line."""
    return tuple(sorted({summary.lead_sentences, summary.roundup_sentences, 1}))


def merged(plan: Plan, page: Page | None) -> Article:
    """Return the article the collection stores for `plan`'s entry and its page."""
    from digest.collect.merge import merge_article

    return merge_article(
        plan.entry,
        page,
        language=plan.source_language,
        fallback_language=plan.summary.language or None,
        repeated=plan.repeated,
        source_name=plan.source_name,
    )


def prepare(page: Page, plan: Plan, any_language: bool = False) -> Prepared:
    """Run in an extraction worker: make the article's terms and summaries.

    An article in a language whose model this worker lacks comes back empty, unless
    `any_language`: asked once the extraction is over, of fresh workers."""
    article = merged(plan, page)
    if not any_language and not _tools_here(article.language):
        return Prepared(docs=(), summaries=())
    key = grouping.doc_key(article, plan.fallback_language)
    summaries = tuple(
        (summary_key(plan.summary, article, n), summarize_article(plan.summary, article, n))
        for n in plan.sizes
    )
    return Prepared(docs=((key, grouping.make_doc(key)),), summaries=summaries)


def _tools_here(language: str | None) -> bool:
    """Return True when this worker can prepare an article in `language` without loading
    a language model: one loaded before the fork (English and the site's language, see
    `warm`) or a language that needs none. A model loaded in a worker is megabytes of
    private memory in each worker; the issue loads it once instead."""
    if not language or "digest.summarize" not in sys.modules:
        return False  # a forkserver started without the summarizer: nothing is loaded
    from digest.summarize import has_tools
    from digest.summarize.tokenize import needs_model

    return has_tools(language) or not needs_model(language)


def remember(prepared: Iterable[Prepared]) -> None:
    """Keep what workers made, for the issue composed next in this process."""
    for p in prepared:
        for key, doc in p.docs:
            grouping.remember(key, doc)
        for skey, sentences in p.summaries:
            if len(_READY) >= _READY_MAX:
                _READY.clear()
            _READY[skey] = sentences


def summary_key(cfg: SummaryConfig, article: Article, sentences: int) -> SummaryKey:
    return (
        article.text,
        article.feed_summary,
        article.title,
        article.language or "",
        sentences,
        cfg,
    )


def summarize_article(cfg: SummaryConfig, article: Article, sentences: int) -> tuple[str, ...]:
    """Return up to `sentences` sentences summarizing `article` (made ahead, or now)."""
    ready = _READY.get(summary_key(cfg, article, sentences))
    if ready is not None:
        return ready
    from digest.summarize import summarize

    # Articles stored before languages were detected: detect now. Still none known: the
    # summarizer's neutral splitter and position-only ranking.
    language = article.language or choose_language(article.text, fallback=cfg.language)[0]
    out: tuple[str, ...] = ()
    # The feed's own description is the fallback, under the same rules: it is where
    # title repeats, captions and teasers come from.
    for text in (article.text, article.feed_summary):
        if out or not text:
            continue
        out = summarize(
            text,
            sentences=sentences,
            method=cfg.method,
            language=language,
            max_words=cfg.max_words,
            max_words_oneliner=cfg.max_words_oneliner,
            title=article.title or None,
        )
    return out


def warm() -> None:
    """Load the summarizer with the tools for English and the site's language: run once
    in the extraction forkserver, so every worker starts with them."""
    for language in dict.fromkeys(("en", os.environ.get(WARM_LANGUAGE_ENV) or "en")):
        article = Article(
            source="warm",
            guid="warm",
            url="",
            title="Warm-up",
            text="The tools load here once. Every worker then starts with them in memory.",
            language=language,
        )
        summarize_article(SummaryConfig(), article, 1)
        grouping.make_doc(grouping.doc_key(article, "english"))
