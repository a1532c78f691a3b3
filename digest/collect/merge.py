"""A feed entry and its extracted page become the `Article` the issue summarizes.

The page's text when it says enough, else the feed's own content or description, with
the pieces a feed repeats in every item (a podcast's signature line) left out.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Iterable, Sequence

from digest.collect.cleanup import clean_lines, collapse_space, count_words
from digest.collect.titles import best_title
from digest.models import Article, Entry, Page
from digest.text.language import choose_language, to_code

# Elements that end a paragraph when turning feed HTML into text.
_BLOCKS = frozenset(
    {"p", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre",
     "figure", "figcaption", "table", "tr", "section", "article", "header", "footer", "dd", "dt"}
)  # fmt: skip


def html_paragraphs(fragment: str) -> list[str]:
    """Return the paragraphs of an HTML fragment as plain text, one string each."""
    if not fragment.strip():
        return []
    if "<" not in fragment:
        return [p for p in (collapse_space(x) for x in re.split(r"\n\s*\n", fragment)) if p]
    import lxml.html
    from lxml import etree

    try:
        root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    except (etree.ParserError, ValueError):
        return []
    for bad in root.xpath(".//script|.//style|.//noscript|.//template|.//iframe"):
        bad.drop_tree()
    # Block elements end a paragraph; a <br> only ends a line within one.
    for el in root.iter(etree.Element):
        tag = el.tag if isinstance(el.tag, str) else ""
        if tag in _BLOCKS:
            el.tail = "\n\n" + (el.tail or "")
            el.text = "\n\n" + (el.text or "")
        elif tag == "br":
            el.tail = "\n" + (el.tail or "")
    text = "".join(root.itertext())
    return [p for p in (collapse_space(x) for x in re.split(r"\n\s*\n", text)) if p]


def repeated_feed_text(
    entries: Sequence[Entry], *, min_items: int = 3, share: float = 0.5
) -> frozenset[str]:
    """Return the keys of feed-text pieces that appear in most of a source's items.

    A line on every episode of a podcast feed ("Die wichtigsten Nachrichten aus der
    SPIEGEL-Redaktion.") is the feed's signature, not the item's news. A piece (a
    paragraph or a sentence of the feed's content or description) counts when it is in
    more than `share` of the items and in at least `min_items` of them; with fewer items
    nothing can be told apart, so nothing is.
    """
    if len(entries) < min_items:
        return frozenset()
    counts: Counter[str] = Counter()
    for e in entries:
        paragraphs = [*html_paragraphs(e.content_html), *_plain_paragraphs(e.summary)]
        counts.update({_key(piece) for p in paragraphs for piece in (p, *_rough_sentences(p))})
    counts.pop("", None)
    floor = max(min_items, int(share * len(entries)) + 1)
    return frozenset(k for k, n in counts.items() if n >= floor)


def _drop_pieces(paragraphs: Iterable[str], drop: frozenset[str], title: str) -> list[str]:
    """Return `paragraphs` without the pieces in `drop` and without repeats of `title`."""
    title_key = _key(title)
    out: list[str] = []
    for p in paragraphs:
        if drop and _key(p) in drop:
            continue
        if drop:
            p = " ".join(s for s in _rough_sentences(p) if _key(s) not in drop)
        if not p or (title_key and _similar(_key(p), title_key)):
            continue
        out.append(p)
    return out


def merge_article(
    entry: Entry,
    page: Page | None,
    *,
    min_words: int = 40,
    language: str | None,
    fallback_language: str | None = None,
    repeated: frozenset[str] = frozenset(),
    source_name: str = "",
) -> Article:
    """Merge a feed entry with its extracted page into the article we summarize.

    `language` is the source's own ([[sources]].language), which wins outright; else
    the page's declaration, the feed's, the text's, then `fallback_language`
    (`digest.text.language.choose_language`). The feed's own text (the fallback when the page
    yields too little) loses the pieces in `repeated` (see `repeated_feed_text`) and
    paragraphs that only repeat the title.
    """
    try:
        language = to_code(language) if language else None  # "english" from older callers
    except ValueError:
        language = None
    page_text = page.text if page else ""
    summary = "\n\n".join(_drop_pieces(_plain_paragraphs(entry.summary), repeated, entry.title))
    if count_words(page_text) >= min_words:
        text = page_text  # the feed's own text is not needed: skip cleaning it
    else:
        paragraphs = html_paragraphs(entry.content_html)
        content_language = (
            language
            or choose_language(" ".join(paragraphs)[:4000], feed=entry.language)[0]
            or fallback_language
        )
        content_text = "\n\n".join(
            _drop_pieces(clean_lines(paragraphs, language=content_language), repeated, entry.title)
        )
        if count_words(content_text) >= min_words:
            text = content_text
        else:
            # Nothing is long enough: keep whichever says the most, the feed summary included.
            text = max((page_text, content_text, summary), key=count_words)
    chosen, _ = choose_language(
        text or entry.title,
        source=language,
        page=page.declared_language if page else None,
        feed=entry.language,
        fallback=fallback_language,
        detected=page.detected if page and text and text == page.text else None,
    )
    image = (page.image if page and page.image else None) or entry.image
    return Article(
        source=entry.source,
        guid=entry.guid,
        url=entry.url,
        title=best_title(
            entry.title,
            page.title if page else None,
            (source_name or entry.source, page.site_name if page else None, entry.feed_title),
        ),
        text=text,
        feed_summary=summary,
        published=entry.published or (page.date if page else None),
        author=entry.author or (page.author if page else None),
        image=image,
        language=chosen or None,
        # The page's declared size only describes the page's own picture.
        image_width=page.image_width if page and image == page.image else None,
        image_height=page.image_height if page and image == page.image else None,
    )


# Where a feed's text breaks into sentences, roughly: enough to find a repeated one.
_ROUGH_SENTENCE = re.compile(r"(?<=[.!?…])\s+(?=[^\W\d_])")


_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)


def _plain_paragraphs(text: str) -> list[str]:
    """Return the paragraphs of plain text (a feed summary is already de-marked-up)."""
    return [p for p in (collapse_space(x) for x in re.split(r"\n\s*\n", text)) if p]


def _rough_sentences(paragraph: str) -> list[str]:
    return [s for s in _ROUGH_SENTENCE.split(paragraph) if s.strip()]


def _key(text: str) -> str:
    """Return `text` reduced to its lower-cased words, for comparing pieces of feed text."""
    return _NOT_WORD.sub(" ", text.casefold()).strip()


def _similar(a: str, b: str) -> bool:
    """Return True if two keys are the same text up to a few characters."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 0.2 * max(len(a), len(b)):
        return False
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio() >= 0.9
