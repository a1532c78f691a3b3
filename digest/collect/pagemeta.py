"""What a page says about itself: meta tags and JSON-LD (date, title, author, image, size)
and its declared language. Read from the parsed tree, not by trafilatura's metadata pass
(a third of its cost, and it says the same).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from digest.collect.cleanup import GENERIC_AUTHORS, collapse_space
from digest.text.language import from_tag

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


IMAGE_META = (
    "og:image",
    "og:image:url",
    "og:image:secure_url",
    "twitter:image",
    "twitter:image:src",
)


TITLE_LIMIT = 300  # as for feed titles


_MAX_IMAGE_SIDE = 20_000  # pixels: a larger declared size is a typo, not a picture


def declared_language(tree: Any, metas: dict[str, str]) -> str | None:
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


def clean_author(author: str | None) -> str | None:
    name = collapse_space(author)
    if not name or name.casefold() in GENERIC_AUTHORS:
        return None
    return name


def meta_values(tree: Any) -> dict[str, str]:
    """Return the page's <meta> values by lower-cased property/name/itemprop."""
    out: dict[str, str] = {}
    for meta in tree.xpath("//meta[@content]"):
        content = collapse_space(meta.get("content"))
        if not content:
            continue
        for attr in ("property", "name", "itemprop"):
            key = (meta.get(attr) or "").strip().lower()
            if key and key not in out:
                out[key] = content
    return out


def json_ld(tree: Any) -> list[Any]:
    """Return the page's parsed JSON-LD blocks (the unreadable ones are skipped)."""
    out = []
    for script in tree.xpath("//script[@type='application/ld+json']/text()"):
        try:
            out.append(json.loads(str(script)))
        except ValueError:
            continue
    return out


def meta_date(metas: dict[str, str], ld: list[Any]) -> datetime | None:
    """Return the publication time the page states precisely (meta tags or JSON-LD)."""
    for key in _DATE_META:
        if key in metas and (when := _parse_date(metas[key])):
            return when
    for value in find_key(ld, "datePublished"):
        if isinstance(value, str) and (when := _parse_date(value)):
            return when
    return None


def page_title(tree: Any, metas: dict[str, str], ld: list[Any]) -> str:
    """Return the headline: og/twitter title, JSON-LD headline, a lone <h1>, or <title>."""
    for key in ("og:title", "twitter:title"):
        if metas.get(key):
            return metas[key]
    for value in find_key(ld, "headline"):
        if isinstance(value, str) and value.strip():
            return value
    h1 = tree.xpath("//h1")
    if len(h1) == 1 and (text := collapse_space(h1[0].text_content())):
        return text
    return collapse_space(" ".join(tree.xpath("//head/title//text()")))


def page_author(metas: dict[str, str], ld: list[Any]) -> str | None:
    """Return the byline the page states in its meta tags or JSON-LD, if any."""
    for key in ("author", "article:author", "dc.creator", "parsely-author", "sailthru.author"):
        value = metas.get(key, "")
        if value and not value.startswith(("http://", "https://")):
            return value
    for value in find_key(ld, "author"):
        for person in value if isinstance(value, list) else [value]:
            name = person.get("name") if isinstance(person, dict) else person
            if isinstance(name, str) and name.strip():
                return name
    return None


def find_key(data: Any, key: str, depth: int = 0) -> Iterable[Any]:
    if depth > 6:
        return
    if isinstance(data, dict):
        if key in data:
            yield data[key]
        for v in data.values():
            yield from find_key(v, key, depth + 1)
    elif isinstance(data, list):
        for v in data:
            yield from find_key(v, key, depth + 1)


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


def image_size(
    metas: dict[str, str], image: str | None, base: str
) -> tuple[int | None, int | None]:
    """Return the og:image's declared (width, height) when `image` is that og:image."""
    og = [metas[k] for k in ("og:image", "og:image:url", "og:image:secure_url") if k in metas]
    if image is None or image not in {first_url([u], base) for u in og}:
        return None, None  # the size describes a different picture
    sizes = []
    for key in ("og:image:width", "og:image:height"):
        value = metas.get(key, "").strip().removesuffix("px")
        sizes.append(int(value) if value.isdigit() and 0 < int(value) <= _MAX_IMAGE_SIDE else None)
    if None in sizes:
        return None, None
    return sizes[0], sizes[1]


def first_url(candidates: Iterable[str], base: str) -> str | None:
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
