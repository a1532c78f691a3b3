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
        subject = render(config, issue, now=now).subject

`ensure_issue` stores today's issue (rendered once) and `send_issue(store, issue, config,
now=now)` delivers it through the ledger; `summarize(text, sentences=3)` is the
summarizer on its own.
"""

from digest.config import Config
from digest.config.load import load_config
from digest.errors import (
    ConfigError,
    DeliveryError,
    DigestError,
    ExtractError,
    FetchError,
    StoreError,
)
from digest.mail.deliver import SendReport, send_issue
from digest.models import Article, Entry, Issue, Page, RenderedIssue, Story, Subscriber
from digest.pipeline import build_issue, collect_articles, compose, ensure_issue, render
from digest.store import Store
from digest.summarize import summarize

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
    "SendReport",
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
    "send_issue",
    "summarize",
]
