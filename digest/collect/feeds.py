"""Parse RSS, Atom and JSON Feed documents into `Entry` values, and normalize URLs and titles.

Pure: bytes in, entries out. feedparser handles RSS 0.9x/1.0/2.0 and Atom (and guesses
wrong or missing encodings with chardet); JSON Feed 1.0/1.1 is `jsonfeed`. Everything a
feed says is untrusted, in either format: `entries` de-marks-up and flattens its text,
keeps only absolute http(s) links and drops dates in the far future.
"""

from __future__ import annotations

import html
import io
import json
import logging
import re
import time
import unicodedata
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import feedparser
import feedparser.sanitizer

from digest.collect.entries import (
    SUMMARY_LIMIT,
    absolute_url,
    make_entry,
    not_future,
    text_of,
)
from digest.collect.jsonfeed import parse_json_feed
from digest.errors import FetchError
from digest.models import Entry
from digest.text.clean import one_line, plain_text
from digest.text.language import from_tag

log = logging.getLogger(__name__)

# feedparser first asks xml.sax for "drv_libxml2", a driver of the Python 2 era that no
# pip package provides: the failed import searches sys.path again for every feed
# (1-2 ms each). Python's own expat parser, which it then falls back to, is what runs.
feedparser.api.PREFERRED_XML_PARSERS = []


TRACKING_PARAMS = frozenset(
    {"fbclid", "gclid", "mc_cid", "mc_eid", "ref", "ref_src", "igshid", "_hsenc", "_hsmi", "yclid"}
)

_HTML_START = re.compile(rb"<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>]", re.IGNORECASE)
_LINK_TAG = re.compile(r"<link\b[^>]*>", re.IGNORECASE)
_ATTR = re.compile(r"""([\w:-]+)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)""")
_FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+json")
_XML_DECL = re.compile(rb"(\xef\xbb\xbf)?\s*<\?xml\s")
# Not errors: notes that the declared encoding was wrong and another one was used.
_ENCODING_NOTES = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)
# Numeric character references; feedparser crashes on ones no character has
# (&#x110000;, surrogates, 30-digit numbers), so those become U+FFFD first.
_CHARREF = re.compile(rb"&#(?:[xX]([0-9a-fA-F]+)|([0-9]+));")
_UTF_BOMS = (
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\xfe\xff", "utf-16-be"),
    (b"\xff\xfe", "utf-16-le"),
)
_DECL_ENCODING = re.compile(rb"^(\s*<\?xml[^>]*?)\s+encoding\s*=\s*[\"'][^\"']*[\"']")


# --- public helpers -----------------------------------------------------------------------


def canonical_url(url: str) -> str:
    """Return `url` with scheme/host lowercased, no fragment, default port or tracking params."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return urlunsplit((scheme, parts.netloc, parts.path, parts.query, ""))
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != {"http": 80, "https": 443}[scheme]:
        host = f"{host}:{port}"
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    netloc = f"{userinfo}@{host}" if userinfo else host
    kept = [p for p in parts.query.split("&") if p and not _is_tracking(p.split("=", 1)[0])]
    return urlunsplit((scheme, netloc, parts.path or "/", "&".join(kept), ""))


def _is_tracking(name: str) -> bool:
    name = name.lower()
    return name.startswith("utm_") or name in TRACKING_PARAMS


def title_key(title: str) -> str:
    """Return a key under which near-identical titles (case, punctuation, spacing) collide."""
    text = unicodedata.normalize("NFKC", title).casefold()
    chars = (" " if unicodedata.category(c)[0] in "PS" else c for c in text)
    return " ".join("".join(chars).split())


def parse_feed(
    body: bytes,
    *,
    source: str,
    base_url: str,
    content_type: str | None = None,
    now: datetime | None = None,
) -> list[Entry]:
    """Parse an RSS, Atom or JSON Feed document; raise FetchError when it holds no feed.

    `base_url` is where the document lives (relative links resolve against it); a
    file:// base also allows file:// item links. `now` (default: the current time)
    decides which dates lie in the future.
    """
    now = now or datetime.now(tz=UTC)
    body = _utf8_from_bom(body)
    head = body.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        raise FetchError("empty document")
    ctype = (content_type or "").split(";")[0].strip().lower()
    if head[:1] in (b"{", b"[") or (head[:1] != b"<" and "json" in ctype):
        return parse_json_feed(body, source=source, base_url=base_url, now=now)
    return _parse_xml_feed(body, source=source, base_url=base_url, ctype=content_type, now=now)


def _utf8_from_bom(body: bytes) -> bytes:
    """Re-encode a UTF-16/32 document (known by its byte-order mark) as UTF-8."""
    for bom, codec in _UTF_BOMS:
        if body.startswith(bom):
            text = body[len(bom) :].decode(codec, "replace").encode("utf-8")
            # The declaration would still name the old encoding.
            return _DECL_ENCODING.sub(rb"\1", text, count=1)
    return body


def _fix_charref(m: re.Match[bytes]) -> bytes:
    hex_digits, digits = m.group(1), m.group(2)
    if len((hex_digits or digits).lstrip(b"0")) > 8:  # also spares int() a 10,000-digit number
        return b"&#xFFFD;"
    code = int(hex_digits, 16) if hex_digits is not None else int(digits)
    if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return b"&#xFFFD;"
    return m.group(0)


# --- XML (feedparser) -----------------------------------------------------------------------


def _parse_xml_feed(
    body: bytes, *, source: str, base_url: str, ctype: str | None, now: datetime
) -> list[Entry]:
    # Without a content type feedparser assumes ISO-8859-1 and never asks chardet;
    # "application/xml" makes it try the XML declaration, then chardet, then UTF-8.
    headers = {"content-type": ctype or "application/xml"}
    if urlsplit(base_url).scheme in ("http", "https"):
        # feedparser mangles file:// bases; those links are resolved by absolute_url instead.
        headers["content-location"] = base_url
    # A BytesIO, never bytes: feedparser treats a bytes argument as a path to open.
    parsed = feedparser.parse(
        io.BytesIO(_CHARREF.sub(_fix_charref, body)), response_headers=headers
    )
    version = parsed.get("version") or ""
    raw_entries = parsed.get("entries") or []
    bozo = parsed.get("bozo_exception") if parsed.get("bozo") else None
    # feedparser prepends an XML declaration when there is none, shifting line numbers.
    shift = 0 if _XML_DECL.match(body) else 1
    if not raw_entries:
        if _HTML_START.search(body[:4096]) and not version:
            raise FetchError("not a feed: the document is HTML" + _feed_hint(body, base_url))
        if bozo is not None and not isinstance(bozo, _ENCODING_NOTES):
            if not body.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<") and not version:
                raise FetchError("not a feed: the document is neither XML nor JSON")
            raise FetchError(f"invalid XML: {_describe_xml_error(bozo, shift)}")
        if not version:
            raise FetchError("not a feed: no RSS, Atom or JSON Feed found in the document")
        return []
    if bozo is not None and not isinstance(bozo, _ENCODING_NOTES):
        log.warning(
            "%s: feed is not well-formed (%s); using the %d items that parsed",
            source,
            _describe_xml_error(bozo, shift),
            len(raw_entries),
        )
    elif bozo is not None:
        log.info("%s: %s", source, bozo)
    allow_file = urlsplit(base_url).scheme == "file"
    feed = parsed.get("feed")
    feed_title = one_line(plain_text(text_of(feed.get("title"))), 200) if feed else ""
    feed_language = from_tag(text_of(feed.get("language"))) if feed else None
    entries: list[Entry] = []
    for raw in raw_entries:
        entry = _xml_entry(raw, source=source, base_url=base_url, allow_file=allow_file, now=now)
        if entry is not None:
            entry = replace(entry, language=_item_language(raw) or feed_language)
            entries.append(replace(entry, feed_title=feed_title) if feed_title else entry)
    if not entries and bozo is not None and not isinstance(bozo, _ENCODING_NOTES):
        # Broken before its first usable item (an unclosed CDATA swallows the rest):
        # that is a failure to report, not a quiet day.
        raise FetchError(f"invalid XML: {_describe_xml_error(bozo, shift)}")
    return entries


def _describe_xml_error(exc: Any, shift: int) -> str:
    get_line = getattr(exc, "getLineNumber", None)
    get_message = getattr(exc, "getMessage", None)
    if callable(get_line) and callable(get_message):
        line = max(1, int(get_line()) - shift)
        return f"line {line}, column {exc.getColumnNumber()}: {get_message()}"
    return one_line(str(exc), 200) or type(exc).__name__


def feed_links(body: bytes, base_url: str) -> list[str]:
    """Return the feeds an HTML page advertises (`<link rel="alternate" type=…>`), in order."""
    head = body[:65536].decode("utf-8", "replace")
    found: list[str] = []
    for tag in _LINK_TAG.findall(head):
        attrs = {k.lower(): v.strip("\"'") for k, v in _ATTR.findall(tag)}
        rel = attrs.get("rel", "").lower().split()
        if "alternate" in rel and attrs.get("type", "").lower() in _FEED_TYPES:
            href = absolute_url(html.unescape(attrs.get("href", "")), base_url)
            if href and href not in found:
                found.append(href)
    return found


def feed_title(body: bytes, content_type: str | None = None) -> str:
    """Return a feed document's own title ("" when it has none)."""
    body = _utf8_from_bom(body)
    head = body.lstrip(b"\xef\xbb\xbf \t\r\n")
    if head[:1] == b"{":
        try:
            data = json.loads(body)
        except ValueError:
            return ""
        return one_line(str(data.get("title") or ""), 200) if isinstance(data, dict) else ""
    parsed = feedparser.parse(
        io.BytesIO(body), response_headers={"content-type": content_type or "application/xml"}
    )
    return one_line(str(parsed.get("feed", {}).get("title") or ""), 200)


def _feed_hint(body: bytes, base_url: str) -> str:
    """Return ' (it links to a feed at URL; use that)' when an HTML page advertises a feed."""
    links = feed_links(body, base_url)
    return f" (it links to a feed at {links[0]}; use that URL)" if links else ""


def _xml_entry(
    raw: Mapping[str, Any], *, source: str, base_url: str, allow_file: bool, now: datetime
) -> Entry | None:
    url = absolute_url(text_of(raw.get("link")), base_url, allow_file=allow_file)
    if not url:
        for link in raw.get("links") or ():
            if isinstance(link, Mapping) and link.get("rel", "alternate") == "alternate":
                url = absolute_url(text_of(link.get("href")), base_url, allow_file=allow_file)
                if url:
                    break
    content_html = ""
    for part in raw.get("content") or ():
        if isinstance(part, Mapping) and isinstance(part.get("value"), str):
            content_html = part["value"]
            if "html" in str(part.get("type", "")):
                break
    summary = one_line(
        plain_text(text_of(raw.get("summary")) or content_html[:20_000]), SUMMARY_LIMIT
    )
    parsed = raw.get("published_parsed") or raw.get("updated_parsed")
    author = ""
    detail = raw.get("author_detail")
    if isinstance(detail, Mapping):
        author = text_of(detail.get("name"))
    author = author or text_of(raw.get("author"))
    return make_entry(
        source=source,
        guid=text_of(raw.get("id")),
        url=url,
        title=text_of(raw.get("title")),
        summary=summary,
        content_html=content_html,
        published=_from_struct(parsed, now=now, source=source),
        author=author,
        image=_xml_image(raw, base_url),
    )


def _item_language(raw: Mapping[str, Any]) -> str | None:
    """Return an item's own declared language (Atom xml:lang on its title or content)."""
    for key in ("title_detail", "summary_detail"):
        detail = raw.get(key)
        if isinstance(detail, Mapping):
            code = from_tag(text_of(detail.get("language")))
            if code:
                return code
    return None


def _xml_image(raw: Mapping[str, Any], base_url: str) -> str | None:
    candidates: list[str] = []
    for media in raw.get("media_content") or ():
        if isinstance(media, Mapping) and (
            media.get("medium") == "image" or str(media.get("type", "")).startswith("image/")
        ):
            candidates.append(text_of(media.get("url")))
    for enc in raw.get("enclosures") or ():
        if isinstance(enc, Mapping) and str(enc.get("type", "")).startswith("image/"):
            candidates.append(text_of(enc.get("href")))
    for thumb in raw.get("media_thumbnail") or ():
        if isinstance(thumb, Mapping):
            candidates.append(text_of(thumb.get("url")))
    for candidate in candidates:
        url = absolute_url(candidate, base_url)
        if url:
            return url
    return None


def _from_struct(value: Any, *, now: datetime, source: str) -> datetime | None:
    if not isinstance(value, time.struct_time):
        return None
    try:
        when = datetime(*value[:6], tzinfo=UTC)  # feedparser normalizes to UTC
    except (ValueError, OverflowError):
        return None
    return not_future(when, now=now, source=source)
