"""`Store`: one object over the schema, the ledger and the readers' queries.

Reached as `digest.store.Store`; see the package docstring.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from digest.errors import StoreError
from digest.mail.tokens import new_token
from digest.models import Article, RenderedIssue, Subscriber
from digest.store.bounces import Bounces, by_message_id
from digest.store.ledger import Ledger
from digest.store.readers import Readers
from digest.store.rows import address_key, from_row, subscriber_from_row
from digest.store.schema import (
    Database,
    UTCDateTime,
    articles,
    bounces,
    deliveries,
    issues,
    merged_tokens,
    schema_version,
    sources,
    subscribers,
)
from digest.text.language import to_code

log = logging.getLogger(__name__)


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
class SourceResult:
    """How one source fared in a run, for `Store.record_source_results`."""

    name: str
    url: str
    error: str | None = None
    etag: str | None = None
    last_modified: str | None = None


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
    doc: str = ""  # the composed issue as JSON ("" for issues stored before migration 5)

    def rendered(self) -> RenderedIssue:
        """Return the stored issue as the renderer gave it (for building messages)."""
        return RenderedIssue(
            date=self.date,
            subject=self.subject,
            html=self.html,
            text=self.text,
            preheader=self.preheader,
        )


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers (digest status, digest serve) work while a send writes;
    # busy_timeout makes concurrent writers wait instead of failing at once.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


class Store(Readers, Bounces):
    """All database access; hand it an engine (tests use a temp SQLite file).

    A façade over its parts: `db` (the engine, transactions and migrations) and
    `ledger` (the delivery ledger). Articles, issues, sources and subscribers are
    its own methods; the named locks in `digest.store.locks` take a `Store`.
    """

    def __init__(self, engine: Engine) -> None:
        self.db = Database(engine)
        self.ledger = Ledger(self.db)

    @property
    def shared(self) -> bool:
        """Return True on a server database (PostgreSQL) that many processes can share."""
        return self.db.shared

    def close(self) -> None:
        """Release the connection pool."""
        self.db.close()

    def version(self) -> int:
        """Return the schema version of the database (0 when empty)."""
        return self.db.version()

    def migrate(self) -> list[int]:
        """Apply pending numbered migrations; return the versions applied."""
        return self.db.migrate()

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Store:
        """Open the store at a SQLAlchemy URL, creating an empty database (unless told not to).

        Raises StoreError when the schema is older or newer than this code's
        (`digest db upgrade` brings an older one up to date).
        """
        try:
            engine = sa.create_engine(url)
        except Exception as exc:  # bad URL or missing driver
            raise StoreError(f"cannot open store {url!r}: {exc}") from None
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        store = cls(engine)
        if migrate:
            try:
                if store.version() == 0:
                    store.migrate()
                store.db.check_schema()
            except BaseException:
                store.close()
                raise
        return store

    def job_run_times(self, table_name: str) -> dict[str, datetime]:
        """Return each job's next run time from APScheduler's job table (UTC)."""
        with self.db.begin() as conn:
            if not sa.inspect(conn).has_table(table_name):
                return {}
            table = sa.table(table_name, sa.column("id"), sa.column("next_run_time"))
            rows = conn.execute(sa.select(table.c.id, table.c.next_run_time)).all()
        return {
            str(job_id): datetime.fromtimestamp(float(ts), tz=UTC)
            for job_id, ts in rows
            if ts is not None
        }

    def check_writable(self) -> None:
        """Fail with a clear StoreError unless the database accepts writes."""
        try:
            with self.db.engine.begin() as conn:
                conn.execute(
                    sa.update(schema_version)
                    .where(schema_version.c.version == -1)
                    .values(applied_at=_now())
                )
                if self.db.engine.dialect.name == "sqlite":
                    conn.exec_driver_sql("CREATE TEMP TABLE IF NOT EXISTS _w(x)")
                    conn.exec_driver_sql("DROP TABLE IF EXISTS main._digest_write_probe")
                    conn.exec_driver_sql("CREATE TABLE main._digest_write_probe(x)")
                    conn.exec_driver_sql("DROP TABLE main._digest_write_probe")
        except sa.exc.DBAPIError as exc:  # PostgreSQL says "read-only" as an InternalError
            raise StoreError(
                f"the store {self.db.where} is not writable ({exc.orig}); "
                "check the file and folder permissions and free disk space"
            ) from None

    # -- sources --------------------------------------------------------------

    def source_states(self) -> dict[str, SourceState]:
        """Return the remembered state of every source, by name."""
        with self.db.begin() as conn:
            rows = conn.execute(sa.select(sources)).mappings().all()
        return {
            r["name"]: from_row(SourceState, r, consecutive_failures=r["consecutive_failures"] or 0)
            for r in rows
        }

    def article_counts(self) -> dict[str, int]:
        """Return how many articles each source has had stored, by source name."""
        count = sa.func.count().label("n")
        with self.db.begin() as conn:
            rows = conn.execute(
                sa.select(articles.c.source, count).group_by(articles.c.source)
            ).all()
        return {str(source): int(n) for source, n in rows}

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
        result = SourceResult(name, url, error, etag, last_modified)
        return self.record_source_results([result], now=now)[name]

    def record_source_results(
        self, results: Sequence[SourceResult], *, now: datetime
    ) -> dict[str, SourceState]:
        """Record a whole run's sources in one transaction; return their new states by name.

        One commit for all sources rather than one per source: with 40 sources the
        per-source commits (each a disk sync) were a second of a preview's wall time.
        """
        with self.db.begin() as conn:
            known = {
                r["name"]: r
                for r in conn.execute(
                    sa.select(sources).where(sources.c.name.in_([r.name for r in results]))
                ).mappings()
            }
            for res in results:
                row = known.get(res.name)
                if row is None:
                    conn.execute(
                        sources.insert().values(name=res.name, url=res.url, consecutive_failures=0)
                    )
                values: dict[str, Any] = {"url": res.url, "last_run": now}
                if res.error is None:
                    values.update(
                        last_success=now,
                        last_error=None,
                        failing_since=None,
                        consecutive_failures=0,
                    )
                    if res.etag is not None or res.last_modified is not None:
                        values.update(etag=res.etag, last_modified=res.last_modified)
                else:
                    values.update(
                        last_error=res.error,
                        failing_since=(row["failing_since"] if row else None) or now,
                        consecutive_failures=((row["consecutive_failures"] if row else 0) or 0) + 1,
                    )
                conn.execute(sources.update().where(sources.c.name == res.name).values(**values))
        states = self.source_states()
        return {r.name: states[r.name] for r in results}

    # -- articles -------------------------------------------------------------

    def seen_keys(self) -> tuple[set[str], set[str], set[str]]:
        """Return the guids, canonical URLs and title keys already stored (for dedup)."""
        with self.db.begin() as conn:
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
        with self.db.begin() as conn:
            for art, key in items:
                # Items without a link share the URL "": only their guid identifies them.
                same: sa.ColumnElement[bool] = articles.c.guid == art.guid
                if art.url:
                    same = same | (articles.c.url == art.url)
                exists = conn.execute(sa.select(articles.c.id).where(same)).first()
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
                        image_width=art.image_width,
                        image_height=art.image_height,
                        language=art.language,
                    )
                )
                pk = res.inserted_primary_key
                added.append(_replace_id(art, int(pk[0]) if pk else None))
        return added

    def unissued_articles(self, since: datetime, *, redo: int | None = None) -> list[Article]:
        """Return articles in no issue yet, published (or first seen if undated) since `since`.

        `redo` names an issue being composed again: its articles count as unissued.
        """
        when = sa.func.coalesce(articles.c.published, articles.c.first_seen, type_=UTCDateTime)
        free: sa.ColumnElement[bool] = articles.c.issue_id.is_(None)
        if redo is not None:
            free = free | (articles.c.issue_id == redo)
        with self.db.begin() as conn:
            rows = (
                conn.execute(
                    sa.select(articles)
                    .where(free)
                    .where(when >= since)
                    .order_by(when.desc(), articles.c.id)
                )
                .mappings()
                .all()
            )
        return [_article(r) for r in rows]

    def articles_by_ids(self, ids: Sequence[int]) -> list[Article]:
        """Return the stored articles with these ids, in the given order."""
        with self.db.begin() as conn:
            rows = conn.execute(sa.select(articles).where(articles.c.id.in_(ids))).mappings().all()
        by_id = {r["id"]: _article(r) for r in rows}
        return [by_id[i] for i in ids if i in by_id]

    # -- issues ---------------------------------------------------------------

    def last_issue(self, *, before: str | None = None) -> StoredIssue | None:
        """Return the most recent issue, if any (only those dated before `before` if given)."""
        q = sa.select(issues).order_by(issues.c.created_at.desc()).limit(1)
        if before is not None:
            q = q.where(issues.c.date < before)
        with self.db.begin() as conn:
            row = conn.execute(q).mappings().first()
        return _issue(row) if row else None

    def discard_issue(self, date: str) -> StoredIssue | None:
        """Delete the issue of `date` and free its articles, unless it has deliveries.

        Returns the discarded issue, or None when there is none. Raises StoreError when
        deliveries exist: everyone must get the same issue once sending has started.
        """
        with self.db.begin() as conn:
            row = conn.execute(sa.select(issues).where(issues.c.date == date)).mappings().first()
            if row is None:
                return None
            sent = conn.execute(
                sa.select(sa.func.count()).where(deliveries.c.issue_id == row["id"])
            ).scalar()
            if sent:
                raise StoreError(
                    f"the issue of {date} has {sent} delivery(ies) and is frozen (everyone "
                    "must get the same issue); finish it with `digest send --date "
                    f"{date}` instead"
                )
            conn.execute(
                articles.update().where(articles.c.issue_id == row["id"]).values(issue_id=None)
            )
            conn.execute(issues.delete().where(issues.c.id == row["id"]))
        return _issue(row)

    def issue_for_date(self, date: str) -> StoredIssue | None:
        """Return the issue of a given ISO date, if it was created."""
        with self.db.begin() as conn:
            row = conn.execute(sa.select(issues).where(issues.c.date == date)).mappings().first()
        return _issue(row) if row else None

    def list_issues(self, limit: int = 30) -> list[StoredIssue]:
        """Return the latest issues, newest first."""
        with self.db.begin() as conn:
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
        doc: str = "",
    ) -> StoredIssue:
        """Freeze an issue and claim its articles, or return the one already stored that day."""
        try:
            with self.db.begin() as conn:
                res = conn.execute(
                    issues.insert().values(
                        date=date,
                        created_at=created_at,
                        subject=subject,
                        html=html,
                        text=text,
                        preheader=preheader,
                        article_ids=json.dumps(list(article_ids)),
                        doc=doc or None,
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
    # Every lookup by address goes through `address_key`, so any spelling of a mailbox
    # finds its one reader; every lookup by token also knows the tokens of readers
    # merged into another (mail sent before the merge carries them).

    @staticmethod
    def _find(
        conn: sa.Connection,
        *,
        email: str | None = None,
        token: str | None = None,
        fold_case: bool = False,
    ) -> Any:
        """Return the `subscribers` row of an address or token (None when unknown)."""
        if email is not None:
            cond = subscribers.c.email_key == address_key(email)
            return conn.execute(sa.select(subscribers).where(cond)).mappings().first()
        if not token:
            return None
        row = (
            conn.execute(sa.select(subscribers).where(subscribers.c.token == token))
            .mappings()
            .first()
        )
        if row is None:
            merged = sa.select(merged_tokens.c.subscriber_id).where(merged_tokens.c.token == token)
            row = (
                conn.execute(sa.select(subscribers).where(subscribers.c.id.in_(merged)))
                .mappings()
                .first()
            )
        if row is None and fold_case:
            # Some relays lower-case the local part of a VERP address on the way back.
            folded = token.lower()
            rows = (
                conn.execute(
                    sa.select(subscribers).where(sa.func.lower(subscribers.c.token) == folded)
                )
                .mappings()
                .all()
            )
            row = rows[0] if len(rows) == 1 else None
        return row

    @staticmethod
    def _one(conn: sa.Connection, subscriber_id: int) -> Subscriber:
        row = conn.execute(sa.select(subscribers).where(subscribers.c.id == subscriber_id))
        return subscriber_from_row(row.mappings().one())

    def add_subscriber(
        self, email: str, name: str = "", *, now: datetime
    ) -> tuple[Subscriber, bool]:
        """Add an active subscriber (or reactivate one); return it and whether it changed.

        Any spelling of an address already on the list finds that reader. A reader who
        complained (reported our mail as spam) is never reactivated: StoreError says so.
        """
        try:
            return self._add_subscriber(email, name, now=now)
        except sa.exc.IntegrityError:  # another process added this mailbox just now
            return self._add_subscriber(email, name, now=now)

    def _add_subscriber(self, email: str, name: str, *, now: datetime) -> tuple[Subscriber, bool]:
        with self.db.begin() as conn:
            row = self._find(conn, email=email)
            if row is None:
                res = conn.execute(
                    subscribers.insert().values(
                        email=email,
                        email_key=address_key(email),
                        name=name,
                        status="active",
                        token=new_token(),
                        created_at=now,
                        updated_at=now,
                    )
                )
                sub_id = int(res.inserted_primary_key[0])  # type: ignore[index]
                changed = True
            else:
                sub_id = row["id"]
                if row["status"] == "complained":
                    raise StoreError(
                        f"{row['email']} reported our mail as spam; it is never mailed again "
                        "(the reader can sign up anew through the web page if one is offered)"
                    )
                values: dict[str, Any] = {}
                if row["status"] != "active":
                    values["status"] = "active"
                    # A fresh start: earlier soft bounces no longer count towards the limit.
                    conn.execute(
                        bounces.delete().where(
                            bounces.c.subscriber_id == sub_id, bounces.c.kind == "soft"
                        )
                    )
                if name and name != row["name"]:
                    values["name"] = name
                if values:
                    values["updated_at"] = now
                    conn.execute(
                        subscribers.update().where(subscribers.c.id == sub_id).values(**values)
                    )
                changed = bool(values)
            out = self._one(conn, sub_id)
        return out, changed

    def set_subscriber_status(
        self, *, status: str, now: datetime, email: str | None = None, token: str | None = None
    ) -> Subscriber | None:
        """Change a subscriber's status by address (any spelling) or token; None when unknown."""
        with self.db.begin() as conn:
            row = self._find(conn, email=email, token=token)
            if row is None:
                return None
            if row["status"] != status:
                conn.execute(
                    subscribers.update()
                    .where(subscribers.c.id == row["id"])
                    .values(status=status, updated_at=now)
                )
            return self._one(conn, row["id"])

    def get_subscriber(
        self, *, email: str | None = None, token: str | None = None
    ) -> Subscriber | None:
        """Return one subscriber by address (any spelling) or token."""
        with self.db.begin() as conn:
            row = self._find(conn, email=email, token=token)
        return subscriber_from_row(row) if row else None

    def list_subscribers(self, status: str | None = None) -> list[Subscriber]:
        """Return subscribers (optionally of one status), oldest first."""
        q = sa.select(subscribers).order_by(subscribers.c.id)
        if status:
            q = q.where(subscribers.c.status == status)
        with self.db.begin() as conn:
            rows = conn.execute(q).mappings().all()
        return [subscriber_from_row(r) for r in rows]

    def subscriber_counts(self) -> dict[str, int]:
        """Return how many subscribers are in each status."""
        with self.db.begin() as conn:
            rows = conn.execute(
                sa.select(subscribers.c.status, sa.func.count()).group_by(subscribers.c.status)
            ).all()
        return {str(status): int(n) for status, n in rows}

    def import_subscribers(
        self,
        rows: Sequence[tuple[str, str, str] | tuple[str, str, str, datetime | None]],
        *,
        now: datetime,
    ) -> tuple[int, int]:
        """Insert new (email, name, status[, signed up]) rows at once; return (added, existing).

        Addresses already on the list in any spelling are left exactly as they are.
        """
        added = existing = 0
        with self.db.begin() as conn:
            known: set[str] = set()
            keys = [address_key(r[0]) for r in rows]
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                known.update(
                    conn.execute(
                        sa.select(subscribers.c.email_key).where(subscribers.c.email_key.in_(chunk))
                    ).scalars()
                )
            new = []
            for row, key in zip(rows, keys, strict=True):
                email, name, status = row[0], row[1], row[2]
                since = row[3] if len(row) > 3 else None
                if key in known:
                    existing += 1
                    continue
                known.add(key)
                new.append(
                    {
                        "email": email,
                        "email_key": key,
                        "name": name,
                        "status": status,
                        "token": new_token(),
                        "created_at": since or now,
                        "updated_at": now,
                    }
                )
            if new:
                try:
                    conn.execute(subscribers.insert(), new)
                except sa.exc.IntegrityError:
                    raise StoreError(
                        "another process added some of these addresses during the import; "
                        "nothing was imported: run the import again"
                    ) from None
            added = len(new)
        return added, existing

    # -- bounces and complaints -----------------------------------------------

    def find_subscriber(
        self, *, tokens: Sequence[str] = (), message_ids: Sequence[str] = ()
    ) -> Subscriber | None:
        """Return the reader a returned message names: by token first, else by Message-ID.

        Tokens are tried in order (case-insensitively as a last resort); a Message-ID
        is looked up in the ledger, which keeps the one of each delivery.
        """
        with self.db.begin() as conn:
            for fold in (False, True):
                for token in tokens:
                    row = self._find(conn, token=token, fold_case=fold)
                    if row is not None:
                        return subscriber_from_row(row)
            if message_ids:
                sub_id = conn.execute(
                    sa.select(deliveries.c.subscriber_id).where(by_message_id(message_ids)).limit(1)
                ).scalar()
                if sub_id is not None:
                    return self._one(conn, int(sub_id))
        return None


def _now() -> datetime:
    return datetime.now(tz=UTC)


def _replace_id(art: Article, pk: int | None) -> Article:
    from dataclasses import replace

    return replace(art, id=pk)


def _article(r: Any) -> Article:
    art = from_row(Article, r)
    language = _language(art.language)
    return art if language == art.language else replace(art, language=language)


def _language(value: str | None) -> str | None:
    """Return a stored language as ISO 639-1: rows from before codes hold "english"."""
    if not value:
        return None
    try:
        return to_code(value) or None
    except ValueError:
        return None


def _issue(r: Any) -> StoredIssue:
    return from_row(
        StoredIssue, r, article_ids=tuple(json.loads(r["article_ids"])), doc=r["doc"] or ""
    )
