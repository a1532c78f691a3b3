"""The database: articles, per-source state, issues, subscribers and the delivery ledger.

SQLAlchemy Core over SQLite by default, so a PostgreSQL URL works the same way.
Schema changes go through numbered migrations recorded in `schema_version`.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from .errors import StoreError
from .models import Article, Delivery, Subscriber

log = logging.getLogger(__name__)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Store aware datetimes as UTC ISO text; read them back aware."""

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
)

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
    sa.Index("ix_deliveries_status", "issue_id", "status"),
)

# -- daemon locks (migration 2; the logic lives in digest.locks) ---------------
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

# Numbered migrations: version -> tables created by it. Later versions add entries.
MIGRATIONS: dict[int, Sequence[sa.Table]] = {
    1: (schema_version, sources, issues, articles, subscribers, deliveries),
    2: (locks,),
}
SCHEMA_VERSION = max(MIGRATIONS)


@dataclass(frozen=True)
class SourceState:
    """What the store remembers about a source between runs."""

    name: str
    etag: str | None = None
    last_modified: str | None = None
    last_run: datetime | None = None
    last_success: datetime | None = None
    last_error: str | None = None
    failing_since: datetime | None = None
    consecutive_failures: int = 0


@dataclass(frozen=True)
class StoredIssue:
    """A frozen, stored issue: exactly what was (or will be) sent."""

    id: int
    date: str
    created_at: datetime
    subject: str
    html: str
    text: str
    preheader: str
    article_ids: tuple[int, ...]


# -- deliveries: ledger statements (used by Store and LedgerWriter below) -------
# The statements run for every message, built once: constructing SQLAlchemy
# expressions per call costs more than executing them.
_THIS_DELIVERY = (
    deliveries.c.issue_id == sa.bindparam("b_issue"),
    deliveries.c.subscriber_id == sa.bindparam("b_sub"),
)
_CLAIM = (
    deliveries.update()
    .where(*_THIS_DELIVERY, deliveries.c.status == "pending")
    .where(
        sa.exists().where(
            subscribers.c.id == sa.bindparam("b_sub"), subscribers.c.status == "active"
        )
    )
    .values(
        status="sending",
        attempts=deliveries.c.attempts + 1,
        message_id=sa.bindparam("b_mid"),
        last_error=None,
        updated_at=sa.bindparam("b_now", type_=UTCDateTime),
    )
)
_FINISH = (
    deliveries.update()
    .where(*_THIS_DELIVERY, deliveries.c.status == sa.bindparam("b_expect"))
    .values(
        status=sa.bindparam("b_status"),
        last_error=sa.bindparam("b_error"),
        updated_at=sa.bindparam("b_now", type_=UTCDateTime),
    )
)
_FINISH_COUNTED = _FINISH.values(attempts=deliveries.c.attempts + 1)
_BOUNCE = (
    subscribers.update()
    .where(subscribers.c.id == sa.bindparam("b_sub"), subscribers.c.status == "active")
    .values(status="bounced", updated_at=sa.bindparam("b_now", type_=UTCDateTime))
)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers (digest status, digest serve) work while a send writes;
    # busy_timeout makes concurrent writers wait instead of failing at once.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


class Store:
    """All database access; hand it an engine (tests use a temp SQLite file)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Store:
        """Open (and by default create or upgrade) the store at a SQLAlchemy URL."""
        try:
            engine = sa.create_engine(url)
        except Exception as exc:  # bad URL or missing driver
            raise StoreError(f"cannot open store {url!r}: {exc}") from None
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        store = cls(engine)
        if migrate:
            store.migrate()
        return store

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
            raise StoreError(f"database error on {self._where()}: {exc.orig}") from None

    def _where(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    # -- schema ---------------------------------------------------------------

    def version(self) -> int:
        """Return the schema version of the database (0 when empty)."""
        with self.begin() as conn:
            if not sa.inspect(conn).has_table("schema_version"):
                return 0
            v = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar()
            return int(v or 0)

    def migrate(self) -> None:
        """Apply pending numbered migrations; refuse a database newer than this code."""
        current = self.version()
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"{self._where()} has schema version {current}, newer than this digest "
                f"knows ({SCHEMA_VERSION}); upgrade digest"
            )
        for version in sorted(v for v in MIGRATIONS if v > current):
            with self.begin() as conn:
                for table in MIGRATIONS[version]:
                    table.create(conn, checkfirst=True)
                conn.execute(schema_version.insert().values(version=version, applied_at=_now()))
            log.info("store: applied migration %d", version)

    def check_writable(self) -> None:
        """Fail with a clear StoreError unless the database accepts writes."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    sa.update(schema_version)
                    .where(schema_version.c.version == -1)
                    .values(applied_at=_now())
                )
                if self.engine.dialect.name == "sqlite":
                    conn.exec_driver_sql("CREATE TEMP TABLE IF NOT EXISTS _w(x)")
                    conn.exec_driver_sql("DROP TABLE IF EXISTS main._digest_write_probe")
                    conn.exec_driver_sql("CREATE TABLE main._digest_write_probe(x)")
                    conn.exec_driver_sql("DROP TABLE main._digest_write_probe")
        except sa.exc.DBAPIError as exc:  # PostgreSQL says "read-only" as an InternalError
            raise StoreError(
                f"the store {self._where()} is not writable ({exc.orig}); "
                "check the file and folder permissions and free disk space"
            ) from None

    # -- sources --------------------------------------------------------------

    def source_states(self) -> dict[str, SourceState]:
        """Return the remembered state of every source, by name."""
        with self.begin() as conn:
            rows = conn.execute(sa.select(sources)).mappings().all()
        return {
            r["name"]: SourceState(
                name=r["name"],
                etag=r["etag"],
                last_modified=r["last_modified"],
                last_run=r["last_run"],
                last_success=r["last_success"],
                last_error=r["last_error"],
                failing_since=r["failing_since"],
                consecutive_failures=r["consecutive_failures"] or 0,
            )
            for r in rows
        }

    def record_source_result(
        self,
        name: str,
        url: str,
        *,
        now: datetime,
        error: str | None,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> SourceState:
        """Remember how a source fared: validators on success, failure streak on error."""
        with self.begin() as conn:
            row = conn.execute(sa.select(sources).where(sources.c.name == name)).mappings().first()
            if row is None:
                conn.execute(sources.insert().values(name=name, url=url, consecutive_failures=0))
                row = conn.execute(sources.select().where(sources.c.name == name)).mappings().one()
            values: dict[str, Any] = {"url": url, "last_run": now}
            if error is None:
                values.update(
                    last_success=now,
                    last_error=None,
                    failing_since=None,
                    consecutive_failures=0,
                )
                if etag is not None or last_modified is not None:
                    values.update(etag=etag, last_modified=last_modified)
            else:
                values.update(
                    last_error=error,
                    failing_since=row["failing_since"] or now,
                    consecutive_failures=(row["consecutive_failures"] or 0) + 1,
                )
            conn.execute(sources.update().where(sources.c.name == name).values(**values))
        return self.source_states()[name]

    # -- articles -------------------------------------------------------------

    def seen_keys(self) -> tuple[set[str], set[str], set[str]]:
        """Return the guids, canonical URLs and title keys already stored (for dedup)."""
        with self.begin() as conn:
            rows = conn.execute(sa.select(articles.c.guid, articles.c.url, articles.c.title_key))
            guids, urls, titles = set(), set(), set()
            for guid, url, title_key in rows:
                guids.add(guid)
                urls.add(url)
                if title_key:
                    titles.add(title_key)
        return guids, urls, titles

    def add_articles(self, items: Iterable[tuple[Article, str]]) -> list[Article]:
        """Insert (article, title_key) pairs, skipping duplicates; return those inserted."""
        added: list[Article] = []
        with self.begin() as conn:
            for art, key in items:
                exists = conn.execute(
                    sa.select(articles.c.id).where(
                        (articles.c.guid == art.guid) | (articles.c.url == art.url)
                    )
                ).first()
                if exists is not None:
                    continue
                res = conn.execute(
                    articles.insert().values(
                        source=art.source,
                        guid=art.guid,
                        url=art.url,
                        title=art.title,
                        title_key=key,
                        text=art.text,
                        feed_summary=art.feed_summary,
                        published=art.published,
                        first_seen=art.first_seen or _now(),
                        author=art.author,
                        image=art.image,
                        language=art.language,
                    )
                )
                pk = res.inserted_primary_key
                added.append(_replace_id(art, int(pk[0]) if pk else None))
        return added

    def unissued_articles(self, since: datetime) -> list[Article]:
        """Return articles in no issue yet, published (or first seen if undated) since `since`."""
        when = sa.func.coalesce(articles.c.published, articles.c.first_seen, type_=UTCDateTime)
        with self.begin() as conn:
            rows = (
                conn.execute(
                    sa.select(articles)
                    .where(articles.c.issue_id.is_(None))
                    .where(when >= since)
                    .order_by(when.desc(), articles.c.id)
                )
                .mappings()
                .all()
            )
        return [_article(r) for r in rows]

    def articles_by_ids(self, ids: Sequence[int]) -> list[Article]:
        """Return the stored articles with these ids, in the given order."""
        with self.begin() as conn:
            rows = conn.execute(sa.select(articles).where(articles.c.id.in_(ids))).mappings().all()
        by_id = {r["id"]: _article(r) for r in rows}
        return [by_id[i] for i in ids if i in by_id]

    # -- issues ---------------------------------------------------------------

    def last_issue(self) -> StoredIssue | None:
        """Return the most recent issue, if any."""
        with self.begin() as conn:
            row = (
                conn.execute(sa.select(issues).order_by(issues.c.created_at.desc()).limit(1))
                .mappings()
                .first()
            )
        return _issue(row) if row else None

    def issue_for_date(self, date: str) -> StoredIssue | None:
        """Return the issue of a given ISO date, if it was created."""
        with self.begin() as conn:
            row = conn.execute(sa.select(issues).where(issues.c.date == date)).mappings().first()
        return _issue(row) if row else None

    def list_issues(self, limit: int = 30) -> list[StoredIssue]:
        """Return the latest issues, newest first."""
        with self.begin() as conn:
            rows = (
                conn.execute(sa.select(issues).order_by(issues.c.date.desc()).limit(limit))
                .mappings()
                .all()
            )
        return [_issue(r) for r in rows]

    def create_issue(
        self,
        *,
        date: str,
        created_at: datetime,
        subject: str,
        html: str,
        text: str,
        preheader: str,
        article_ids: Sequence[int],
    ) -> StoredIssue:
        """Freeze an issue and claim its articles, or return the one already stored that day."""
        try:
            with self.begin() as conn:
                res = conn.execute(
                    issues.insert().values(
                        date=date,
                        created_at=created_at,
                        subject=subject,
                        html=html,
                        text=text,
                        preheader=preheader,
                        article_ids=json.dumps(list(article_ids)),
                    )
                )
                issue_id = int(res.inserted_primary_key[0])  # type: ignore[index]
                conn.execute(
                    articles.update()
                    .where(articles.c.id.in_(list(article_ids)))
                    .values(issue_id=issue_id)
                )
        except sa.exc.IntegrityError:
            pass  # another process created today's issue first: use theirs
        issue = self.issue_for_date(date)
        assert issue is not None
        return issue

    # -- subscribers ----------------------------------------------------------

    def add_subscriber(
        self, email: str, name: str = "", *, now: datetime
    ) -> tuple[Subscriber, bool]:
        """Add an active subscriber (or reactivate one); return it and whether it changed."""
        with self.begin() as conn:
            row = (
                conn.execute(sa.select(subscribers).where(subscribers.c.email == email))
                .mappings()
                .first()
            )
            if row is None:
                conn.execute(
                    subscribers.insert().values(
                        email=email,
                        name=name,
                        status="active",
                        token=new_token(),
                        created_at=now,
                        updated_at=now,
                    )
                )
                changed = True
            else:
                values: dict[str, Any] = {}
                if row["status"] != "active":
                    values["status"] = "active"
                if name and name != row["name"]:
                    values["name"] = name
                if values:
                    values["updated_at"] = now
                    conn.execute(
                        subscribers.update().where(subscribers.c.id == row["id"]).values(**values)
                    )
                changed = bool(values)
            out = (
                conn.execute(sa.select(subscribers).where(subscribers.c.email == email))
                .mappings()
                .one()
            )
        return _subscriber(out), changed

    def set_subscriber_status(
        self, *, status: str, now: datetime, email: str | None = None, token: str | None = None
    ) -> Subscriber | None:
        """Change a subscriber's status by address or token; None when unknown."""
        cond = subscribers.c.email == email if email is not None else subscribers.c.token == token
        with self.begin() as conn:
            row = conn.execute(sa.select(subscribers).where(cond)).mappings().first()
            if row is None:
                return None
            if row["status"] != status:
                conn.execute(
                    subscribers.update()
                    .where(subscribers.c.id == row["id"])
                    .values(status=status, updated_at=now)
                )
            row = conn.execute(sa.select(subscribers).where(cond)).mappings().one()
        return _subscriber(row)

    def get_subscriber(
        self, *, email: str | None = None, token: str | None = None
    ) -> Subscriber | None:
        """Return one subscriber by address or token."""
        cond = subscribers.c.email == email if email is not None else subscribers.c.token == token
        with self.begin() as conn:
            row = conn.execute(sa.select(subscribers).where(cond)).mappings().first()
        return _subscriber(row) if row else None

    def list_subscribers(self, status: str | None = None) -> list[Subscriber]:
        """Return subscribers (optionally of one status), oldest first."""
        q = sa.select(subscribers).order_by(subscribers.c.id)
        if status:
            q = q.where(subscribers.c.status == status)
        with self.begin() as conn:
            rows = conn.execute(q).mappings().all()
        return [_subscriber(r) for r in rows]

    # -- deliveries (the ledger; used by digest.deliver) -----------------------
    #
    # A row goes pending -> sending -> sent, or pending -> failed | skipped.
    # "sending" is committed just before the SMTP end-of-data and only from
    # "pending" (compare-and-set), so two senders can never both finish one row;
    # a row left in "sending" is the crash window and is never retried automatically.

    def import_subscribers(
        self, rows: Sequence[tuple[str, str, str]], *, now: datetime
    ) -> tuple[int, int]:
        """Insert new (email, name, status) rows in one transaction; return (added, existing)."""
        added = existing = 0
        with self.begin() as conn:
            known: set[str] = set()
            emails = [r[0] for r in rows]
            for i in range(0, len(emails), 500):
                chunk = emails[i : i + 500]
                known.update(
                    conn.execute(
                        sa.select(subscribers.c.email).where(subscribers.c.email.in_(chunk))
                    ).scalars()
                )
            new = []
            for email, name, status in rows:
                if email in known:
                    existing += 1
                    continue
                known.add(email)
                new.append(
                    {
                        "email": email,
                        "name": name,
                        "status": status,
                        "token": new_token(),
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            if new:
                conn.execute(subscribers.insert(), new)
            added = len(new)
        return added, existing

    def ensure_deliveries(self, issue_id: int, *, now: datetime) -> int:
        """Queue every active subscriber without a delivery of this issue; return how many.

        Subscribers who left since their row was queued are marked skipped; skipped rows
        of subscribers who are active again are reopened.
        """
        active = sa.select(subscribers.c.id).where(subscribers.c.status == "active")
        this = deliveries.c.issue_id == issue_id
        with self.begin() as conn:
            conn.execute(
                deliveries.update()
                .where(this, deliveries.c.status == "pending")
                .where(deliveries.c.subscriber_id.not_in(active))
                .values(status="skipped", last_error="not active at send time", updated_at=now)
            )
            reopened = conn.execute(
                deliveries.update()
                .where(this, deliveries.c.status == "skipped")
                .where(deliveries.c.subscriber_id.in_(active))
                .values(status="pending", last_error=None, updated_at=now)
            ).rowcount
            has_row = sa.exists().where(this, deliveries.c.subscriber_id == subscribers.c.id)
            query = sa.select(
                sa.literal(issue_id, sa.Integer),
                subscribers.c.id,
                subscribers.c.email,
                sa.literal("pending", sa.String),
                sa.literal(0, sa.Integer),
                sa.literal(now, UTCDateTime),
            ).where(subscribers.c.status == "active", ~has_row)
            inserted = conn.execute(
                deliveries.insert().from_select(
                    ["issue_id", "subscriber_id", "email", "status", "attempts", "updated_at"],
                    query,
                )
            ).rowcount
        return int(inserted or 0) + int(reopened or 0)

    def pending_deliveries(self, issue_id: int) -> list[tuple[Delivery, Subscriber]]:
        """Return an issue's pending deliveries to active subscribers, by subscriber id."""
        q = (
            sa.select(deliveries, subscribers)
            .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
            .where(deliveries.c.issue_id == issue_id, deliveries.c.status == "pending")
            .where(subscribers.c.status == "active")
            .order_by(deliveries.c.subscriber_id)
        )
        out = []
        with self.begin() as conn:
            for row in conn.execute(q):
                m = row._mapping
                out.append(
                    (
                        _delivery(m, deliveries.c),
                        _subscriber(
                            {
                                "id": m[subscribers.c.id],
                                "email": m[subscribers.c.email],
                                "name": m[subscribers.c.name],
                                "status": m[subscribers.c.status],
                                "token": m[subscribers.c.token],
                                "created_at": m[subscribers.c.created_at],
                            }
                        ),
                    )
                )
        return out

    def claim_delivery(
        self, issue_id: int, subscriber_id: int, *, message_id: str, now: datetime
    ) -> bool:
        """Mark a pending delivery to a still-active subscriber 'sending'; False if it is not."""
        params = {"b_issue": issue_id, "b_sub": subscriber_id, "b_mid": message_id, "b_now": now}
        with self.begin() as conn:
            return conn.execute(_CLAIM, params).rowcount == 1

    def finish_delivery(
        self,
        issue_id: int,
        subscriber_id: int,
        *,
        status: str,
        now: datetime,
        expect: str,
        error: str | None = None,
        count_attempt: bool = False,
        bounce: bool = False,
    ) -> bool:
        """Move a delivery from status `expect` to `status`; bounce the subscriber if asked."""
        params = {
            "b_issue": issue_id,
            "b_sub": subscriber_id,
            "b_expect": expect,
            "b_status": status,
            "b_error": error,
            "b_now": now,
        }
        with self.begin() as conn:
            done = conn.execute(_FINISH_COUNTED if count_attempt else _FINISH, params).rowcount
            if bounce and done == 1:
                conn.execute(_BOUNCE, {"b_sub": subscriber_id, "b_now": now})
            return done == 1

    def ledger_writer(self) -> LedgerWriter:
        """Return a connection-holding writer for one sending thread's per-message updates."""
        return LedgerWriter(self)

    def delivery_counts(self, issue_id: int) -> dict[str, int]:
        """Return how many deliveries of an issue are in each status."""
        with self.begin() as conn:
            rows = conn.execute(
                sa.select(deliveries.c.status, sa.func.count())
                .where(deliveries.c.issue_id == issue_id)
                .group_by(deliveries.c.status)
            ).all()
        return {str(status): int(n) for status, n in rows}

    def list_deliveries(self, issue_id: int, status: str | None = None) -> list[Delivery]:
        """Return the deliveries of an issue (optionally of one status) by subscriber id."""
        q = (
            sa.select(deliveries)
            .where(deliveries.c.issue_id == issue_id)
            .order_by(deliveries.c.subscriber_id)
        )
        if status:
            q = q.where(deliveries.c.status == status)
        with self.begin() as conn:
            rows = conn.execute(q).mappings().all()
        return [_delivery(r, None) for r in rows]

    def requeue_uncertain(self, issue_id: int, *, now: datetime) -> int:
        """Put deliveries left 'sending' by a crash back to pending (may duplicate them)."""
        with self.begin() as conn:
            res = conn.execute(
                deliveries.update()
                .where(deliveries.c.issue_id == issue_id, deliveries.c.status == "sending")
                .values(
                    status="pending", last_error="requeued after an uncertain send", updated_at=now
                )
            )
        return int(res.rowcount or 0)


# -- deliveries: the per-thread fast path used by digest.deliver -----------------


class _Prepared:
    """A statement compiled once for a dialect, run straight on the DBAPI cursor."""

    def __init__(self, stmt: sa.Update, dialect: sa.engine.Dialect) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.sql = compiled.string
        self.defaults = dict(compiled.params)
        self.order = compiled.positiontup if compiled.positional else None

    def args(self, params: dict[str, Any]) -> Any:
        full = {**self.defaults, **params}
        return tuple(full[name] for name in self.order) if self.order is not None else full


class LedgerWriter:
    """One sending thread's own connection for claim/finish, the two per-message writes.

    The statements are SQLAlchemy Core, compiled once for the engine's dialect and
    run on the DBAPI connection: SQLAlchemy's execution layer per message cost more
    CPU than everything else a send does per message.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        dialect = store.engine.dialect
        self._errors = dialect.loaded_dbapi.Error
        self._raw = store.engine.raw_connection()
        self._stamp = UTCDateTime()
        self._dialect = dialect
        self._claim = _Prepared(_CLAIM, dialect)
        self._finish = _Prepared(_FINISH, dialect)
        self._finish_counted = _Prepared(_FINISH_COUNTED, dialect)
        self._bounce = _Prepared(_BOUNCE, dialect)
        # SQLite: the claim must be on disk before the end-of-data goes out (else a
        # power cut could forget it and a re-run send again), so it syncs (FULL).
        # Losing the later "sent" mark only leaves the row "sending" (uncertain,
        # never resent), and the next claim's sync covers it too (the WAL is
        # append-only), so finishing skips the fsync (NORMAL).
        self._sqlite = dialect.name == "sqlite"

    def close(self) -> None:
        """Make the last unsynced marks durable and return the connection to the pool."""
        try:
            if self._sqlite:
                cur = self._raw.cursor()
                cur.execute("PRAGMA synchronous=FULL")
                cur.execute("PRAGMA wal_checkpoint(PASSIVE)")  # syncs the WAL first
                cur.close()
        except self._errors as exc:
            log.warning("store: final checkpoint failed: %s", exc)
        finally:
            self._raw.close()

    def _when(self, now: datetime) -> str | None:
        return self._stamp.process_bind_param(now, self._dialect)

    def _run(
        self,
        steps: Sequence[tuple[_Prepared, dict[str, Any]]],
        *,
        all_or_first: bool,
        sync: bool = True,
    ) -> int:
        """Run statements in one transaction; later ones only if the first changed a row."""
        cur = self._raw.cursor()
        try:
            if self._sqlite:
                cur.execute("PRAGMA synchronous=FULL" if sync else "PRAGMA synchronous=NORMAL")
            first = -1
            for prepared, params in steps:
                cur.execute(prepared.sql, prepared.args(params))
                if first < 0:
                    first = cur.rowcount
                    if all_or_first and first != 1:
                        break
            self._raw.commit()
            return first
        except self._errors as exc:
            self._raw.rollback()
            raise StoreError(f"database error on {self._store._where()}: {exc}") from None
        finally:
            cur.close()

    def claim(self, issue_id: int, subscriber_id: int, *, message_id: str, now: datetime) -> bool:
        """Mark a pending delivery to a still-active subscriber 'sending'; False if it is not."""
        params = {
            "b_issue": issue_id,
            "b_sub": subscriber_id,
            "b_mid": message_id,
            "b_now": self._when(now),
        }
        return self._run([(self._claim, params)], all_or_first=True) == 1

    def finish(
        self,
        issue_id: int,
        subscriber_id: int,
        *,
        status: str,
        now: datetime,
        expect: str,
        error: str | None = None,
        count_attempt: bool = False,
        bounce: bool = False,
    ) -> bool:
        """Move a delivery from status `expect` to `status`; bounce the subscriber if asked."""
        when = self._when(now)
        params = {
            "b_issue": issue_id,
            "b_sub": subscriber_id,
            "b_expect": expect,
            "b_status": status,
            "b_error": error,
            "b_now": when,
        }
        steps = [(self._finish_counted if count_attempt else self._finish, params)]
        if bounce:
            steps.append((self._bounce, {"b_sub": subscriber_id, "b_now": when}))
        return self._run(steps, all_or_first=True, sync=status != "sent") == 1


def new_token() -> str:
    """Return an unguessable unsubscribe token (random, not derived from the address)."""
    return secrets.token_urlsafe(24)


def _now() -> datetime:
    return datetime.now(tz=UTC)


def _replace_id(art: Article, pk: int | None) -> Article:
    from dataclasses import replace

    return replace(art, id=pk)


def _article(r: Any) -> Article:
    return Article(
        id=r["id"],
        source=r["source"],
        guid=r["guid"],
        url=r["url"],
        title=r["title"],
        text=r["text"],
        feed_summary=r["feed_summary"],
        published=r["published"],
        first_seen=r["first_seen"],
        author=r["author"],
        image=r["image"],
        language=r["language"],
    )


def _issue(r: Any) -> StoredIssue:
    return StoredIssue(
        id=r["id"],
        date=r["date"],
        created_at=r["created_at"],
        subject=r["subject"],
        html=r["html"],
        text=r["text"],
        preheader=r["preheader"],
        article_ids=tuple(json.loads(r["article_ids"])),
    )


def _subscriber(r: Any) -> Subscriber:
    return Subscriber(
        id=r["id"],
        email=r["email"],
        name=r["name"],
        status=r["status"],
        token=r["token"],
        created_at=r["created_at"],
    )


def _delivery(r: Any, cols: Any) -> Delivery:
    def get(name: str) -> Any:
        return r[getattr(cols, name)] if cols is not None else r[name]

    return Delivery(
        issue_id=get("issue_id"),
        subscriber_id=get("subscriber_id"),
        email=get("email"),
        status=get("status"),
        attempts=get("attempts") or 0,
        last_error=get("last_error"),
        message_id=get("message_id"),
        updated_at=get("updated_at"),
    )
