"""Clean headlines: drop the site's name that feeds and pages glue onto titles.

"Rates rise again - Sportsnet.ca", "MoreBikes | New trail opens" and "Internet-Law »
Ruling on links" become the headline alone, but only when the part cut off is the
source's name, the page's og:site_name, the feed's title or a bare domain: a colon or
dash inside a real headline ("Brexit: what now") stays.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# A separator with spaces around it; "-" only spaced, so "COVID-19" is never split.
_SEPARATOR = re.compile(r"\s+(?:[-|–—»«:·•~/]|::)\s+")
_DOMAIN = re.compile(r"(?i)^(?:www\.)?[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,6}$")
_KEY = re.compile(r"[\W_]+", re.UNICODE)
# Feed titles that name a kind of item, not the story: the page's headline is better.
GENERIC_TITLES = frozenset(
    {"photo", "photos", "picture", "pictures", "image", "gallery", "photo gallery", "video",
     "videos", "watch", "audio", "podcast", "untitled", "no title", "(untitled)", "news",
     "article", "story", "post", "update", "live", "breaking news", "home"}
)  # fmt: skip


def _key(text: str) -> str:
    return _KEY.sub("", text.casefold())


def _is_site_name(part: str, names: list[str]) -> bool:
    key = _key(part)
    if not key:
        return False
    if _DOMAIN.match(part.strip()):
        return True
    for name in names:
        # "Sportsnet.ca" for source "Sportsnet", "The GiveWell Blog" for "GiveWell".
        if key == name or (len(name) >= 4 and (key.startswith(name) or name in key)):
            return len(key) <= len(name) + 12
    return False


def clean_title(title: str, names: Iterable[str | None]) -> str:
    """Return `title` without a leading or trailing site name (one of `names`, or a domain)."""
    keys = [k for k in (_key(n) for n in names if n) if k]
    parts = _SEPARATOR.split(title.strip())
    if len(parts) < 2:
        return title.strip()
    seps = _SEPARATOR.findall(title.strip())
    start, end = 0, len(parts)
    while end - start > 1 and _is_site_name(parts[end - 1], keys):
        end -= 1
    while end - start > 1 and _is_site_name(parts[start], keys):
        start += 1
    out = parts[start]
    for i in range(start + 1, end):
        out += seps[i - 1] + parts[i]
    return out.strip()


def is_generic(title: str, names: Iterable[str | None] = ()) -> bool:
    """Return True when a title says nothing about the story ("Photo", "", the site's name)."""
    text = title.strip().casefold()
    if not text or text in GENERIC_TITLES:
        return True
    key = _key(text)
    return not key or any(key == _key(n) for n in names if n)


def best_title(feed_title: str, page_title: str | None, names: Iterable[str | None]) -> str:
    """Return the cleaned feed title, or the page's headline when the feed's is generic."""
    names = list(names)
    from_feed = clean_title(feed_title, names)
    from_page = clean_title(page_title or "", names)
    if from_feed and not is_generic(from_feed, names):
        return from_feed
    if from_page and not is_generic(from_page, names):
        return from_page
    return from_feed or from_page
