"""Turn untrusted HTML and text from feeds into clean, single-line plain text."""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Elements whose content is never text a reader should see.
_SKIP = frozenset({"script", "style", "noscript", "template", "iframe"})
# Elements that separate words even when the markup has no whitespace between them.
_BREAK = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt",
        "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header",
        "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "td", "th", "tr", "ul",
    }
)  # fmt: skip

# C0 and C1 controls, DEL, bidi embeddings/overrides/isolates and marks, zero-width
# characters and the BOM: invisible characters that can spoof or break one-line output.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0e-\x1f\x7f-\x9f\u200b\u200e\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff]"
)
_SPACE = re.compile(r"[\s\u2028\u2029]+")


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self._skip.append(tag)
        elif tag in _BREAK:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # <br/>, <hr/>: a break; a self-closed <script/> has no content to skip.
        if tag in _BREAK:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            # Close the innermost matching skipped element; ignore stray end tags.
            if tag in self._skip:
                while self._skip and self._skip.pop() != tag:
                    pass
        elif tag in _BREAK:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(s: str) -> str:
    """Return the visible text of an HTML fragment on one line, entities decoded."""
    if not s:
        return ""
    if "<" not in s and "&" not in s:
        return _SPACE.sub(" ", _INVISIBLE.sub("", s)).strip()
    parser = _TextParser()
    parser.feed(s)
    parser.close()
    return _SPACE.sub(" ", _INVISIBLE.sub("", "".join(parser.parts))).strip()


def plain_text(s: str, *, rounds: int = 3) -> str:
    """Return the visible text of untrusted HTML, decoding again while markup keeps appearing.

    Feeds often escape titles twice ("&amp;lt;script&amp;gt;"): one decoding leaves a
    tag as text, which must not reach a reader either, escaped or not.
    """
    text = html_to_text(s)
    for _ in range(rounds - 1):
        if "<" not in text and "&" not in text:
            break
        again = html_to_text(text)
        if again == text:
            break
        text = again
    return text


def one_line(s: str, limit: int | None = None) -> str:
    """Return `s` without controls or bidi tricks, on one line, cut at a word to `limit` chars.

    Header values, titles and log lines all go through here: a line break or a control
    character in a feed's text can never split a header or a table row.
    """
    text = _SPACE.sub(" ", _INVISIBLE.sub("", s)).strip()
    if limit is None or len(text) <= limit:
        return text
    if limit <= 1:
        return "…"[:limit]
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    # Cut at a word when one ends reasonably late; otherwise (CJK, long URLs) cut hard.
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-–—") + "…"
