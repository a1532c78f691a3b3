"""The database: articles, per-source state, issues and subscribers.

SQLAlchemy Core over SQLite by default, so a PostgreSQL URL works the same way.
The tables and their numbered migrations live in `digest.store.schema`, the delivery
ledger's queries in `digest.store.ledger`, bounces and complaints in
`digest.store.bounces`, and `Store` (in `digest.store.core`) gathers them behind one
object. This package imports lazily (PEP 562): a command that only uses
`digest.store.quick` or `digest.store.rows` never loads SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from digest import startup

if TYPE_CHECKING:
    from digest.store.bounces import (
        BounceOutcome as BounceOutcome,
    )
    from digest.store.bounces import (
        BounceRecord as BounceRecord,
    )
    from digest.store.core import (
        SourceResult as SourceResult,
    )
    from digest.store.core import (
        SourceState as SourceState,
    )
    from digest.store.core import (
        Store as Store,
    )
    from digest.store.core import (
        StoredIssue as StoredIssue,
    )
    from digest.store.ledger import (
        LedgerWriter as LedgerWriter,
    )
    from digest.store.readers import (
        Confirmation as Confirmation,
    )
    from digest.store.readers import (
        StoredVariant as StoredVariant,
    )
    from digest.store.readers import (
        sections_key as sections_key,
    )
    from digest.store.rows import (
        address_key as address_key,
    )
    from digest.store.schema import (
        MIGRATIONS as MIGRATIONS,
    )
    from digest.store.schema import (
        SCHEMA_VERSION as SCHEMA_VERSION,
    )
    from digest.store.schema import (
        UTCDateTime as UTCDateTime,
    )
    from digest.store.schema import (
        articles as articles,
    )
    from digest.store.schema import (
        deliveries as deliveries,
    )
    from digest.store.schema import (
        issues as issues,
    )
    from digest.store.schema import (
        metadata as metadata,
    )
    from digest.store.schema import (
        sources as sources,
    )
    from digest.store.schema import (
        subscribers as subscribers,
    )

# Each name and the module it lives in; imported on first use (see `digest.startup`).
HOMES = {
    "Store": "digest.store.core",
    "StoredIssue": "digest.store.core",
    "SourceResult": "digest.store.core",
    "SourceState": "digest.store.core",
    "BounceOutcome": "digest.store.bounces",
    "BounceRecord": "digest.store.bounces",
    "Confirmation": "digest.store.readers",
    "StoredVariant": "digest.store.readers",
    "sections_key": "digest.store.readers",
    "LedgerWriter": "digest.store.ledger",
    "MIGRATIONS": "digest.store.schema",
    "SCHEMA_VERSION": "digest.store.schema",
    "UTCDateTime": "digest.store.schema",
    "articles": "digest.store.schema",
    "deliveries": "digest.store.schema",
    "issues": "digest.store.schema",
    "metadata": "digest.store.schema",
    "sources": "digest.store.schema",
    "subscribers": "digest.store.schema",
    "address_key": "digest.store.rows",
}
__all__ = sorted(HOMES)
__getattr__, __dir__ = startup.exports(__name__, HOMES)
