"""An `Entry` from any feed format, held to the same rules: text de-marked-up and
flattened within limits, links absolute http(s), dates in the far future dropped."""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

from digest.models import Entry
from digest.text.clean import one_line, plain_text

log = logging.getLogger(__name__)

TITLE_LIMIT = 300


SUMMARY_LIMIT = 1000


CONTENT_LIMIT = 200_000


FUTURE_SLACK = timedelta(days=1)


_URL_JUNK = re.compile(r"[\t\r\n\x00-\x1f\x7f]")


def make_entry(
    *,
    source: str,
    guid: str,
    url: str,
    title: str,
    summary: str,
    content_html: str,
    published: datetime | None,
    author: str,
    image: str | None,
) -> Entry | None:
    """Build a clean Entry, or None when the item has neither a link nor any text."""
    clean_title = one_line(plain_text(title), TITLE_LIMIT)
    if not clean_title:
        # Title-less items (microblogs, some RSS) get the start of their text as a title.
        clean_title = one_line(summary, 120)
    if not url and not clean_title:
        return None
    guid = one_line(guid, 2000)
    if len(guid) > 500:
        guid = "sha1:" + hashlib.sha1(guid.encode("utf-8")).hexdigest()
    if not guid:
        # Without a guid or a link, the item's words are its identity: two status
        # updates titled alike but saying different things stay two items.
        words = "\n".join((clean_title, summary, content_html[:CONTENT_LIMIT]))
        guid = url or "sha1:" + hashlib.sha1(words.encode("utf-8")).hexdigest()
    return Entry(
        source=source,
        guid=guid,
        url=url,
        title=clean_title,
        summary=summary,
        content_html=content_html[:CONTENT_LIMIT],
        published=published,
        author=one_line(plain_text(author), 200) or None,
        image=image or None,
    )


def not_future(when: datetime, *, now: datetime, source: str) -> datetime | None:
    if when > now + FUTURE_SLACK:
        log.info("%s: ignoring a date in the future (%s)", source, when.isoformat())
        return None
    return when


def absolute_url(link: str, base_url: str, *, allow_file: bool = False) -> str:
    """Return `link` made absolute against `base_url` when http(s) (or allowed file:), else ""."""
    link = _URL_JUNK.sub("", link).strip().replace(" ", "%20")
    if not link:
        return ""
    try:
        url = urljoin(base_url, link)
        parts = urlsplit(url)
    except ValueError:
        return ""
    scheme = parts.scheme.lower()
    if scheme in ("http", "https") and parts.hostname:
        return url
    if scheme == "file" and allow_file:
        return url
    return ""


def text_of(value: Any) -> str:
    return value if isinstance(value, str) else ""
