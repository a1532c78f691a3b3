"""The tables, their numbered migrations, and the base that opens and checks a database.

One schema for SQLite and PostgreSQL (SQLAlchemy Core). Every change to it is a
numbered migration recorded in `schema_version`; `digest db upgrade` applies the
pending ones. A database is used only at exactly the version this code knows: an
older one would lack columns the code writes, a newer one may hold states this
code would misread. An empty database is created at the current version at once,
so SQLite stays zero set-up.
"""

from __future__ import annotations

import functools
import logging
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from digest.errors import StoreError
from digest.store.quick import KNOWN_MIGRATIONS
from digest.store.rows import address_key

log = logging.getLogger(__name__)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Store aware datetimes as UTC ISO text; read them back aware.

    Fixed-width UTC text sorts like the instants it names, so comparisons in SQL
    (lease expiry, cut-offs) work the same on both back ends.
    """

    impl = sa.String(32)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> str | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC).isoformat(timespec="microseconds")

    def process_result_value(self, value: str | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return datetime.fromisoformat(value).astimezone(UTC)


metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("applied_at", UTCDateTime, nullable=False),
)

sources = sa.Table(
    "sources",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("etag", sa.Text),
    sa.Column("last_modified", sa.Text),
    sa.Column("last_run", UTCDateTime),
    sa.Column("last_success", UTCDateTime),
    sa.Column("last_error", sa.Text),
    sa.Column("failing_since", UTCDateTime),
    sa.Column("consecutive_failures", sa.Integer, nullable=False, default=0),
)

articles = sa.Table(
    "articles",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(200), nullable=False),
    sa.Column("guid", sa.Text, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("title_key", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False, default=""),
    sa.Column("feed_summary", sa.Text, nullable=False, default=""),
    sa.Column("published", UTCDateTime),
    sa.Column("first_seen", UTCDateTime, nullable=False),
    sa.Column("author", sa.Text),
    sa.Column("image", sa.Text),
    sa.Column("image_width", sa.Integer),  # migration 9: the size the page declares
    sa.Column("image_height", sa.Integer),
    sa.Column("language", sa.String(40)),
    sa.Column("issue_id", sa.Integer, sa.ForeignKey("issues.id")),
    sa.UniqueConstraint("guid", name="uq_articles_guid"),
    sa.Index("ix_articles_url", "url"),
    sa.Index("ix_articles_title_key", "title_key"),
    sa.Index("ix_articles_first_seen", "first_seen"),
)

issues = sa.Table(
    "issues",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("date", sa.String(10), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("html", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("preheader", sa.Text, nullable=False, default=""),
    sa.Column("article_ids", sa.Text, nullable=False, default="[]"),
    # Migration 5: the composed issue as JSON (digest.compose.document), for the archive.
    sa.Column("doc", sa.Text),
)

subscribers = sa.Table(
    "subscribers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("name", sa.Text, nullable=False, default=""),
    sa.Column("status", sa.String(20), nullable=False, default="active"),
    sa.Column("token", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # Migration 7: the reader's own preferences (NULL = the site's default) ...
    sa.Column("timezone", sa.String(64)),
    sa.Column("send_at", sa.String(5)),
    sa.Column("sections", sa.Text),  # a JSON list of section names; NULL = every section
    # ... and the double opt-in of a reader who signed up on the web (status "pending").
    sa.Column("confirm_token", sa.String(64)),
    sa.Column("confirm_sent_at", UTCDateTime),
    sa.Column("confirm_expires", UTCDateTime),
    # Migration 4: `address_key(email)`, what makes two spellings one reader. Nullable
    # only because ALTER TABLE adds it to existing rows; the code always writes it.
    sa.Column("email_key", sa.String(320)),
)
# Migration 4: one reader per mailbox (created after existing duplicates are merged).
ix_subscribers_email_key = sa.Index(
    "ix_subscribers_email_key", subscribers.c.email_key, unique=True
)
ix_subscribers_confirm = sa.Index("ix_subscribers_confirm", subscribers.c.confirm_token)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("issue_id", sa.Integer, sa.ForeignKey("issues.id"), primary_key=True),
    sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), primary_key=True),
    sa.Column("email", sa.String(320), nullable=False),
    # pending -> sending (committed just before end-of-data) -> sent | failed
    sa.Column("status", sa.String(20), nullable=False, default="pending"),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text),
    sa.Column("message_id", sa.Text),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # Migration 3: the worker holding a pending row, and until when (see digest.store.ledger).
    sa.Column("claimed_by", sa.String(100)),
    sa.Column("claimed_until", UTCDateTime),
    # Migration 8: when the server first answered this delivery with a temporary refusal
    # (4xx, or 552 at RCPT); past [smtp].give_up_hours of them the delivery fails.
    sa.Column("retry_since", UTCDateTime),
    sa.Index("ix_deliveries_status", "issue_id", "status"),
)


# Migration 3: workers claim the lowest pending rows again and again; without this the
# scan walks past every row already sent, and a send slows down as it proceeds.
@functools.cache
def pending_index() -> sa.Index:
    """The partial index on pending deliveries, built on first use: naming its
    `postgresql_where` loads SQLAlchemy's PostgreSQL dialect (~50 ms at every start-up),
    which a command on an SQLite store that migrates nothing never needs."""
    return sa.Index(
        "ix_deliveries_pending",
        deliveries.c.issue_id,
        deliveries.c.subscriber_id,
        postgresql_where=deliveries.c.status == "pending",
        sqlite_where=deliveries.c.status == "pending",
    )


# -- migration 4: merged readers' tokens, bounces and complaints -----------------
# Tokens of readers merged into another (two spellings of one mailbox): links and
# VERP addresses in mail already sent with them must still find the reader.
merged_tokens = sa.Table(
    "merged_tokens",
    metadata,
    sa.Column("token", sa.String(64), primary_key=True),
    sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), nullable=False),
    sa.Column("merged_at", UTCDateTime, nullable=False),
)
# One row per processed bounce (DSN) or complaint (ARF report): the soft-bounce streak
# is counted from these, and they tell the operator why a reader stopped getting mail.
bounces = sa.Table(
    "bounces",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), nullable=False),
    sa.Column("issue_id", sa.Integer, sa.ForeignKey("issues.id")),
    sa.Column("kind", sa.String(20), nullable=False),  # hard | soft | complaint
    sa.Column("status", sa.String(40), nullable=False),  # "5.1.1", or the feedback type
    sa.Column("detail", sa.Text, nullable=False, default=""),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Index("ix_bounces_subscriber", "subscriber_id"),
)

# -- daemon locks (migration 2; the logic lives in digest.store.locks) ---------------
# One row per lock name: who holds it and when it last proved it was alive.
locks = sa.Table(
    "locks",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("holder", sa.String(64), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("acquired_at", UTCDateTime, nullable=False),
    sa.Column("heartbeat", UTCDateTime, nullable=False),
)
# -- end daemon locks ---------------------------------------------------------

# Migration 7: named values the web side keeps (the key that signs its form tokens).
settings = sa.Table(
    "settings",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# Migration 7: an issue rendered for one choice of sections, made once per choice.
issue_variants = sa.Table(
    "issue_variants",
    metadata,
    sa.Column("issue_id", sa.Integer, sa.ForeignKey("issues.id"), primary_key=True),
    sa.Column("sections", sa.String(500), primary_key=True),  # JSON list, sorted
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("html", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("preheader", sa.Text, nullable=False, default=""),
    sa.Column("article_ids", sa.Text, nullable=False, default="[]"),
)

# A step may return notes for the operator (`digest db upgrade` prints them).
Migration = Callable[[Connection], list[str] | None]


def _create(*tables: sa.Table) -> Migration:
    def step(conn: Connection) -> None:
        for table in tables:
            table.create(conn, checkfirst=True)

    return step


def _create_indexes(*indexes: sa.Index) -> Migration:
    def step(conn: Connection) -> None:
        for index in indexes:
            index.create(conn, checkfirst=True)

    return step


def _steps(*steps: Migration) -> Migration:
    def step(conn: Connection) -> list[str]:
        notes: list[str] = []
        for one in steps:
            notes.extend(one(conn) or [])
        return notes

    return step


def _add_columns(table: sa.Table, *names: str) -> Migration:
    """Add columns that a database created before them lacks (new ones have them already)."""

    def step(conn: Connection) -> None:
        have = {c["name"] for c in sa.inspect(conn).get_columns(table.name)}
        for name in names:
            if name not in have:
                kind = table.c[name].type.compile(dialect=conn.dialect)
                conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {name} {kind}")

    return step


# Merging readers keeps the most restrictive status: a reader who left, bounced or
# complained in one spelling must not keep getting mail in another.
STATUS_RANK = {"active": 0, "pending": 1, "unsubscribed": 2, "bounced": 3, "complained": 4}
# Merging delivery rows keeps the one that says the most about what reached the mailbox.
_DELIVERY_RANK = {"skipped": 0, "pending": 1, "failed": 2, "sending": 3, "sent": 4}


def status_rank(status: str) -> int:
    """Return how restrictive a subscriber status is (unknown ones rank just above active)."""
    return STATUS_RANK.get(status, 1)


def _merge_group(conn: Connection, group: list[Any], now: datetime) -> str:
    """Merge subscriber rows of one mailbox into the one that signed up first; describe it."""
    keep = min(group, key=lambda r: (r["created_at"], r["id"]))
    others = [r for r in group if r["id"] != keep["id"]]
    ids = [r["id"] for r in group]
    other_ids = [r["id"] for r in others]
    status = max((r["status"] for r in group), key=status_rank)
    name = keep["name"] or next((r["name"] for r in group if r["name"]), "")
    # The ledger: one row per issue for the merged reader, the one that went furthest,
    # so nobody is sent an issue that one of their spellings already received.
    rows = conn.execute(
        sa.select(deliveries.c.issue_id, deliveries.c.subscriber_id, deliveries.c.status).where(
            deliveries.c.subscriber_id.in_(ids)
        )
    ).all()
    by_issue: dict[int, list[Any]] = {}
    for row in rows:
        by_issue.setdefault(row.issue_id, []).append(row)
    for issue_id, issue_rows in by_issue.items():
        best = max(
            issue_rows,
            key=lambda r: (_DELIVERY_RANK.get(r.status, 0), r.subscriber_id == keep["id"]),
        )
        drop = [r.subscriber_id for r in issue_rows if r.subscriber_id != best.subscriber_id]
        if drop:
            conn.execute(
                deliveries.delete().where(
                    deliveries.c.issue_id == issue_id, deliveries.c.subscriber_id.in_(drop)
                )
            )
        if best.subscriber_id != keep["id"]:
            conn.execute(
                deliveries.update()
                .where(
                    deliveries.c.issue_id == issue_id,
                    deliveries.c.subscriber_id == best.subscriber_id,
                )
                .values(subscriber_id=keep["id"])
            )
    conn.execute(
        bounces.update()
        .where(bounces.c.subscriber_id.in_(other_ids))
        .values(subscriber_id=keep["id"])
    )
    conn.execute(
        merged_tokens.update()
        .where(merged_tokens.c.subscriber_id.in_(other_ids))
        .values(subscriber_id=keep["id"])
    )
    conn.execute(
        merged_tokens.insert(),
        [{"token": r["token"], "subscriber_id": keep["id"], "merged_at": now} for r in others],
    )
    conn.execute(subscribers.delete().where(subscribers.c.id.in_(other_ids)))
    conn.execute(
        subscribers.update()
        .where(subscribers.c.id == keep["id"])
        .values(
            status=status,
            name=name,
            created_at=min(r["created_at"] for r in group),
            updated_at=now,
        )
    )
    spellings = ", ".join(r["email"] for r in others)
    return f"merged {spellings} into {keep['email']} (status {status})"


def _merge_duplicate_addresses(conn: Connection) -> list[str]:
    """Fill `email_key` and merge readers whose addresses differ only in case; say what merged."""
    cols = (
        subscribers.c.id,
        subscribers.c.email,
        subscribers.c.name,
        subscribers.c.status,
        subscribers.c.token,
        subscribers.c.created_at,
    )
    rows = conn.execute(sa.select(*cols).order_by(subscribers.c.id)).mappings().all()
    groups: dict[str, list[Any]] = {}
    for row in rows:
        groups.setdefault(address_key(row["email"]), []).append(row)
    now = datetime.now(tz=UTC)
    notes = [_merge_group(conn, g, now) for g in groups.values() if len(g) > 1]
    for note in notes:
        log.warning("store: %s", note)
    updates = [{"b_id": _kept_id(g), "b_key": key} for key, g in groups.items()]
    if updates:
        conn.execute(
            subscribers.update()
            .where(subscribers.c.id == sa.bindparam("b_id"))
            .values(email_key=sa.bindparam("b_key")),
            updates,
        )
    return notes


def _kept_id(group: list[Any]) -> int:
    return int(min(group, key=lambda r: (r["created_at"], r["id"]))["id"])


# Numbered migrations, applied in order, each in its own transaction. A table is
# created with its latest columns, so later steps must tolerate finding them there.
MIGRATIONS: dict[int, Migration] = {
    1: _create(schema_version, sources, issues, articles, subscribers, deliveries),
    2: _create(locks),
    3: _steps(
        _add_columns(deliveries, "claimed_by", "claimed_until"),
        lambda conn: pending_index().create(conn, checkfirst=True),
    ),
    7: _steps(
        _add_columns(
            subscribers,
            "timezone",
            "send_at",
            "sections",
            "confirm_token",
            "confirm_sent_at",
            "confirm_expires",
        ),
        _create_indexes(ix_subscribers_confirm),
        _create(settings, issue_variants),
    ),
    4: _steps(
        _create(merged_tokens, bounces),
        _add_columns(subscribers, "email_key"),
        _merge_duplicate_addresses,
        _create_indexes(ix_subscribers_email_key),
    ),
    5: _add_columns(issues, "doc"),
    8: _add_columns(deliveries, "retry_since"),
    9: _add_columns(articles, "image_width", "image_height"),
}
SCHEMA_VERSION = max(MIGRATIONS)
if set(MIGRATIONS) != KNOWN_MIGRATIONS:  # the quick read path must know every migration
    raise ImportError("digest.store.quick.KNOWN_MIGRATIONS differs from schema.MIGRATIONS")


def advisory_key(name: str) -> int:
    """Return a stable signed 64-bit key for a PostgreSQL advisory lock named `name`."""
    return zlib.crc32(f"digest:{name}".encode()) - 2**31


class Database:
    """An engine plus the schema checks every store needs before it is used."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.migration_notes: list[str] = []  # what the last `migrate()` told the operator

    @property
    def shared(self) -> bool:
        """Return True on a server database (PostgreSQL) that many processes can share."""
        return self.engine.dialect.name == "postgresql"

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """Yield a connection in a transaction, turning database failures into StoreError."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except sa.exc.OperationalError as exc:
            raise StoreError(f"database error on {self.where}: {exc.orig}") from None

    @property
    def where(self) -> str:
        """Return the database URL without its password, for messages."""
        return self.engine.url.render_as_string(hide_password=True)

    def version(self) -> int:
        """Return the schema version of the database (0 when empty)."""
        with self.begin() as conn:
            return _version(conn)

    def check_schema(self) -> None:
        """Raise StoreError unless the database is at exactly this code's schema version."""
        current = self.version()
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"{self.where} has schema version {current}, newer than this digest "
                f"knows ({SCHEMA_VERSION}); upgrade digest on this machine"
            )
        with self.begin() as conn:
            missing = set(MIGRATIONS) - _applied(conn)
        if current < SCHEMA_VERSION or missing:
            raise StoreError(
                f"{self.where} has schema version {current}, older than this digest "
                f"needs ({SCHEMA_VERSION}); back it up, then run `digest db upgrade`"
            )

    def migrate(self) -> list[int]:
        """Apply pending numbered migrations; return the versions applied.

        Notes a migration has for the operator (readers it merged) are left in
        `migration_notes`.

        On PostgreSQL an advisory lock serializes processes that start together on
        an empty database, so the schema is created once.
        """
        applied: list[int] = []
        try:
            with self.engine.connect() as conn:
                if self.shared:
                    conn.execute(sa.select(sa.func.pg_advisory_lock(advisory_key("migrate"))))
                    conn.commit()
                try:
                    current = _version(conn)
                    conn.commit()
                    if current > SCHEMA_VERSION:
                        self.check_schema()
                    # Every migration not yet recorded, not just those above the highest:
                    # migrations numbered on parallel branches may land out of order.
                    done = _applied(conn)
                    conn.commit()
                    for version in sorted(set(MIGRATIONS) - done):
                        with conn.begin():
                            notes = MIGRATIONS[version](conn) or []
                            conn.execute(
                                schema_version.insert().values(
                                    version=version, applied_at=datetime.now(tz=UTC)
                                )
                            )
                        applied.append(version)
                        self.migration_notes.extend(notes)
                        log.info("store: applied migration %d", version)
                finally:
                    if self.shared:
                        conn.execute(sa.select(sa.func.pg_advisory_unlock(advisory_key("migrate"))))
                        conn.commit()
        except sa.exc.OperationalError as exc:
            raise StoreError(f"database error on {self.where}: {exc.orig}") from None
        return applied


def _applied(conn: Connection) -> set[int]:
    if not sa.inspect(conn).has_table("schema_version"):
        return set()
    return {int(v) for v in conn.execute(sa.select(schema_version.c.version)).scalars()}


def _version(conn: Connection) -> int:
    if not sa.inspect(conn).has_table("schema_version"):
        return 0
    v = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar()
    return int(v or 0)


# -- rows to models -------------------------------------------------------------


def columns_of(row: Any, table: sa.Table) -> dict[str, Any]:
    """Return one table's columns of a joined row, by column name."""
    return {c.name: row[c] for c in table.c if c in row}
