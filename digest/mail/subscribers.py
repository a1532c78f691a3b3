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
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from email.parser import BytesParser
from typing import TextIO

from email_validator import EmailNotValidError, validate_email

from digest.errors import AddressError, DigestError
from digest.models import SUBSCRIBER_STATUSES, Subscriber
from digest.store import Store
from digest.tokens import token_in_subject

log = logging.getLogger(__name__)

STATUSES = SUBSCRIBER_STATUSES


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


def parse_csv(
    lines: Iterable[str],
) -> tuple[list[tuple[int, str, str, str]], list[tuple[int, str]]]:
    """Parse `email[,name[,status]]` rows; return (line, email, name, status) rows and errors."""
    rows: list[tuple[int, str, str, str]] = []
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
        if len(cells) > 3:
            errors.append((start, f"expected email[,name[,status]], got {len(cells)} columns"))
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
        seen.add(email)
        rows.append((start, email, clean_name(cells[1] if len(cells) > 1 else ""), status))
    return rows, errors


def import_csv(store: Store, source: TextIO, *, now: datetime) -> ImportReport:
    """Import subscribers from CSV; bad rows are reported by line and the rest imported.

    Addresses already on the list are left as they are: an import never re-subscribes
    someone who unsubscribed or bounced (use `add` for that, deliberately).
    """
    rows, errors = parse_csv(source)
    added, existing = store.import_subscribers(
        [(email, name, status) for _line, email, name, status in rows], now=now
    )
    for line, message in errors:
        log.info("import line %d: %s", line, message)
    return ImportReport(added=added, existing=existing, errors=errors)


def export_csv(store: Store, out: TextIO, *, status: str | None = None) -> int:
    """Write subscribers as `email,name,status` CSV (importable again); return how many."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["email", "name", "status"])
    count = 0
    for sub in store.list_subscribers(status):
        writer.writerow([sub.email, sub.name, sub.status])
        count += 1
    return count


def export_text(store: Store, *, status: str | None = None) -> str:
    """Return the CSV export as a string."""
    buf = io.StringIO()
    export_csv(store, buf, status=status)
    return buf.getvalue()
