"""Readers' own doings: double opt-in sign-up, preferences, and issue variants per section choice.

A reader who signs up on the web is stored "pending" with a confirmation token that
expires; only the POST of the confirmation link makes them "active". How often a
confirmation mail may go out is decided here, by one compare-and-set on
`confirm_sent_at`, so however many requests race for one address, at most one mail
per `resend` period leaves.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from digest.mail.tokens import new_token
from digest.models import Subscriber
from digest.store.rows import address_key, subscriber_from_row
from digest.store.schema import (
    Database,
    issue_variants,
    settings,
    subscribers,
)

# Statuses a web sign-up may (re)start the opt-in from; active, bounced and complained
# addresses are left alone (the answer to the form is the same anyway).
_REOPTABLE = ("pending", "unsubscribed")


def new_confirm_token() -> str:
    """Return an unguessable confirmation token (a different one from the unsubscribe token)."""
    return secrets.token_urlsafe(24)


def sections_key(sections: Sequence[str]) -> str:
    """Return the stored form of a choice of sections: a sorted JSON list ("[]" = all)."""
    return json.dumps(sorted(set(sections)), ensure_ascii=False)


@dataclass(frozen=True)
class Confirmation:
    """What a confirmation token refers to."""

    subscriber: Subscriber
    expires: datetime | None


@dataclass(frozen=True)
class StoredVariant:
    """An issue rendered for one choice of sections."""

    issue_id: int
    sections: tuple[str, ...]
    subject: str
    html: str
    text: str
    preheader: str
    article_ids: tuple[int, ...]


class Readers:
    """Sign-up, confirmation, preferences and variant queries; `Store` inherits them."""

    db: Database

    def start_opt_in(
        self,
        email: str,
        name: str,
        *,
        now: datetime,
        resend: timedelta,
        valid: timedelta,
    ) -> tuple[Subscriber | None, str | None]:
        """Record a sign-up; return (subscriber, token to mail) or (…, None) when no mail goes.

        New addresses become "pending". Pending or unsubscribed ones get a fresh token
        unless a confirmation mail went out less than `resend` ago. Active, bounced or
        complained addresses are not touched and get no mail.
        """
        token = new_confirm_token()
        key = address_key(email)
        opt_in = {
            "confirm_token": token,
            "confirm_sent_at": now,
            "confirm_expires": now + valid,
            "updated_at": now,
        }
        try:
            with self.db.begin() as conn:
                row = (
                    conn.execute(sa.select(subscribers).where(subscribers.c.email_key == key))
                    .mappings()
                    .first()
                )
                if row is None:
                    conn.execute(
                        subscribers.insert().values(
                            email=email,
                            email_key=key,
                            name=name,
                            status="pending",
                            token=new_token(),
                            created_at=now,
                            **opt_in,
                        )
                    )
                    sent = 1
                elif row["status"] in _REOPTABLE:
                    values: dict[str, Any] = {**opt_in, "status": "pending"}
                    if name and row["status"] == "pending":
                        values["name"] = name
                    sent = conn.execute(
                        subscribers.update()
                        .where(subscribers.c.id == row["id"])
                        .where(subscribers.c.status.in_(_REOPTABLE))
                        .where(
                            sa.or_(
                                subscribers.c.confirm_sent_at.is_(None),
                                subscribers.c.confirm_sent_at <= now - resend,
                            )
                        )
                        .values(**values)
                    ).rowcount
                else:
                    sent = 0
                out = (
                    conn.execute(sa.select(subscribers).where(subscribers.c.email_key == key))
                    .mappings()
                    .one()
                )
        except sa.exc.IntegrityError:  # a concurrent sign-up inserted it first: theirs mails
            return self._by(subscribers.c.email_key == key), None
        return subscriber_from_row(out), token if sent == 1 else None

    def renew_opt_in(
        self, confirm_token: str, *, now: datetime, resend: timedelta, valid: timedelta
    ) -> tuple[Subscriber | None, str | None]:
        """Give the pending owner of an (expired) confirmation token a new one to mail."""
        with self.db.begin() as conn:
            row = conn.execute(
                sa.select(subscribers.c.email, subscribers.c.name).where(
                    subscribers.c.confirm_token == confirm_token,
                    subscribers.c.status == "pending",
                )
            ).first()
        if row is None:
            return None, None
        return self.start_opt_in(row[0], row[1], now=now, resend=resend, valid=valid)

    def confirmation(self, confirm_token: str) -> Confirmation | None:
        """Return the subscriber a confirmation token belongs to, and when it expires."""
        with self.db.begin() as conn:
            row = (
                conn.execute(
                    sa.select(subscribers).where(subscribers.c.confirm_token == confirm_token)
                )
                .mappings()
                .first()
            )
        if row is None:
            return None
        return Confirmation(subscriber_from_row(row), row["confirm_expires"])

    def confirm(self, confirm_token: str, *, now: datetime) -> Subscriber | None:
        """Make the pending owner of an unexpired token active; None when nothing changed."""
        cond = (
            subscribers.c.confirm_token == confirm_token,
            subscribers.c.status == "pending",
            subscribers.c.confirm_expires > now,
        )
        with self.db.begin() as conn:
            n = conn.execute(
                subscribers.update().where(*cond).values(status="active", updated_at=now)
            ).rowcount
        return self._by(subscribers.c.confirm_token == confirm_token) if n == 1 else None

    def opt_in_mail_failed(self, confirm_token: str) -> None:
        """Forget that a confirmation mail went out (it did not), so the next post may retry."""
        with self.db.begin() as conn:
            conn.execute(
                subscribers.update()
                .where(subscribers.c.confirm_token == confirm_token)
                .values(confirm_sent_at=None)
            )

    def _by(self, cond: Any) -> Subscriber | None:
        with self.db.begin() as conn:
            row = conn.execute(sa.select(subscribers).where(cond)).mappings().first()
        return subscriber_from_row(row) if row else None

    def set_preferences(
        self,
        subscriber_id: int,
        *,
        now: datetime,
        timezone: str | None = None,
        send_at: str | None = None,
        sections: Sequence[str] | None = None,
    ) -> Subscriber | None:
        """Change a reader's preferences (None = leave as is, "" or () = back to the default)."""
        values: dict[str, Any] = {"updated_at": now}
        if timezone is not None:
            values["timezone"] = timezone or None
        if send_at is not None:
            values["send_at"] = send_at or None
        if sections is not None:
            values["sections"] = sections_key(sections) if sections else None
        with self.db.begin() as conn:
            conn.execute(
                subscribers.update().where(subscribers.c.id == subscriber_id).values(**values)
            )
        return self._by(subscribers.c.id == subscriber_id)

    def import_preferences(
        self, rows: Sequence[tuple[str, str, str, Sequence[str]]], *, now: datetime
    ) -> None:
        """Set (email, timezone, send_at, sections) of addresses just imported, in one go."""
        with self.db.begin() as conn:
            for email, tz, send_at, sections in rows:
                conn.execute(
                    subscribers.update()
                    .where(subscribers.c.email_key == address_key(email))
                    .values(
                        timezone=tz or None,
                        send_at=send_at or None,
                        sections=sections_key(sections) if sections else None,
                        updated_at=now,
                    )
                )

    def preference_groups(self) -> list[tuple[str, str, int]]:
        """Return (timezone, send_at, active readers) per preference group ("" = default)."""
        with self.db.begin() as conn:
            rows = conn.execute(
                sa.select(subscribers.c.timezone, subscribers.c.send_at, sa.func.count())
                .where(subscribers.c.status == "active")
                .group_by(subscribers.c.timezone, subscribers.c.send_at)
            ).all()
        return [(tz or "", at or "", int(n)) for tz, at, n in rows]

    # -- settings -------------------------------------------------------------

    def setting(self, name: str, make: Any) -> str:
        """Return a stored named value, storing `make()` first if there is none yet."""
        with self.db.begin() as conn:
            value = conn.execute(
                sa.select(settings.c.value).where(settings.c.name == name)
            ).scalar()
        if value is not None:
            return str(value)
        try:
            with self.db.begin() as conn:
                conn.execute(settings.insert().values(name=name, value=str(make())))
        except sa.exc.IntegrityError:
            pass  # another process stored one first: use theirs
        with self.db.begin() as conn:
            return str(
                conn.execute(sa.select(settings.c.value).where(settings.c.name == name)).scalar()
            )

    # -- issue variants ---------------------------------------------------------

    def variant(self, issue_id: int, sections: Sequence[str]) -> StoredVariant | None:
        """Return the issue rendered for this choice of sections, if it was made."""
        with self.db.begin() as conn:
            row = (
                conn.execute(
                    sa.select(issue_variants).where(
                        issue_variants.c.issue_id == issue_id,
                        issue_variants.c.sections == sections_key(sections),
                    )
                )
                .mappings()
                .first()
            )
        return _variant(row) if row else None

    def save_variant(
        self,
        issue_id: int,
        sections: Sequence[str],
        *,
        now: datetime,
        subject: str,
        html: str,
        text: str,
        preheader: str,
        article_ids: Sequence[int],
    ) -> StoredVariant:
        """Store a variant (or return the one another process stored first)."""
        try:
            with self.db.begin() as conn:
                conn.execute(
                    issue_variants.insert().values(
                        issue_id=issue_id,
                        sections=sections_key(sections),
                        created_at=now,
                        subject=subject,
                        html=html,
                        text=text,
                        preheader=preheader,
                        article_ids=json.dumps(list(article_ids)),
                    )
                )
        except sa.exc.IntegrityError:
            pass
        out = self.variant(issue_id, sections)
        assert out is not None
        return out


def _variant(r: Any) -> StoredVariant:
    return StoredVariant(
        issue_id=r["issue_id"],
        sections=tuple(json.loads(r["sections"])),
        subject=r["subject"],
        html=r["html"],
        text=r["text"],
        preheader=r["preheader"],
        article_ids=tuple(json.loads(r["article_ids"])),
    )
