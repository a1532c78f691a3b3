"""JSON Feed 1.0/1.1 documents into `Entry` values (feedparser reads RSS and Atom).

Its content_html goes through the sanitizer feedparser applies to RSS/Atom content.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import feedparser
import feedparser.sanitizer

from digest.collect.entries import (
    CONTENT_LIMIT,
    SUMMARY_LIMIT,
    absolute_url,
    make_entry,
    not_future,
    text_of,
)
from digest.errors import FetchError
from digest.models import Entry
from digest.text.clean import one_line, plain_text
from digest.text.language import from_tag

log = logging.getLogger(__name__)

JSON_FEED_VERSIONS = ("https://jsonfeed.org/version/1", "https://jsonfeed.org/version/1.1")


# The sanitizer feedparser applies to RSS/Atom content, so JSON Feed content_html is held
# to the same standard (no scripts, handlers or javascript: links).
_SANITIZE = getattr(feedparser.sanitizer, "_sanitize_html", None)


def parse_json_feed(body: bytes, *, source: str, base_url: str, now: datetime) -> list[Entry]:
    try:
        doc = json.loads(body)
    except UnicodeDecodeError:
        raise FetchError("invalid JSON: not UTF-8 text") from None
    except RecursionError:
        raise FetchError("invalid JSON: nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise FetchError(
            f"invalid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    version = doc.get("version") if isinstance(doc, dict) else None
    if not isinstance(doc, dict) or not (
        isinstance(version, str)
        and version.startswith(("https://jsonfeed.org/version/", "http://jsonfeed.org/version/"))
    ):
        raise FetchError(
            "not a feed: JSON without a JSON Feed version "
            '(expected "version": "https://jsonfeed.org/version/1.1")'
        )
    if version.replace("http://", "https://", 1) not in JSON_FEED_VERSIONS:
        log.warning("%s: unknown JSON Feed version %s; parsing as 1.1", source, version)
    items = doc.get("items")
    if not isinstance(items, list):
        raise FetchError('not a feed: JSON Feed without an "items" list')
    feed_author = _json_author(doc)
    feed_language = from_tag(text_of(doc.get("language")))
    feed_title = one_line(plain_text(text_of(doc.get("title"))), 200)
    allow_file = urlsplit(base_url).scheme == "file"
    entries: list[Entry] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            log.warning("%s: JSON Feed item %d is not an object; skipped", source, i)
            continue
        entry = _json_entry(
            item,
            source=source,
            base_url=base_url,
            allow_file=allow_file,
            feed_author=feed_author,
            now=now,
        )
        if entry is not None:
            language = from_tag(text_of(item.get("language"))) or feed_language
            entry = replace(entry, language=language)
            entries.append(replace(entry, feed_title=feed_title) if feed_title else entry)
    return entries


def _json_entry(
    item: dict[str, Any],
    *,
    source: str,
    base_url: str,
    allow_file: bool,
    feed_author: str,
    now: datetime,
) -> Entry | None:
    raw_id = item.get("id")
    guid = str(raw_id) if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) else ""
    url = absolute_url(text_of(item.get("url")), base_url, allow_file=allow_file) or absolute_url(
        text_of(item.get("external_url")), base_url, allow_file=allow_file
    )
    content_html = text_of(item.get("content_html"))[:CONTENT_LIMIT]
    if content_html and _SANITIZE is not None:
        content_html = str(_SANITIZE(content_html, "utf-8", "text/html"))
    text = text_of(item.get("summary")) or text_of(item.get("content_text"))
    summary = one_line(plain_text(text) if text else plain_text(content_html), SUMMARY_LIMIT)
    published = None
    for key in ("date_published", "date_modified"):
        published = _from_iso(text_of(item.get(key)), now=now, source=source)
        if published is not None:
            break
    image = absolute_url(text_of(item.get("image")), base_url) or absolute_url(
        text_of(item.get("banner_image")), base_url
    )
    return make_entry(
        source=source,
        guid=guid,
        url=url,
        title=text_of(item.get("title")),
        summary=summary,
        content_html=content_html,
        published=published,
        author=_json_author(item) or feed_author,
        image=image or None,
    )


def _json_author(obj: dict[str, Any]) -> str:
    authors = obj.get("authors")
    candidates = authors if isinstance(authors, list) else []
    candidates = [*candidates, obj.get("author")]  # JSON Feed 1.0 had one "author"
    for author in candidates:
        if isinstance(author, dict) and text_of(author.get("name")):
            return text_of(author.get("name"))
    return ""


def _from_iso(value: str, *, now: datetime, source: str) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return not_future(when, now=now, source=source)
