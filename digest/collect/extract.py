"""Turn an article page into a `Page`, and a feed entry plus its page into an `Article`.

Pure: the HTML is handed in, nothing is fetched. trafilatura finds the main text and
the metadata; a short list of line patterns then removes what it still lets through on
real sites (share widgets, "Published by admin", image credits, "Recent Posts" lists).
"""

from __future__ import annotations

import difflib
import json
import logging
import re
import threading
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from digest.collect.titles import best_title
from digest.errors import ExtractError
from digest.models import Article, Entry, Page
from digest.text.boilerplate import is_furniture
from digest.text.clean import one_line, plain_text
from digest.text.language import choose_language, detect, from_tag, to_code

log = logging.getLogger(__name__)

# Whole lines that are page furniture, not article text, one pattern per rule (the rule
# names are what `bench/eval_extract.py --ablate` switches off to check each one still
# earns its place). Each is matched against the full line (case-insensitive), so a
# sentence that merely mentions "share" survives.
_FURNITURE: dict[str, re.Pattern[str]] = {
    # share widgets and their button labels
    "share": re.compile(
        r"""(?ix)^(?:share|share\ this(?:\ (?:article|story|post|page))?|share\ on\ \w+|tweet
        |email|print|facebook|twitter|x|linkedin|whatsapp|reddit|pinterest|telegram
        |copy\ link)[:!]?$"""
    ),
    # who posted it and when: a byline or dateline, not a sentence
    "byline": re.compile(
        r"""(?ix)^(?:(?:published|posted|written|submitted)
        (?:\ on\ \S+(?:\ \S+){0,3})?\ by(?:\ \S+){0,4}
        | by\ \S+(?:\ \S+){0,3}\ *[|•·]\ .{0,60})$"""
    ),
    "dateline": re.compile(
        r"""(?ix)^(?:(?:published|updated|last\ updated|posted)(?:\ on)?:?\ .{0,40}\d
        | \d+\ (?:seconds?|minutes?|hours?|days?|weeks?|months?)\ ago)$"""
    ),
    # picture credits and captions
    "credit": re.compile(
        r"""(?ix)^(?:(?:image|photo|picture|photograph|illustration|video|graphic)s?
        (?:\ (?:source|credit|courtesy|by))?\ *[:：].{0,150}
        | (?:source|credit)\ *:\ *.{1,60})$"""
    ),
    # calls to action and ad slots
    "call-to-action": re.compile(
        r"""(?ix)^(?:read\ (?:more|also|next|the\ full\ (?:story|article))\b.{0,100}
        | (?:continue\ reading|click\ here|scroll\ down\ for\ video|advertisement
        |sponsored(?:\ content)?|story\ continues\ below(?:\ advertisement)?
        |subscribe|sign\ up|follow\ us)\b.{0,100})$"""
    ),
    # filing labels
    "tags": re.compile(
        r"""(?ix)^(?:(?:tags?|categories|category)\ *:.{0,150}
        | (?:tagged|filed\ under|posted\ in)\ [^.!?]{1,150})$"""
    ),
    # cookie notices
    "cookies": re.compile(
        r"""(?ix)^(?:.{0,100}\b(?:we|this\ (?:web)?site|our\ (?:web)?site)\ uses?\ cookies\b.*
        | .{0,60}\bcookies?\ (?:policy|settings|preferences|consent)\b.{0,60})$"""
    ),
    # (No rule for "© 2019 X. All rights reserved.": people marking article text keep
    # it, and dropping it lowered F1 on the dev set.)
    # WordPress feed footer: "The post X appeared first on Y."
    "feed-footer": re.compile(r"(?i)^the post .{1,300} appeared first on .{1,100}$"),
}

# A line that starts the page's tail: nothing after it belongs to the article.
_CUT_LINES = re.compile(
    r"""(?ix)^(?:
      (?:recent|related|popular|latest|trending|most\ read|more)\ (?:posts|articles|stories|news)
    | you\ (?:may|might)\ also\ (?:like|be\ interested\ in)
    | (?:leave\ a\ (?:reply|comment)|comments|\d+\ comments?|\d+\ (?:thoughts|responses)\ on\ .*)
    | related(?:\ (?:content|reading|coverage))?
    )\s*:?$""",
)

# Names a CMS puts in the author field when nobody signed the piece.
_GENERIC_AUTHORS = frozenset(
    {"admin", "administrator", "editor", "editors", "staff", "webmaster", "root", "guest",
     "user", "anonymous", "unknown", "author", "redaktion", "rédaction", "redacción"}
)  # fmt: skip

_DATE_META = (
    "article:published_time",
    "og:published_time",
    "og:article:published_time",
    "datepublished",
    "pubdate",
    "publishdate",
    "date",
    "dc.date.issued",
    "dc.date",
    "sailthru.date",
)
_IMAGE_META = (
    "og:image",
    "og:image:url",
    "og:image:secure_url",
    "twitter:image",
    "twitter:image:src",
)
# Elements that end a paragraph when turning feed HTML into text.
_BLOCKS = frozenset(
    {"p", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre",
     "figure", "figcaption", "table", "tr", "section", "article", "header", "footer", "dd", "dt"}
)  # fmt: skip
_SENTENCE_END = re.compile(r"[.!?…:;\"'”’»)\]。！？」』）]$")
_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"\w", re.UNICODE)
TITLE_LIMIT = 300  # as for feed titles
_MAX_IMAGE_SIDE = 20_000  # pixels: a larger declared size is a typo, not a picture

# The clean-up rules `clean_lines` applies, by name.
RULES: frozenset[str] = frozenset(
    {*_FURNITURE, "cut-tail", "author-line", "title-repeat", "trailing-stub", "menu-run"}
)
# This many unpunctuated stubs in a row are a menu (a real list has sentences or is short).
_MENU_RUN = 6
_LABEL_WORDS = 6
_SENTENCE_MARK = re.compile(r"[.!?…:;,\"“”。！？，]")
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
    metas = _meta_values(tree)
    ld = _json_ld(tree)
    published = _meta_date(metas, ld)
    images = [metas[k] for k in _IMAGE_META if k in metas]
    images += [str(h) for h in tree.xpath("//link[@rel='image_src']/@href")]
    images += [v for v in _find_key(ld, "image") if isinstance(v, str)]
    # Page titles are as untrusted as feed titles: no markup, controls or bidi tricks.
    title = one_line(plain_text(_page_title(tree, metas, ld)), TITLE_LIMIT) or None
    author = _clean_author(_page_author(metas, ld))
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
    image = _first_url(images, url)
    width, height = _image_size(metas, image, url)
    declared = _declared_language(tree, metas)
    raw_text = _rescued(doc.text or "", block)
    # The declaration, unless the text plainly says otherwise: it picks the furniture rules.
    # One detection (4 ms) serves here and, through `Page.detected`, the article's language.
    detected = detect(raw_text)
    language = choose_language(raw_text, page=declared, detected=detected)[0] or None
    lines = clean_lines(
        raw_text.splitlines(), author=author, title=title, rules=rules, language=language
    )
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
    have, whole = _words(extracted), _words(block_text)
    if not have or have >= RESCUE_SHARE * whole:
        return extracted
    inside = set(block_text.casefold().split())
    kept = extracted.casefold().split()
    if sum(w in inside for w in kept) < RESCUE_COVER * len(kept):
        return extracted
    return block_text


def _declared_language(tree: Any, metas: dict[str, str]) -> str | None:
    """Return the language the page declares: <html lang>, og:locale or content-language."""
    for value in (
        *(str(v) for v in tree.xpath("/html/@lang | /html/@xml:lang")),
        metas.get("og:locale", ""),
        metas.get("content-language", ""),
        metas.get("language", ""),
    ):
        code = from_tag(value)
        if code:
            return code
    for meta in tree.xpath("//meta[@http-equiv and @content]"):
        if str(meta.get("http-equiv", "")).lower() == "content-language":
            code = from_tag(str(meta.get("content")))
            if code:
                return code
    return None


def clean_lines(
    lines: Iterable[str],
    *,
    author: str | None = None,
    title: str | None = None,
    rules: Collection[str] = RULES,
    language: str | None = "en",
) -> list[str]:
    """Return the article lines of `lines`, without page furniture and trailing bylines.

    `rules` names the clean-up rules to apply (all by default; see `RULES`). The English
    furniture and tail patterns apply to English (`language` "en") only; other languages
    use their own from `digest.text.boilerplate`, an unknown one (None) the neutral ones.
    """
    out: list[str] = []
    names = {n.casefold() for n in (author,) if n} | _GENERIC_AUTHORS
    english = language == "en"
    furniture = [p for name, p in _FURNITURE.items() if name in rules] if english else []
    own = not english and any(name in rules for name in _FURNITURE)
    for raw in lines:
        line = _clean(raw)
        if not line:
            continue
        if english and "cut-tail" in rules and _CUT_LINES.match(line):
            break
        if any(p.match(line) for p in furniture) or (own and is_furniture(line, language)):
            continue
        if "author-line" in rules and line.casefold() in names:
            continue
        # trafilatura sometimes repeats the headline as the first line of the text.
        if "title-repeat" in rules and not out and title and line.casefold() == title.casefold():
            continue
        out.append(line)
    if "menu-run" in rules:
        out = _drop_menu_runs(out)
    # An unpunctuated stub after the last paragraph is a byline or a label ("admin",
    # "John Smith", "Share this"), never the end of the story.
    while "trailing-stub" in rules and out and _is_stub(out[-1]):
        out.pop()
    return out


def html_paragraphs(fragment: str) -> list[str]:
    """Return the paragraphs of an HTML fragment as plain text, one string each."""
    if not fragment.strip():
        return []
    if "<" not in fragment:
        return [p for p in (_clean(x) for x in re.split(r"\n\s*\n", fragment)) if p]
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
    return [p for p in (_clean(x) for x in re.split(r"\n\s*\n", text)) if p]


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
    if _words(page_text) >= min_words:
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
        if _words(content_text) >= min_words:
            text = content_text
        else:
            # Nothing is long enough: keep whichever says the most, the feed summary included.
            text = max((page_text, content_text, summary), key=_words)
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
    return [p for p in (_clean(x) for x in re.split(r"\n\s*\n", text)) if p]


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


def _words(text: str) -> int:
    return sum(1 for w in text.split() if _WORD.search(w))


def _clean(s: str | None) -> str:
    return _SPACE.sub(" ", s or "").strip()


def _drop_menu_runs(lines: list[str], run: int = _MENU_RUN) -> list[str]:
    """Drop every run of `run` or more labels in a row: a menu, not a list in the story."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        j = i
        while j < len(lines) and _is_label(lines[j]):
            j += 1
        if j - i >= run:
            i = j
            continue
        out.extend(lines[i : max(j, i + 1)])
        i = max(j, i + 1)
    return out


def _is_label(line: str) -> bool:
    """Return True for a menu-like line: a few words, no punctuation, not a list item.

    (trafilatura writes the items of a real <ul>/<ol> list as "- item"; menus it lets
    through come out as bare lines.)
    """
    return (
        len(line.split()) <= _LABEL_WORDS
        and not line.startswith("- ")
        and not _SENTENCE_MARK.search(line)
    )


def _is_stub(line: str) -> bool:
    # Short in words and in characters: a line of Chinese or Japanese is one "word".
    return len(line.split()) < 4 and len(line) < 40 and not _SENTENCE_END.search(line)


def _clean_author(author: str | None) -> str | None:
    name = _clean(author)
    if not name or name.casefold() in _GENERIC_AUTHORS:
        return None
    return name


def _meta_values(tree: Any) -> dict[str, str]:
    """Return the page's <meta> values by lower-cased property/name/itemprop."""
    out: dict[str, str] = {}
    for meta in tree.xpath("//meta[@content]"):
        content = _clean(meta.get("content"))
        if not content:
            continue
        for attr in ("property", "name", "itemprop"):
            key = (meta.get(attr) or "").strip().lower()
            if key and key not in out:
                out[key] = content
    return out


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


def _json_ld(tree: Any) -> list[Any]:
    """Return the page's parsed JSON-LD blocks (the unreadable ones are skipped)."""
    out = []
    for script in tree.xpath("//script[@type='application/ld+json']/text()"):
        try:
            out.append(json.loads(str(script)))
        except ValueError:
            continue
    return out


def _meta_date(metas: dict[str, str], ld: list[Any]) -> datetime | None:
    """Return the publication time the page states precisely (meta tags or JSON-LD)."""
    for key in _DATE_META:
        if key in metas and (when := _parse_date(metas[key])):
            return when
    for value in _find_key(ld, "datePublished"):
        if isinstance(value, str) and (when := _parse_date(value)):
            return when
    return None


def _page_title(tree: Any, metas: dict[str, str], ld: list[Any]) -> str:
    """Return the headline: og/twitter title, JSON-LD headline, a lone <h1>, or <title>."""
    for key in ("og:title", "twitter:title"):
        if metas.get(key):
            return metas[key]
    for value in _find_key(ld, "headline"):
        if isinstance(value, str) and value.strip():
            return value
    h1 = tree.xpath("//h1")
    if len(h1) == 1 and (text := _clean(h1[0].text_content())):
        return text
    return _clean(" ".join(tree.xpath("//head/title//text()")))


def _page_author(metas: dict[str, str], ld: list[Any]) -> str | None:
    """Return the byline the page states in its meta tags or JSON-LD, if any."""
    for key in ("author", "article:author", "dc.creator", "parsely-author", "sailthru.author"):
        value = metas.get(key, "")
        if value and not value.startswith(("http://", "https://")):
            return value
    for value in _find_key(ld, "author"):
        for person in value if isinstance(value, list) else [value]:
            name = person.get("name") if isinstance(person, dict) else person
            if isinstance(name, str) and name.strip():
                return name
    return None


def _find_key(data: Any, key: str, depth: int = 0) -> Iterable[Any]:
    if depth > 6:
        return
    if isinstance(data, dict):
        if key in data:
            yield data[key]
        for v in data.values():
            yield from _find_key(v, key, depth + 1)
    elif isinstance(data, list):
        for v in data:
            yield from _find_key(v, key, depth + 1)


def _parse_date(value: str) -> datetime | None:
    """Parse an ISO 8601 or RFC 2822 date; a date or naive time is taken as UTC."""
    value = value.strip()
    when: datetime | None = None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
    if when.year < 1990 or when.year > 9000:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def _image_size(
    metas: dict[str, str], image: str | None, base: str
) -> tuple[int | None, int | None]:
    """Return the og:image's declared (width, height) when `image` is that og:image."""
    og = [metas[k] for k in ("og:image", "og:image:url", "og:image:secure_url") if k in metas]
    if image is None or image not in {_first_url([u], base) for u in og}:
        return None, None  # the size describes a different picture
    sizes = []
    for key in ("og:image:width", "og:image:height"):
        value = metas.get(key, "").strip().removesuffix("px")
        sizes.append(int(value) if value.isdigit() and 0 < int(value) <= _MAX_IMAGE_SIDE else None)
    if None in sizes:
        return None, None
    return sizes[0], sizes[1]


def _first_url(candidates: Iterable[str], base: str) -> str | None:
    """Return the first candidate that is an absolute http(s) URL once joined to `base`."""
    for cand in candidates:
        cand = cand.strip()
        if not cand or cand.startswith("data:"):
            continue
        try:
            full = urljoin(base, cand)
            parts = urlsplit(full)
        except ValueError:
            continue
        if parts.scheme in ("http", "https") and parts.netloc:
            return full
    return None
