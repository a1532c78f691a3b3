"""digest: turn news feeds into a daily, summarized, email-safe newsletter.

The library API mirrors the CLI: load a config, open the store, then collect,
build, render and send.

    from datetime import UTC, datetime
    from digest import Store, build_issue, collect_articles, load_config, render

    config = load_config("config.toml")
    store = Store.open(config.store.url)
    now = datetime.now(tz=UTC)
    collect_articles(config, store, now=now)
    issue = build_issue(config, store, now=now)
    if issue:
        print(render(config, issue, now=now).subject)
"""

from .config import Config, load_config
from .errors import ConfigError, DeliveryError, DigestError, ExtractError, FetchError, StoreError
from .models import Article, Entry, Issue, Page, RenderedIssue, Story, Subscriber
from .pipeline import build_issue, collect_articles, compose, ensure_issue, render
from .store import Store

__all__ = [
    "Article",
    "Config",
    "ConfigError",
    "DeliveryError",
    "DigestError",
    "Entry",
    "ExtractError",
    "FetchError",
    "Issue",
    "Page",
    "RenderedIssue",
    "Store",
    "StoreError",
    "Story",
    "Subscriber",
    "build_issue",
    "collect_articles",
    "compose",
    "ensure_issue",
    "load_config",
    "render",
]
