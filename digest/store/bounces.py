"""Bounces and complaints: what a returned message does to its reader's status.

A hard bounce marks the reader bounced, a complaint complained; soft bounces count
per issue, and `soft_limit` issues in a row that each drew one mark the reader bounced.
`Store` inherits these methods.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from digest.models import Subscriber
from digest.store.schema import Database, bounces, deliveries, issues, status_rank, subscribers


class Bounces:
    """Recording bounces and complaints, and reading them back; `Store` inherits them."""

    db: Database
    _one: Callable[[sa.Connection, int], Subscriber]  # `Store`'s: a reader by id

    def record_bounce(
        self,
        subscriber_id: int,
        *,
        kind: str,
        status: str,
        detail: str,
        now: datetime,
        message_ids: Sequence[str] = (),
        soft_limit: int = 3,
    ) -> BounceOutcome:
        """Record a bounce ("hard" or "soft") or a "complaint"; change the reader's status.

        A hard bounce marks the reader bounced, a complaint complained (more restrictive
        statuses are kept). Soft bounces mark the reader bounced once `soft_limit` of the
        issues sent to them in a row each drew one; the issue is the one whose Message-ID
        the report quotes, else the latest sent to the reader.
        """
        with self.db.begin() as conn:
            issue_id = self._bounced_issue(conn, subscriber_id, message_ids, soft=kind == "soft")
            conn.execute(
                bounces.insert().values(
                    subscriber_id=subscriber_id,
                    issue_id=issue_id,
                    kind=kind,
                    status=status[:40],
                    detail=detail[:1000],
                    received_at=now,
                )
            )
            streak = 0
            target = {"hard": "bounced", "complaint": "complained"}.get(kind)
            if kind == "soft":
                streak = self._soft_streak(conn, subscriber_id, issue_id)
                if streak >= soft_limit:
                    target = "bounced"
            before = self._one(conn, subscriber_id)
            changed = target is not None and status_rank(target) > status_rank(before.status)
            if changed:
                conn.execute(
                    subscribers.update()
                    .where(subscribers.c.id == subscriber_id)
                    .values(status=target, updated_at=now)
                )
            after = self._one(conn, subscriber_id)
        return BounceOutcome(
            subscriber=after, issue_id=issue_id, kind=kind, streak=streak, changed=changed
        )

    @staticmethod
    def _bounced_issue(
        conn: sa.Connection, subscriber_id: int, message_ids: Sequence[str], *, soft: bool
    ) -> int | None:
        """Return the issue a report is about: by the quoted Message-ID, else a guess.

        Without a known Message-ID (a report that quotes no headers) a hard bounce is
        put on the latest issue sent to the reader, a soft one on the latest that has
        no soft bounce yet, so that separate reports count as separate issues.
        """
        mine = deliveries.c.subscriber_id == subscriber_id
        if message_ids:
            found = conn.execute(
                sa.select(deliveries.c.issue_id).where(mine, by_message_id(message_ids)).limit(1)
            ).scalar()
            if found is not None:
                return int(found)
        sent = [
            int(i)
            for i in conn.execute(
                sa.select(deliveries.c.issue_id)
                .where(mine, deliveries.c.status.in_(("sent", "sending")))
                .order_by(deliveries.c.issue_id.desc())
            ).scalars()
        ]
        if not sent:
            return None
        if soft:
            counted = set(
                conn.execute(
                    sa.select(bounces.c.issue_id).where(
                        bounces.c.subscriber_id == subscriber_id,
                        bounces.c.kind == "soft",
                        bounces.c.issue_id.is_not(None),
                    )
                ).scalars()
            )
            return next((i for i in sent if i not in counted), sent[0])
        return sent[0]

    @staticmethod
    def _soft_streak(conn: sa.Connection, subscriber_id: int, issue_id: int | None) -> int:
        """Return how many issues in a row, `issue_id` among them, drew a soft bounce.

        The row is the issues sent to the reader, in order; one that went through
        without a soft bounce ends a run.
        """
        soft = conn.execute(
            sa.select(bounces.c.issue_id).where(
                bounces.c.subscriber_id == subscriber_id, bounces.c.kind == "soft"
            )
        ).scalars()
        known: set[int] = set()
        unknown = 0
        for i in soft:
            if i is None:
                unknown += 1
            else:
                known.add(int(i))
        if issue_id is None:  # nothing was ever sent to them: count the reports
            return len(known) + unknown
        sent = conn.execute(
            sa.select(deliveries.c.issue_id).where(
                deliveries.c.subscriber_id == subscriber_id,
                deliveries.c.status.in_(("sent", "sending")),
            )
        ).scalars()
        row = sorted({int(x) for x in sent} | {issue_id})
        at = row.index(issue_id)
        start = end = at
        while start > 0 and row[start - 1] in known:
            start -= 1
        while end + 1 < len(row) and row[end + 1] in known:
            end += 1
        return end - start + 1 if issue_id in known else 0

    def bounce_history(self, subscriber_id: int) -> list[BounceRecord]:
        """Return a reader's recorded bounces and complaints, oldest first."""
        with self.db.begin() as conn:
            rows = conn.execute(
                sa.select(bounces)
                .where(bounces.c.subscriber_id == subscriber_id)
                .order_by(bounces.c.id)
            ).mappings()
            return [
                BounceRecord(
                    issue_id=r["issue_id"],
                    kind=r["kind"],
                    status=r["status"],
                    detail=r["detail"],
                    received_at=r["received_at"],
                )
                for r in rows
            ]


@dataclass(frozen=True)
class BounceRecord:
    """One processed bounce or complaint."""

    issue_id: int | None
    kind: str  # hard | soft | complaint
    status: str  # the DSN status ("5.1.1") or the feedback type ("abuse")
    detail: str
    received_at: datetime


@dataclass(frozen=True)
class BounceOutcome:
    """What recording a bounce or complaint did."""

    subscriber: Subscriber
    issue_id: int | None  # the issue it was about, when known
    kind: str
    streak: int  # soft bounces in a row so far (0 for other kinds)
    changed: bool  # the reader's status changed


# Our Message-IDs start with the issue date (`MessageTemplate.new_message_id`).
_ISSUE_DATE = re.compile(r"<(\d{4}-\d{2}-\d{2})\.")


def by_message_id(message_ids: Sequence[str]) -> sa.ColumnElement[bool]:
    """Return the ledger condition for these Message-IDs, narrowed to their issues' dates.

    The ledger has no index on Message-IDs (it would cost every send a write); the
    date in ours lets the lookup use the (issue, subscriber) key instead of a scan.
    """
    cond: sa.ColumnElement[bool] = deliveries.c.message_id.in_(list(message_ids))
    dates = {m.group(1) for m in map(_ISSUE_DATE.match, message_ids) if m}
    if dates and all(_ISSUE_DATE.match(i) for i in message_ids):
        dated = sa.select(issues.c.id).where(issues.c.date.in_(sorted(dates)))
        cond = sa.and_(deliveries.c.issue_id.in_(dated), cond)
    return cond
