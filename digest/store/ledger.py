"""The delivery ledger: one row per (issue, subscriber), and who may send it when.

A row goes pending -> sending -> sent, or pending -> failed | skipped (see
digest.mail.deliver for the full state machine). "sending" is committed just before the
SMTP end-of-data and only from "pending" (compare-and-set), so two senders can never
both finish one row; a row left in "sending" is the crash window and is never
retried automatically.

Several workers (`digest worker`, on any machines sharing one PostgreSQL database)
split the pending rows with leases: a worker claims a batch with
`SELECT … FOR UPDATE SKIP LOCKED`, stamping `claimed_by` and `claimed_until`, and
keeps renewing the lease while it lives. A killed worker's pending rows are
reclaimed once its lease expires. Only *pending* rows are ever claimed: a row the
dead worker had moved to "sending" (possibly accepted by the server) stays there,
uncertain, exactly as after a crash of `digest send`. The lease decides who works on
what; the compare-and-set alone is what guarantees that no one gets two copies, so a
worker that overran its lease cannot cause a duplicate either.

Leases compare the workers' own clocks: keep the machines on NTP (a lease lasts
minutes; a second of skew does not matter).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from digest.errors import StoreError
from digest.models import Delivery, Subscriber
from digest.store.rows import delivery_from_row, subscriber_from_row
from digest.store.schema import (
    Database,
    UTCDateTime,
    advisory_key,
    columns_of,
    deliveries,
    subscribers,
)

log = logging.getLogger(__name__)

# -- deliveries: ledger statements (used by Ledger and LedgerWriter below) -------
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
# A lease is free when it was never taken, was released, or has run out.
_LEASE_FREE = sa.or_(
    deliveries.c.claimed_until.is_(None),
    deliveries.c.claimed_until < sa.bindparam("b_now", type_=UTCDateTime),
)
_ACTIVE = sa.exists().where(
    subscribers.c.id == deliveries.c.subscriber_id, subscribers.c.status == "active"
)


class Ledger:
    """The delivery ledger's queries: one part of `Store` (as `store.ledger`)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def ensure_deliveries(
        self, issue_id: int, *, now: datetime, only: Sequence[int] | None = None
    ) -> int:
        """Queue active subscribers without a delivery of this issue; return how many.

        `only` limits the queueing to these subscriber ids (the readers whose local
        time has come); None queues every active subscriber. Subscribers who left
        since their row was queued are marked skipped; skipped rows of subscribers who
        are active again (among `only`) are reopened.
        """
        active = sa.select(subscribers.c.id).where(subscribers.c.status == "active")
        this = deliveries.c.issue_id == issue_id
        chunks: list[list[int] | None] = [None]
        if only is not None:
            ids = sorted(set(only))
            chunks = [ids[i : i + 500] for i in range(0, len(ids), 500)]
        inserted = reopened = 0
        with self.db.begin() as conn:
            if self.db.shared:  # workers starting together must not insert the same rows
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(advisory_key("queue"))))
            conn.execute(
                deliveries.update()
                .where(this, deliveries.c.status == "pending")
                .where(deliveries.c.subscriber_id.not_in(active))
                .values(status="skipped", last_error="not active at send time", updated_at=now)
            )
            for chunk in chunks:
                reopen = (
                    deliveries.update()
                    .where(this, deliveries.c.status == "skipped")
                    .where(deliveries.c.subscriber_id.in_(active))
                    .values(status="pending", last_error=None, updated_at=now)
                )
                if chunk is not None:
                    reopen = reopen.where(deliveries.c.subscriber_id.in_(chunk))
                reopened += int(conn.execute(reopen).rowcount or 0)
                has_row = sa.exists().where(this, deliveries.c.subscriber_id == subscribers.c.id)
                query = sa.select(
                    sa.literal(issue_id, sa.Integer),
                    subscribers.c.id,
                    subscribers.c.email,
                    sa.literal("pending", sa.String),
                    sa.literal(0, sa.Integer),
                    sa.literal(now, UTCDateTime),
                ).where(subscribers.c.status == "active", ~has_row)
                if chunk is not None:
                    query = query.where(subscribers.c.id.in_(chunk))
                inserted += int(
                    conn.execute(
                        deliveries.insert().from_select(
                            [
                                "issue_id",
                                "subscriber_id",
                                "email",
                                "status",
                                "attempts",
                                "updated_at",
                            ],
                            query,
                        )
                    ).rowcount
                    or 0
                )
        if self.db.shared and inserted:
            # Fresh statistics now, not when autovacuum gets round to it: without them
            # the planner's generic plan for the per-message updates scans every
            # pending row of the issue (milliseconds per message) instead of the key.
            with self.db.begin() as conn:
                conn.exec_driver_sql("ANALYZE deliveries, subscribers")
        return inserted + reopened

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
        with self.db.begin() as conn:
            for row in conn.execute(q):
                m = row._mapping
                out.append(
                    (
                        delivery_from_row(columns_of(m, deliveries)),
                        subscriber_from_row(columns_of(m, subscribers)),
                    )
                )
        return out

    def claim_delivery(
        self, issue_id: int, subscriber_id: int, *, message_id: str, now: datetime
    ) -> bool:
        """Mark a pending delivery to a still-active subscriber 'sending'; False if it is not."""
        writer = self.ledger_writer()
        try:
            return writer.claim(issue_id, subscriber_id, message_id=message_id, now=now)
        finally:
            writer.close()

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
        writer = self.ledger_writer()
        try:
            return writer.finish(
                issue_id,
                subscriber_id,
                status=status,
                now=now,
                expect=expect,
                error=error,
                count_attempt=count_attempt,
                bounce=bounce,
            )
        finally:
            writer.close()

    def ledger_writer(self) -> LedgerWriter:
        """Return a connection-holding writer for one sending thread's per-message updates."""
        return LedgerWriter(self)

    def delivery_counts(self, issue_id: int) -> dict[str, int]:
        """Return how many deliveries of an issue are in each status."""
        with self.db.begin() as conn:
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
        with self.db.begin() as conn:
            rows = conn.execute(q).mappings().all()
        return [delivery_from_row(r) for r in rows]

    def note_refusal(self, issue_id: int, subscriber_id: int, *, now: datetime) -> datetime:
        """Record that the server refused this delivery for now; return since when it has."""
        this = (deliveries.c.issue_id == issue_id, deliveries.c.subscriber_id == subscriber_id)
        with self.db.begin() as conn:
            conn.execute(
                deliveries.update()
                .where(*this, deliveries.c.retry_since.is_(None))
                .values(retry_since=now)
            )
            since = conn.execute(sa.select(deliveries.c.retry_since).where(*this)).scalar()
        return since if isinstance(since, datetime) else now

    def requeue_uncertain(self, issue_id: int, *, now: datetime) -> int:
        """Put deliveries left 'sending' by a crash back to pending (may duplicate them)."""
        with self.db.begin() as conn:
            res = conn.execute(
                deliveries.update()
                .where(deliveries.c.issue_id == issue_id, deliveries.c.status == "sending")
                .values(
                    status="pending",
                    last_error="requeued after an uncertain send",
                    updated_at=now,
                    claimed_by=None,
                    claimed_until=None,
                )
            )
        return int(res.rowcount or 0)

    # -- leases (digest worker) --------------------------------------------------

    def claim_batch(
        self, issue_id: int, *, worker: str, size: int, lease: float, now: datetime
    ) -> list[Subscriber]:
        """Lease up to `size` pending deliveries no live worker holds; return their subscribers.

        `FOR UPDATE SKIP LOCKED` lets concurrent workers pass each other's claims
        instead of queueing behind them (SQLite, with one writer, ignores it).
        """
        # A materialized CTE: as a plain `IN (subquery)` PostgreSQL may run the locking
        # subquery more than once and claim far more than `size` rows.
        d = deliveries.alias("d")
        free = (
            sa.select(d.c.subscriber_id)
            # A literal, so the planner can use the partial index of pending rows.
            .where(d.c.issue_id == issue_id, d.c.status == sa.literal_column("'pending'"))
            # No check that the subscriber is still active: the per-message claim
            # checks that, and marks the row skipped if not.
            .where(sa.or_(d.c.claimed_until.is_(None), d.c.claimed_until < now))
            .order_by(d.c.subscriber_id)
            .limit(size)
            .with_for_update(skip_locked=True)
            .cte("free")
            .prefix_with("MATERIALIZED", dialect="postgresql")
        )
        claim = (
            deliveries.update()
            .where(deliveries.c.issue_id == issue_id)
            .where(deliveries.c.subscriber_id.in_(sa.select(free.c.subscriber_id)))
            .values(claimed_by=worker, claimed_until=now + timedelta(seconds=lease))
            .returning(deliveries.c.subscriber_id)
        )
        with self.db.begin() as conn:
            ids = list(conn.execute(claim).scalars())
            if not ids:
                return []
            rows = conn.execute(
                sa.select(subscribers).where(subscribers.c.id.in_(ids)).order_by(subscribers.c.id)
            ).mappings()
            return [subscriber_from_row(r) for r in rows]

    def renew_claims(self, issue_id: int, *, worker: str, lease: float, now: datetime) -> int:
        """Extend the lease of every pending delivery `worker` holds; return how many."""
        with self.db.begin() as conn:
            res = conn.execute(
                deliveries.update()
                .where(deliveries.c.issue_id == issue_id, deliveries.c.claimed_by == worker)
                .where(deliveries.c.status == "pending")
                .values(claimed_until=now + timedelta(seconds=lease))
            )
        return int(res.rowcount or 0)

    def release_claims(self, issue_id: int, *, worker: str) -> int:
        """Hand `worker`'s unsent deliveries back to the others at once; return how many."""
        with self.db.begin() as conn:
            res = conn.execute(
                deliveries.update()
                .where(deliveries.c.issue_id == issue_id, deliveries.c.claimed_by == worker)
                .where(deliveries.c.status == "pending")
                .values(claimed_by=None, claimed_until=None)
            )
        return int(res.rowcount or 0)

    def next_lease_expiry(self, issue_id: int, *, worker: str, now: datetime) -> datetime | None:
        """Return when the first pending delivery leased by another worker frees up, if any."""
        with self.db.begin() as conn:
            until = conn.execute(
                sa.select(sa.func.min(deliveries.c.claimed_until))
                .where(deliveries.c.issue_id == issue_id, deliveries.c.status == "pending")
                .where(deliveries.c.claimed_by != worker, ~_LEASE_FREE, _ACTIVE),
                {"b_now": now},
            ).scalar()
        return until if isinstance(until, datetime) else None

    def live_leases(self, issue_id: int, *, now: datetime) -> dict[str, tuple[int, datetime]]:
        """Return each worker holding unexpired claims: (deliveries held, lease end)."""
        with self.db.begin() as conn:
            rows = conn.execute(
                sa.select(
                    deliveries.c.claimed_by,
                    sa.func.count(),
                    sa.func.max(deliveries.c.claimed_until),
                )
                .where(deliveries.c.issue_id == issue_id, deliveries.c.claimed_by.is_not(None))
                .where(deliveries.c.status.in_(("pending", "sending")))
                .where(deliveries.c.claimed_until >= now)
                .group_by(deliveries.c.claimed_by)
                .order_by(deliveries.c.claimed_by)
            ).all()
        return {str(w): (int(n), until) for w, n, until in rows}

    def claims(self, issue_id: int) -> dict[str, int]:
        """Return how many deliveries each worker claimed (sent, in flight or held)."""
        with self.db.begin() as conn:
            rows = conn.execute(
                sa.select(deliveries.c.claimed_by, sa.func.count())
                .where(deliveries.c.issue_id == issue_id, deliveries.c.claimed_by.is_not(None))
                .group_by(deliveries.c.claimed_by)
            ).all()
        return {str(worker): int(n) for worker, n in rows}


# -- deliveries: the per-thread fast path used by digest.mail.deliver -----------------


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

    def __init__(self, store: Ledger) -> None:
        self._store = store
        dialect = store.db.engine.dialect
        self._errors = dialect.loaded_dbapi.Error
        self._raw = store.db.engine.raw_connection()
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
            raise StoreError(f"database error on {self._store.db.where}: {exc}") from None
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
