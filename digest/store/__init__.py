"""The database: articles, per-source state, issues and subscribers.

SQLAlchemy Core over SQLite by default, so a PostgreSQL URL works the same way.
The tables and their numbered migrations live in `digest.store.schema`, the delivery
ledger's queries in `digest.store.ledger`, and `Store` (in `digest.store.core`)
gathers them behind one object. This package imports lazily (PEP 562): a command
that only uses `digest.store.quick` or `digest.store.rows` never loads SQLAlchemy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from digest.store.core import (
        MIGRATIONS,
        SCHEMA_VERSION,
        BounceOutcome,
        BounceRecord,
        Confirmation,
        LedgerWriter,
        SourceResult,
        SourceState,
        Store,
        StoredIssue,
        StoredVariant,
        UTCDateTime,
        address_key,
        articles,
        deliveries,
        issues,
        metadata,
        sections_key,
        sources,
        subscribers,
    )

__all__ = [
    "MIGRATIONS",
    "Confirmation",
    "StoredVariant",
    "sections_key",
    "SCHEMA_VERSION",
    "BounceOutcome",
    "BounceRecord",
    "LedgerWriter",
    "SourceResult",
    "SourceState",
    "Store",
    "StoredIssue",
    "UTCDateTime",
    "address_key",
    "articles",
    "deliveries",
    "issues",
    "metadata",
    "sources",
    "subscribers",
]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'digest.store' has no attribute {name!r}")
    value = getattr(importlib.import_module("digest.store.core"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
