"""The subscriber list: validated addresses, CSV import with per-line errors, CSV export.

Addresses are checked for syntax only (no DNS lookups). The address is kept as the
reader wrote it (domain lower-cased and IDNA-encoded) for display and sending, and
the store compares addresses by `address_key` (the whole address case-insensitive),
so one mailbox is one subscriber however it is spelled. Only ASCII local parts are
accepted, so every address can be sent to without SMTPUTF8.

Imports read what people have: any delimiter (`csv.Sniffer`), columns found by their
header names (`Email Address`, `E-mail`, `First Name` + `Last Name`, `Status`, …, as
Mailchimp, Substack and Buttondown export them), `--map column=field` for the rest.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.config import Config
from digest.errors import AddressError, DigestError, PreferenceError
from digest.mail.tokens import token_in_subject
from digest.models import SUBSCRIBER_STATUSES, Subscriber
from digest.store.rows import address_key

if TYPE_CHECKING:
    from digest.store import Store

STATUSES = SUBSCRIBER_STATUSES
_HHMM = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


@dataclass(frozen=True)
class Preferences:
    """A reader's validated choices; "" and () mean the site's default."""

    timezone: str = ""
    send_at: str = ""
    sections: tuple[str, ...] = ()


def check_preferences(
    config: Config,
    *,
    timezone: str = "",
    send_at: str = "",
    sections: Iterable[str] = (),
) -> Preferences:
    """Validate a reader's choices against the config; raise PreferenceError saying why."""
    tz = timezone.strip()
    if tz:
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise PreferenceError(
                "unknown time zone %(zone)s; write an IANA name such as Europe/Berlin",
                zone=repr(tz),
            ) from None
    at = send_at.strip()
    if at:
        m = _HHMM.fullmatch(at[:5] if len(at) == 8 and at.endswith(":00") else at)
        if m is None:
            raise PreferenceError(
                '%(time)s is not a time of day; write 24-hour "HH:MM" like 07:30', time=repr(at)
            )
        at = f"{int(m[1]):02d}:{m[2]}"
    chosen = tuple(dict.fromkeys(s.strip() for s in sections if s.strip()))
    known = config.sections
    unknown = [s for s in chosen if s not in known]
    if unknown:
        if not known:
            raise PreferenceError(
                "unknown section %(section)s; this newsletter has no sections",
                section=repr(unknown[0]),
            )
        raise PreferenceError(
            "unknown section %(section)s; the sections are: %(sections)s",
            section=repr(unknown[0]),
            sections=", ".join(known),
        )
    if set(chosen) == set(known):
        chosen = ()  # every section is the default
    return Preferences(timezone=tz, send_at=at, sections=chosen)


__all__ = ["STATUSES", "AddressError", "address_key", "normalize_address"]


def normalize_address(raw: str) -> str:
    """Return the canonical form of an address, or raise AddressError saying why."""
    from email_validator import EmailNotValidError, validate_email  # ~100 ms: not for `list`

    text = raw.strip()
    try:
        info = validate_email(
            text,
            check_deliverability=False,
            allow_smtputf8=False,
            allow_quoted_local=False,
            allow_domain_literal=False,
        )
    except EmailNotValidError as exc:
        raise AddressError(f"{text!r} is not a valid address: {exc}") from None
    address = info.ascii_email or info.normalized
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.lower()}"


def clean_name(name: str) -> str:
    """Return a display name on one line, without control characters."""
    return " ".join("".join(c for c in name if c.isprintable() or c.isspace()).split())[:200]


def add(store: Store, email: str, name: str = "", *, now: datetime) -> tuple[Subscriber, bool]:
    """Validate and add (or reactivate) a subscriber; return it and whether anything changed."""
    return store.add_subscriber(normalize_address(email), clean_name(name), now=now)


def invite(
    config: Config, store: Store, email: str, name: str = "", *, now: datetime
) -> tuple[Subscriber, bool]:
    """Store an address as pending and mail its opt-in link; return it and whether mail went.

    The same rules as the web form: at most one mail per [subscribe].resend_minutes, and
    active or bounced addresses are left alone.
    """
    from datetime import timedelta

    from digest.mail.optin import send_opt_in

    cfg = config.subscribe
    sub, token = store.start_opt_in(
        normalize_address(email),
        clean_name(name),
        now=now,
        resend=timedelta(minutes=cfg.resend_minutes),
        valid=timedelta(hours=cfg.confirm_hours),
    )
    assert sub is not None
    if token is None:
        return sub, False
    try:
        send_opt_in(config, sub, token, now=now)
    except DigestError:
        store.opt_in_mail_failed(token)
        raise
    return sub, True


def set_preferences(
    config: Config,
    store: Store,
    email: str,
    *,
    timezone: str | None = None,
    send_at: str | None = None,
    sections: Iterable[str] | None = None,
    now: datetime,
) -> Subscriber:
    """Validate and set a reader's preferences (None leaves one as it is)."""
    address = normalize_address(email)
    sub = store.get_subscriber(email=address)
    if sub is None or sub.id is None:
        raise DigestError(f"{address} is not on the list; see `digest subscribers list`")
    prefs = check_preferences(
        config,
        timezone=timezone if timezone is not None else sub.timezone,
        send_at=send_at if send_at is not None else sub.send_at,
        sections=sections if sections is not None else sub.sections,
    )
    out = store.set_preferences(
        sub.id,
        now=now,
        timezone=prefs.timezone,
        send_at=prefs.send_at,
        sections=prefs.sections,
    )
    assert out is not None
    return out


def describe(sub: Subscriber, config: Config | None = None) -> str:
    """Return a subscriber as one tab-separated line ("-" = the site's default)."""
    return "\t".join(
        [
            sub.email,
            sub.name,
            sub.status,
            sub.timezone or "-",
            sub.send_at or "-",
            ",".join(sub.sections) or "-",
        ]
    )


def remove(store: Store, email: str, *, now: datetime) -> Subscriber | None:
    """Mark a subscriber unsubscribed (kept, so a re-import cannot re-add them); None if unknown."""
    return store.set_subscriber_status(
        status="unsubscribed", now=now, email=normalize_address(email)
    )


def remove_by_mail(store: Store, raw: bytes, *, now: datetime) -> Subscriber:
    """Unsubscribe the reader who sent `raw`, an e-mail to the List-Unsubscribe mailto.

    The subject carries the reader's token ("unsubscribe <token>", as the mailto link
    fills it in); the From: header is never trusted, since anyone can forge it.
    """
    import email.policy
    from email.parser import BytesParser

    msg = BytesParser(policy=email.policy.default).parsebytes(raw, headersonly=True)
    try:
        subject = str(msg.get("Subject", ""))
    except (ValueError, TypeError, IndexError):  # a malformed encoded word
        subject = ""
    token = token_in_subject(subject)
    if token is None:
        raise DigestError(
            "no unsubscribe token in the subject (expected 'unsubscribe <token>', "
            "as the List-Unsubscribe link writes it); nothing changed"
        )
    sub = store.set_subscriber_status(status="unsubscribed", now=now, token=token)
    if sub is None:
        raise DigestError("unknown unsubscribe token in the subject; nothing changed")
    return sub
