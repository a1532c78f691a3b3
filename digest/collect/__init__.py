"""The collect stage: fetch every source's feed and its article pages, extract each page.

`stage` runs a whole collection (feeds to stored articles), `gather` fetches feeds and
pages many at a time, `feeds` parses feeds, `fetch` is the
one HTTP client (with `netguard` keeping it off private addresses), `extract` turns a
page into an article's text, run in worker processes by `pool`. This package imports
lazily (PEP 562): the extraction workers import `extract` without paying for httpx and
feedparser, which only the main process uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from digest import startup

if TYPE_CHECKING:
    from digest.collect.gather import (
        LOCAL_SOURCE as LOCAL_SOURCE,
    )
    from digest.collect.gather import (
        FeedResult as FeedResult,
    )
    from digest.collect.gather import (
        Gathering as Gathering,
    )
    from digest.collect.gather import (
        Progress as Progress,
    )
    from digest.collect.gather import (
        collect_feeds as collect_feeds,
    )
    from digest.collect.gather import (
        fetch_pages as fetch_pages,
    )

HOMES = {
    name: "digest.collect.gather"
    for name in (
        "LOCAL_SOURCE",
        "FeedResult",
        "Gathering",
        "Progress",
        "collect_feeds",
        "fetch_pages",
    )
}
__all__ = sorted(HOMES)
__getattr__, __dir__ = startup.exports(__name__, HOMES)
