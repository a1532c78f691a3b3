"""Find the feed behind a URL for `digest sources add`: the URL itself, or what its page links to.

Given a site's page rather than its feed, the page's `<link rel="alternate"
type="application/rss+xml">` (or Atom, or JSON Feed) names the feed, as browsers and
feed readers have found it for twenty years. The fetches go through the same guarded
`Fetcher` as a collection; the operator's own host is trusted as a source's is.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from digest.collect.feeds import feed_links, feed_title, parse_feed
from digest.collect.fetch import Fetcher, read_local
from digest.collect.netguard import is_public_address
from digest.config import CollectConfig
from digest.errors import FetchError


@dataclass(frozen=True)
class Discovered:
    """A feed found for a URL."""

    url: str  # the feed itself
    title: str  # its own title ("" when it has none)
    entries: int  # items it holds now
    page: str = ""  # the page it was found on, when the URL was a page


def _trusted(url: str) -> frozenset[str]:
    """Trust the host the operator typed, as a configured source's own host is trusted."""
    host = urlsplit(url).hostname or ""
    try:
        return frozenset({host}) if not is_public_address(host) else frozenset()
    except ValueError:  # a name: the guard checks what it resolves to
        return frozenset({host})


async def discover_feed(url: str, cfg: CollectConfig) -> Discovered:
    """Return the feed at `url`, or the first working feed its HTML page advertises."""
    async with Fetcher(cfg) as fetcher:
        res = await fetcher.fetch(url, trusted_hosts=_trusted(url), check_private=True)
        try:
            entries = parse_feed(
                res.body, source=url, base_url=res.final_url, content_type=res.content_type
            )
            return Discovered(res.final_url, feed_title(res.body, res.content_type), len(entries))
        except FetchError as not_feed:
            links = feed_links(res.body, res.final_url)
            if not links:
                raise FetchError(
                    f"{url}: {not_feed}; and the page names no feed "
                    '(<link rel="alternate" type="application/rss+xml" …>)'
                ) from None
        last = ""
        for link in links:
            try:
                feed = await fetcher.fetch(link, trusted_hosts=_trusted(link), check_private=True)
                entries = parse_feed(
                    feed.body, source=link, base_url=feed.final_url, content_type=feed.content_type
                )
            except FetchError as exc:
                last = f"{link}: {exc}"
                continue
            title = feed_title(feed.body, feed.content_type)
            return Discovered(feed.final_url, title, len(entries), page=res.final_url)
        raise FetchError(f"{url} links to feeds, but none works ({last})")


def discover(url: str, cfg: CollectConfig) -> Discovered:
    """Run `discover_feed`; a local file is read and checked as a feed instead."""
    if not url.startswith(("http://", "https://")):
        path = Path(url.removeprefix("file://")).expanduser()
        if not path.is_file():
            raise FetchError(f"{url}: not an http(s) URL and no such file")
        res = read_local(str(path.resolve()), max_bytes=cfg.max_bytes)
        entries = parse_feed(res.body, source=url, base_url=res.final_url, now=datetime.now(tz=UTC))
        return Discovered(url, feed_title(res.body), len(entries))
    return asyncio.run(discover_feed(url, cfg))
