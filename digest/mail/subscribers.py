"""The subscriber list: validated addresses, CSV import with per-line errors, CSV export.

Addresses are checked for syntax only (no DNS lookups) and normalized so that one
mailbox is one subscriber: the domain is lower-cased (and IDNA-encoded), the local
part kept as written. Only ASCII local parts are accepted, so every address can be
sent to without SMTPUTF8.
"""

from __future__ import annotations

import csv
import email.policy
import io
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from email.parser import BytesParser
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email

from digest.config import Config
from digest.errors import AddressError, DigestError
from digest.models import SUBSCRIBER_STATUSES, Subscriber
from digest.store import Store
from digest.tokens import token_in_subject

log = logging.getLogger(__name__)

STATUSES = SUBSCRIBER_STATUSES
_HHMM = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


class PreferenceError(DigestError):
    """A reader's preference (time zone, delivery time, sections) is not valid."""


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
                f"unknown time zone {tz!r}; write an IANA name such as Europe/Berlin"
            ) from None
    at = send_at.strip()
    if at:
        m = _HHMM.fullmatch(at[:5] if len(at) == 8 and at.endswith(":00") else at)
        if m is None:
            raise PreferenceError(f'{at!r} is not a time of day; write 24-hour "HH:MM" like 07:30')
        at = f"{int(m[1]):02d}:{m[2]}"
    chosen = tuple(dict.fromkeys(s.strip() for s in sections if s.strip()))
    known = config.sections
    unknown = [s for s in chosen if s not in known]
    if unknown:
        listed = ", ".join(known) if known else "none (the config names no sections)"
        raise PreferenceError(f"unknown section {unknown[0]!r}; the sections are: {listed}")
    if set(chosen) == set(known):
        chosen = ()  # every section is the default
    return Preferences(timezone=tz, send_at=at, sections=chosen)


def normalize_address(raw: str) -> str:
    """Return the canonical form of an address, or raise AddressError saying why."""
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


@dataclass
class ImportReport:
    """What an import did: counts and the rejected rows with their line numbers."""

    added: int = 0
    existing: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Return True when every row was usable."""
        return not self.errors


Row = tuple[int, str, str, str, Preferences]


def parse_csv(
    lines: Iterable[str], config: Config | None = None
) -> tuple[list[Row], list[tuple[int, str]]]:
    """Parse `email[,name[,status[,timezone,send_at,sections]]]` rows; return rows and errors.

    Each row is (line, email, name, status, preferences); sections are checked against
    the config's when one is given.
    """
    rows: list[Row] = []
    errors: list[tuple[int, str]] = []
    reader = csv.reader(lines)
    seen: set[str] = set()
    first = True
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append((start, f"unreadable CSV: {exc}"))
            continue
        cells = [c.strip() for c in row]
        if first:
            first = False
            if cells and cells[0].lstrip("\ufeff").lower() in ("email", "e-mail", "address"):
                continue  # a header row
        if not any(cells):
            continue
        if cells and cells[0].startswith("#"):
            continue
        if len(cells) > 6:
            errors.append(
                (
                    start,
                    "expected email[,name[,status[,timezone,send_at,sections]]], "
                    f"got {len(cells)} columns",
                )
            )
            continue
        raw = cells[0].lstrip("\ufeff")
        try:
            email = normalize_address(raw)
        except AddressError as exc:
            errors.append((start, str(exc)))
            continue
        status = (cells[2] if len(cells) > 2 else "").lower() or "active"
        if status not in STATUSES:
            errors.append((start, f"unknown status {status!r}; write one of {', '.join(STATUSES)}"))
            continue
        if email in seen:
            errors.append((start, f"{email} appears twice in the file; kept the first"))
            continue
        cells += [""] * (6 - len(cells))
        try:
            prefs = _row_preferences(config, cells[3], cells[4], cells[5])
        except PreferenceError as exc:
            errors.append((start, str(exc)))
            continue
        seen.add(email)
        rows.append((start, email, clean_name(cells[1]), status, prefs))
    return rows, errors


def _row_preferences(config: Config | None, tz: str, send_at: str, sections: str) -> Preferences:
    names = [x for x in (p.strip() for p in sections.split(",")) if x]
    if config is not None:
        return check_preferences(config, timezone=tz, send_at=send_at, sections=names)
    # Without a config only the shapes can be checked.
    from dataclasses import replace

    from digest.config import SiteConfig

    bare = Config(path=Path("."), site=SiteConfig(name="", url=""), sources=())
    checked = check_preferences(bare, timezone=tz, send_at=send_at)
    return replace(checked, sections=tuple(dict.fromkeys(names)))


def import_csv(
    store: Store, source: TextIO, *, now: datetime, config: Config | None = None
) -> ImportReport:
    """Import subscribers from CSV; bad rows are reported by line and the rest imported.

    Addresses already on the list are left as they are: an import never re-subscribes
    someone who unsubscribed or bounced (use `add` for that, deliberately).
    """
    rows, errors = parse_csv(source, config)
    added, existing = store.import_subscribers(
        [(email, name, status) for _line, email, name, status, _prefs in rows], now=now
    )
    # Preferences come with the rows; addresses already on the list keep their own.
    if added:
        new = {s.email for s in store.list_subscribers() if s.created_at == now}
        store.import_preferences(
            [
                (email, p.timezone, p.send_at, p.sections)
                for _line, email, _name, _status, p in rows
                if email in new and p != Preferences()
            ],
            now=now,
        )
    for line, message in errors:
        log.info("import line %d: %s", line, message)
    return ImportReport(added=added, existing=existing, errors=errors)


def export_csv(store: Store, out: TextIO, *, status: str | None = None) -> int:
    """Write subscribers as CSV with their preferences (importable again); return how many."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["email", "name", "status", "timezone", "send_at", "sections"])
    count = 0
    for sub in store.list_subscribers(status):
        writer.writerow(
            [sub.email, sub.name, sub.status, sub.timezone, sub.send_at, ",".join(sub.sections)]
        )
        count += 1
    return count


def export_text(store: Store, *, status: str | None = None) -> str:
    """Return the CSV export as a string."""
    buf = io.StringIO()
    export_csv(store, buf, status=status)
    return buf.getvalue()
