"""Lint rendered email HTML for what mail clients strip, block or get phished by.

`check_email_html` is pure: HTML in, a list of human-readable problems out
(empty means the email is safe to send). Tests use it, and so does `digest preview`.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

GMAIL_CLIP_BYTES = 102_000  # Gmail hides everything after this many bytes

# Elements that run code, load other documents or post data: blocked or dangerous in mail.
_FORBIDDEN = frozenset(
    {"script", "iframe", "frame", "frameset", "form", "object", "embed", "applet", "link", "base"}
)
_URL_ATTRS = frozenset({"href", "src", "background", "action", "formaction", "poster", "srcset"})
_EVIL_SCHEMES = ("javascript:", "data:", "vbscript:")
# Browsers ignore ASCII whitespace and controls inside a scheme ("java\tscript:").
_IGNORED_IN_URL = re.compile(r"[\x00-\x20\x7f]")
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_CSS_DANGER = re.compile(r"expression\s*\(|javascript:|vbscript:|@import|behavior\s*:", re.I)


def _norm_url(value: str) -> str:
    return _IGNORED_IN_URL.sub("", value).lower()


def _css_top_level_rules(css: str) -> list[str]:
    """Return the prelude of each top-level CSS rule ("@media (…)", ".x a", "@import …")."""
    css = _CSS_COMMENT.sub("", css)
    preludes: list[str] = []
    depth = 0
    start = 0
    for i, ch in enumerate(css):
        if ch == "{":
            if depth == 0:
                preludes.append(css[start:i].strip())
            depth += 1
        elif ch == "}":
            depth = max(depth - 1, 0)
            if depth == 0:
                start = i + 1
        elif ch == ";" and depth == 0:  # a statement at-rule such as @import or @charset
            if css[start:i].strip():
                preludes.append(css[start:i].strip())
            start = i + 1
    tail = css[start:].strip()
    if tail:
        preludes.append(tail)
    return preludes


class _Linter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self._in_style = False
        self._style: list[str] = []

    def _problem(self, message: str) -> None:
        line, _ = self.getpos()
        self.problems.append(f"line {line}: {message}")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._check(tag, attrs)
        if tag == "style":
            self._in_style = True
            self._style = []

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._check(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "style" and self._in_style:
            self._in_style = False
            self._check_style("".join(self._style))

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self._style.append(data)

    def _check(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag in _FORBIDDEN:
            self._problem(f"<{tag}> is not allowed in email")
        if tag == "meta" and values.get("http-equiv", "").strip().lower() == "refresh":
            self._problem('<meta http-equiv="refresh"> is not allowed in email')
        for name, value in values.items():
            if name.startswith("on"):
                self._problem(f"<{tag} {name}> event handler attribute")
            elif name in _URL_ATTRS:
                self._check_url(tag, name, value)
            elif name == "style" and _CSS_DANGER.search(value):
                self._problem(f"<{tag} style> contains active CSS: {value[:60]!r}")
        if tag == "img":
            if "alt" not in values:
                self._problem(f"<img src={values.get('src', '')!r}> has no alt attribute")
            if "width" not in values:
                self._problem(f"<img src={values.get('src', '')!r}> has no width attribute")
        if tag == "table" and "role" not in values:
            # A data table says so with an explicit role; a bare table is layout.
            self._problem('layout <table> lacks role="presentation"')

    def _check_url(self, tag: str, attr: str, value: str) -> None:
        url = _norm_url(value)
        if url.startswith(_EVIL_SCHEMES):
            self._problem(f"<{tag} {attr}> uses a dangerous URL: {value[:60]!r}")
        elif tag in ("a", "area") and attr == "href" and url.startswith("mailto:"):
            return
        elif not url.startswith(("http://", "https://")):
            self._problem(f"<{tag} {attr}={value[:60]!r}> is not an absolute http(s) URL")

    def _check_style(self, css: str) -> None:
        if _CSS_DANGER.search(css):
            self._problem("<style> contains active CSS (expression, javascript:, @import)")
        for prelude in _css_top_level_rules(css):
            if not prelude.lower().startswith("@media"):
                self._problem(f"<style> rule {prelude[:60]!r} was not inlined")


# Conditional comments (<!--[if mso]>…<![endif]-->) are comments to this parser, so
# Outlook-only markup is not linted; keep it to layout tables.
def check_email_html(html: str) -> list[str]:
    """Return the problems that make `html` unsafe or fragile as an email body."""
    problems: list[str] = []
    size = len(html.encode("utf-8"))
    if size > GMAIL_CLIP_BYTES:
        problems.append(f"HTML is {size} bytes; Gmail clips messages over {GMAIL_CLIP_BYTES}")
    linter = _Linter()
    linter.feed(html)
    linter.close()
    return problems + linter.problems
