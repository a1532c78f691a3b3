"""digest: turn news feeds into a daily, summarized, email-safe newsletter.

The library API mirrors the CLI: load a config, open the store, then collect,
build, render and send.

    from datetime import UTC, datetime
    from digest import Store, build_issue, collect_articles, load_config, render_email

    config = load_config("config.toml")
    store = Store.open(config.store.url)
    now = datetime.now(tz=UTC)
    collect_articles(config, store, now=now)
    issue = build_issue(config, store, now=now)
    if issue:
        subject = render_email(config, issue, now=now).subject

`ensure_issue` stores today's issue (rendered once) and `send_issue(store, issue, config,
now=now)` delivers it through the ledger; `digest.summarize.summarize(text,
sentences=3)` is the summarizer on its own. No exported name shadows a module:
`digest.collect`, `digest.summarize`, `digest.compose`, `digest.render` and
`digest.mail` are the pipeline's stages. Every error the library raises for the user to act on is a
`DigestError` (see `digest.errors` for the tree and the CLI's exit codes).

Names are imported on first use, so `import digest` (and the CLI's start-up) does not
pay for the summarizer, the extractor or the database driver until they are needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from digest import startup

if TYPE_CHECKING:
    from digest.config import Config
    from digest.config.load import load_config
    from digest.errors import (
        AddressError,
        ConfigError,
        DeliveryError,
        DigestError,
        EmptyIssueError,
        ExtractError,
        FetchError,
        LockError,
        LockHeldError,
        LockLostError,
        PreferenceError,
        RenderError,
        ReportError,
        StoreError,
        SummaryError,
    )
    from digest.mail.deliver import send_issue
    from digest.mail.report import SendReport
    from digest.models import Article, Entry, Issue, Page, RenderedIssue, Story, Subscriber
    from digest.pipeline import (
        build_issue,
        collect_articles,
        compose_articles,
        ensure_issue,
        render_email,
    )
    from digest.store import Store

_ERRORS = (
    "AddressError",
    "ConfigError",
    "DeliveryError",
    "DigestError",
    "EmptyIssueError",
    "ExtractError",
    "FetchError",
    "LockError",
    "LockHeldError",
    "LockLostError",
    "PreferenceError",
    "RenderError",
    "ReportError",
    "StoreError",
    "SummaryError",
)
_HOMES: dict[str, str] = {
    "Config": "digest.config",
    "load_config": "digest.config.load",
    **dict.fromkeys(_ERRORS, "digest.errors"),
    "SendReport": "digest.mail.report",
    "send_issue": "digest.mail.deliver",
    **dict.fromkeys(
        ("Article", "Entry", "Issue", "Page", "RenderedIssue", "Story", "Subscriber"),
        "digest.models",
    ),
    **dict.fromkeys(
        ("build_issue", "collect_articles", "compose_articles", "ensure_issue", "render_email"),
        "digest.pipeline",
    ),
    "Store": "digest.store",
}

__all__ = [
    "AddressError",
    "Article",
    "Config",
    "ConfigError",
    "DeliveryError",
    "DigestError",
    "EmptyIssueError",
    "Entry",
    "ExtractError",
    "FetchError",
    "Issue",
    "LockError",
    "LockHeldError",
    "LockLostError",
    "Page",
    "PreferenceError",
    "RenderError",
    "RenderedIssue",
    "ReportError",
    "SendReport",
    "Store",
    "StoreError",
    "Story",
    "Subscriber",
    "SummaryError",
    "build_issue",
    "collect_articles",
    "compose_articles",
    "ensure_issue",
    "load_config",
    "render_email",
    "send_issue",
]


__getattr__, __dir__ = startup.exports(__name__, _HOMES)
