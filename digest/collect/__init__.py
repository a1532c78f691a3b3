"""The collect stage: fetch every source's feed and its article pages, extract each page.

`gather` fetches feeds and pages many at a time, `feeds` parses feeds, `fetch` is the
one HTTP client (with `netguard` keeping it off private addresses), `extract` turns a
page into an article's text, run in worker processes by `pool`. This package imports
lazily (PEP 562): the extraction workers import `extract` without paying for httpx and
feedparser, which only the main process uses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from digest.collect.gather import (
        LOCAL_SOURCE,
        FeedResult,
        Progress,
        collect_feeds,
        fetch_pages,
    )

__all__ = ["LOCAL_SOURCE", "FeedResult", "Progress", "collect_feeds", "fetch_pages"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'digest.collect' has no attribute {name!r}")
    value = getattr(importlib.import_module("digest.collect.gather"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
