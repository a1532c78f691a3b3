"""Turn an article page into a `Page`: its main text, cleaned, and what it says of itself.

Pure: the HTML is handed in, nothing is fetched. The page is parsed once; trafilatura
finds the main text (`digest.collect.cleanup` then removes what it still lets through on
real sites), `digest.collect.pagemeta` reads the date, title, author and image. Turning
a page and its feed entry into an `Article` is `digest.collect.merge`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection
from typing import Any

from digest.collect.cleanup import RULES, clean_lines, count_words
from digest.collect.pagemeta import (
    IMAGE_META,
    TITLE_LIMIT,
    clean_author,
    declared_language,
    find_key,
    first_url,
    image_size,
    json_ld,
    meta_date,
    meta_values,
    page_author,
    page_title,
)
from digest.errors import ExtractError
from digest.models import Page
from digest.text.clean import one_line, plain_text
from digest.text.language import choose_language, detect

log = logging.getLogger(__name__)


_PARSERS = threading.local()


def extract_page(html: str | bytes, url: str, *, rules: Collection[str] = RULES) -> Page:
    """Extract the title, author, date, lead image and main text of an article page.

    The page is parsed once, with this thread's own parser (lxml parsers must not be
    shared between threads), and the tree goes to trafilatura; its metadata pass is
    skipped (a third of the cost) because the meta tags below say the same.
    """
    import trafilatura
    from trafilatura.settings import Document

    tree = _parse(html)
    if tree is None:
        raise ExtractError("no article text found")
    metas = meta_values(tree)
    ld = json_ld(tree)
    published = meta_date(metas, ld)
    images = [metas[k] for k in IMAGE_META if k in metas]
    images += [str(h) for h in tree.xpath("//link[@rel='image_src']/@href")]
    images += [v for v in find_key(ld, "image") if isinstance(v, str)]
    # Page titles are as untrusted as feed titles: no markup, controls or bidi tricks.
    title = one_line(plain_text(page_title(tree, metas, ld)), TITLE_LIMIT) or None
    author = clean_author(page_author(metas, ld))
    block = _densest_block(tree)  # before trafilatura, which prunes the tree in place
    _focus_article(tree)
    doc = trafilatura.bare_extraction(
        tree,
        url=url,
        fast=True,
        include_comments=False,
        include_tables=True,
    )
    if not isinstance(doc, Document):
        raise ExtractError("no article text found")
    image = first_url(images, url)
    width, height = image_size(metas, image, url)
    declared = declared_language(tree, metas)
    raw_text = _rescued(doc.text or "", block)
    if _flattened(raw_text):
        raw_text = _precise(html, url) or raw_text
    # The declaration, unless the text plainly says otherwise: it picks the furniture rules.
    # One detection (4 ms) serves here and, through `Page.detected`, the article's language.
    detected = detect(raw_text)
    language = choose_language(raw_text, page=declared, detected=detected)[0] or None
    lines = clean_lines(
        raw_text.splitlines(), author=author, title=title, rules=rules, language=language
    )
    if "after-block" in rules:
        lines = _cut_after_block(lines, block)
    if not lines:
        raise ExtractError("no article text found")
    site_name = one_line(plain_text(metas.get("og:site_name", "")), 200) or None
    text = "\n\n".join(lines)
    return Page(
        url=url,
        title=title,
        author=author,
        date=published,
        image=image,
        text=text,
        detected=detected,
        language=language,
        declared_language=declared,
        site_name=site_name,
        image_width=width,
        image_height=height,
    )


FOCUS_SHARE = 0.8  # an <article> holding this share of the page's paragraph words is the page


def _focus_article(tree: Any) -> bool:
    """Keep only the page's one `<article>` in its body when nearly all its prose is there.

    The rest of the body (menus, teasers, footers) is then never the article, and
    trafilatura's passes over the whole page cost a tenth of a page's time less; on the
    dev pages this fires on a third of them and changes no extraction but one, for the
    better. Two or more `<article>` elements (a list of teasers) are left alone.
    """
    articles = tree.xpath("//body//article")
    if len(articles) != 1:
        return False
    article = articles[0]
    total = sum(len((p.text_content() or "").split()) for p in tree.iter("p"))
    inside = sum(len((p.text_content() or "").split()) for p in article.iter("p"))
    if not total or inside < FOCUS_SHARE * total:
        return False
    body = tree.find("body")
    if body is None or article.getparent() is body and len(body) == 1:
        return False
    for child in list(body):
        if child is not article:
            body.remove(child)
    if article.getparent() is not body:
        article.tail = None
        body.append(article)
    return True


_BLOCK_TAGS = ("p", "h2", "h3", "h4", "li", "blockquote")


RESCUE_SHARE = 0.5  # the extraction kept less than this share of the article's block ...


RESCUE_COVER = 0.9  # ... and nearly all it kept comes from that block


def _densest_block(tree: Any) -> list[str]:
    """Return the text pieces of the elements holding the most paragraph words.

    An article's body lives in one element on most pages, or in several of the same
    tag and class (a long piece cut by advertisements); when the extractor keeps only
    part of it, the rest is still there.
    """
    words: dict[Any, int] = {}
    members: dict[Any, list[Any]] = {}
    for p in tree.iter("p"):
        parent = p.getparent()
        if parent is None:
            continue
        key = (parent.tag, parent.get("class")) if parent.get("class") else parent
        if parent not in members.setdefault(key, []):
            members[key].append(parent)
        words[key] = words.get(key, 0) + len(p.text_content().split())
    if not words:
        return []
    best = max(words, key=lambda k: words[k])
    out = []
    for container in members[best]:
        for el in container.iter(*_BLOCK_TAGS):
            parent = el.getparent()
            if parent is not None and parent.tag in _SKIP_INSIDE:
                continue
            text = " ".join(el.text_content().split())
            if text:
                out.append(text)
    return out


_SKIP_INSIDE = ("li",)  # a <p> inside a list item is already in the item's text


def _rescued(extracted: str, block: list[str]) -> str:
    """Return the whole article block when the extraction kept only a part of it."""
    block_text = "\n".join(block)
    have, whole = count_words(extracted), count_words(block_text)
    if not have or have >= RESCUE_SHARE * whole:
        return extracted
    inside = set(block_text.casefold().split())
    kept = extracted.casefold().split()
    if sum(w in inside for w in kept) < RESCUE_COVER * len(kept):
        return extracted
    return block_text


FLAT_WORDS = 250  # one paragraph this long, and nothing else: a page flattened, not a text


def _flattened(text: str) -> bool:
    """Return True for a text of one long paragraph and nothing else.

    trafilatura's wild-text recovery returns a page laid out in tables as one run of
    words: the article, its dateline, related headlines and the footer together. An
    article as written has paragraphs; this has none.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    return len(lines) == 1 and count_words(lines[0]) >= FLAT_WORDS


def _precise(html: str | bytes, url: str) -> str | None:
    """Return trafilatura's precision-mode text of the page when it has paragraphs.

    With its comparison against its other extractors (readability, justext: the
    slower mode, paid on such pages only), which find the article's own blocks where
    the main pass saw one. None when it finds no more than one paragraph either.
    """
    import trafilatura
    from trafilatura.settings import Document

    tree = _parse(html)  # again: the first extraction pruned the tree in place
    if tree is None:
        return None
    doc = trafilatura.bare_extraction(tree, url=url, favor_precision=True, include_comments=False)
    text = doc.text if isinstance(doc, Document) else None
    if not text or sum(1 for line in text.splitlines() if line.strip()) < 2:
        return None
    return text


BLOCK_SHARE = 0.7  # the article's block holds this share of the kept words ...


def _cut_after_block(lines: list[str], block: list[str]) -> list[str]:
    """Drop the lines after the last one from the article's block, when the block is
    most of what was kept.

    What trafilatura lets through after the story comes from elsewhere on the page:
    other stories' headlines, the company's "About us", a print-edition notice. When
    the page's densest block (`_densest_block`) holds at least `BLOCK_SHARE` of the
    kept words, that block is the article and lines after its last one are not.
    """
    if not block:
        return lines
    whole = "\n".join(_plain(piece) for piece in block)
    inside = [_plain(line) in whole for line in lines]
    words = [count_words(line) for line in lines]
    covered = sum(w for w, ok in zip(words, inside, strict=True) if ok)
    if not covered or covered < BLOCK_SHARE * sum(words):
        return lines
    last = max(i for i, ok in enumerate(inside) if ok)
    return lines[: last + 1]


def _plain(text: str) -> str:
    """Compare lines and block pieces alike: case, spacing and list marks aside."""
    return " ".join(text.casefold().removeprefix("- ").split())


def _parser() -> Any:
    """Return this thread's own lxml HTML parser (one parser used by two threads crashes)."""
    parser = getattr(_PARSERS, "parser", None)
    if parser is None:
        import lxml.html

        # The options trafilatura's own (module-wide, shared) parser uses.
        parser = lxml.html.HTMLParser(
            collect_ids=False,
            default_doctype=False,
            encoding="utf-8",
            remove_comments=True,
            remove_pis=True,
        )
        _PARSERS.parser = parser
    return parser


def _parse(html: str | bytes) -> Any:
    """Parse a page as trafilatura's `load_html` would, but with this thread's parser."""
    if not html:
        return None
    import lxml.html
    from trafilatura.utils import decode_file, is_dubious_html, repair_faulty_html

    text = decode_file(html)
    beginning = text[:50].lower()
    dubious = is_dubious_html(beginning)
    text = repair_faulty_html(text, beginning)
    data = text.encode("utf-8", "surrogatepass")
    try:
        tree = lxml.html.fromstring(data, parser=_parser())
    except Exception:  # lxml raises several types on garbage; it is simply no page
        return None
    if tree is None or (dubious and len(tree) < 2):
        return None
    return tree
