"""Reading and writing the subscriber list as CSV: the exports people actually have.

Delimiters are sniffed, columns found by header name (any case; `--map` for others), and
every bad row reported by line number while the rest is imported.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from digest.config import Config
from digest.errors import AddressError, DigestError, PreferenceError
from digest.mail.subscribers import (
    STATUSES,
    Preferences,
    check_preferences,
    clean_name,
    normalize_address,
)
from digest.store import Store, address_key

log = logging.getLogger(__name__)


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


# What an import column can hold. `unsubscribed_at` / `cleaned_at` / `disabled` are
# columns whose mere value says the status (Mailchimp's UNSUB_TIME and CLEAN_TIME,
# Substack's email_disabled).
FIELDS = (
    "email",
    "name",
    "first_name",
    "last_name",
    "status",
    "subscribed_at",
    "unsubscribed_at",
    "cleaned_at",
    "disabled",
    "timezone",
    "send_at",
    "sections",
    "ignore",
)
# Header names per field, best first (compared lower-case without spaces or punctuation):
# when two columns name one field, the better name wins (Mailchimp has both
# "Email Address" and a postal "Address").
_HEADERS: dict[str, tuple[str, ...]] = {
    "email": ("email", "emailaddress", "mail", "mailaddress", "subscriberemail", "address"),
    "name": ("name", "fullname", "displayname", "subscribername"),
    "first_name": ("firstname", "fname", "givenname", "first"),
    "last_name": ("lastname", "lname", "surname", "familyname", "last"),
    "status": ("status", "subscriptionstatus", "subscribertype", "memberstatus", "state", "type"),
    "subscribed_at": (
        "subscribedat",
        "createdat",
        "creationdate",
        "subscriptiondate",
        "signupdate",
        "optintime",
        "confirmtime",
        "dateadded",
        "created",
    ),
    "unsubscribed_at": ("unsubtime", "unsubscribedat", "unsubscribedate", "unsubscribetime"),
    "cleaned_at": ("cleantime", "cleanedat", "bouncedat"),
    "disabled": ("emaildisabled",),
    # A reader's own preferences (digest's export writes these columns).
    "timezone": ("timezone", "tz", "timezonename"),
    "send_at": ("sendat", "deliverytime", "sendtime"),
    "sections": ("sections",),
}
# Status words of other tools (lower-case, "_"/"-" as spaces) and what they are here.
_STATUS_WORDS = {
    **dict.fromkeys(
        (
            "",
            "active",
            "subscribed",
            "subscriber",
            "confirmed",
            "regular",
            "free",
            "paid",
            "premium",
            "gifted",
            "comp",
            "trialed",
            "trial",
            "churning",
            "churned",
            "past due",
        ),
        "active",
    ),
    **dict.fromkeys(
        ("unsubscribed", "unsubscribe", "opted out", "opt out", "removed", "inactive"),
        "unsubscribed",
    ),
    **dict.fromkeys(
        ("bounced", "bounce", "cleaned", "undeliverable", "hard bounce", "invalid"), "bounced"
    ),
    **dict.fromkeys(("complained", "complaint", "spam", "spammy", "abuse"), "complained"),
    **dict.fromkeys(("pending", "unconfirmed", "unactivated", "not confirmed"), "pending"),
}
_TRUE = ("1", "true", "yes", "y", "t")


def _squash(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lstrip("\ufeff").lower())


def parse_mapping(items: Iterable[str]) -> dict[str, str]:
    """Parse `--map column=field` options into {squashed column: field}; AddressError if bad."""
    out: dict[str, str] = {}
    for item in items:
        column, sep, target = item.partition("=")
        target = target.strip().lower().replace("-", "_").replace(" ", "_")
        if not sep or not column.strip() or target not in FIELDS:
            raise DigestError(
                f"--map {item!r}: write COLUMN=FIELD with FIELD one of {', '.join(FIELDS)}"
            )
        out[_squash(column)] = target
    return out


Columns = dict[str, list[int]]  # field -> column indexes, best header name first


def _columns(header: list[str], mapping: Mapping[str, str]) -> Columns:
    """Return the columns of each field in a header row (empty when none holds e-mail)."""
    ranked: dict[str, list[tuple[int, int]]] = {}  # field -> [(rank, index)]
    for index, cell in enumerate(header):
        name = _squash(cell)
        if name in mapping:
            target, rank = mapping[name], -1  # the operator's word beats any guess
        else:
            found = [(f, names.index(name)) for f, names in _HEADERS.items() if name in names]
            if not found:
                continue
            target, rank = found[0]
        if target != "ignore":
            ranked.setdefault(target, []).append((rank, index))
    if "email" not in ranked:
        return {}
    return {f: [index for _rank, index in sorted(pairs)] for f, pairs in ranked.items()}


def _cell(cells: list[str], columns: Columns, name: str) -> str:
    """Return a row's value of a field: its first non-empty column, best name first."""
    for i in columns.get(name, ()):
        if i < len(cells) and cells[i].strip():
            return cells[i].strip()
    return ""


def _parse_date(text: str) -> datetime | None:
    """Return a sign-up date from an export (ISO 8601 or Mailchimp's), UTC if no zone."""
    text = text.strip()
    if not text:
        return None
    when: datetime | None = None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        for fmt in ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y", "%d.%m.%Y"):
            try:
                when = datetime.strptime(text, fmt)  # noqa: DTZ007 - zone added below
                break
            except ValueError:
                continue
    if when is None:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _status(cells: list[str], columns: Columns) -> tuple[str | None, str]:
    """Return (status, raw word) of a row; status None when the word is unknown."""

    def cell(name: str) -> str:
        return _cell(cells, columns, name)

    if cell("cleaned_at"):
        return "bounced", cell("cleaned_at")
    if cell("unsubscribed_at"):
        return "unsubscribed", cell("unsubscribed_at")
    if cell("disabled").lower() in _TRUE:
        return "unsubscribed", cell("disabled")
    word = cell("status")
    return _STATUS_WORDS.get(
        " ".join(word.lower().replace("_", " ").replace("-", " ").split())
    ), word


@dataclass(frozen=True)
class Row:
    """One usable import row."""

    line: int
    email: str
    name: str
    status: str
    subscribed_at: datetime | None = None
    preferences: Preferences = Preferences()


def _sniff(text: str) -> str:
    try:
        return csv.Sniffer().sniff(text[:65536], delimiters=",;\t|").delimiter
    except csv.Error:
        return ","  # one column, or nothing to tell by


def parse_csv(
    lines: Iterable[str] | str,
    mapping: Mapping[str, str] | None = None,
    config: Config | None = None,
) -> tuple[list[Row], list[tuple[int, str]]]:
    """Parse an export into rows and (line, reason) errors.

    With a header row naming an email column, columns are found by name (`mapping`,
    from `parse_mapping`, adds or overrides names); without one, rows are
    `email[,name[,status]]`. The delimiter is detected.
    """
    text = lines if isinstance(lines, str) else "".join(lines)
    mapping = mapping or {}
    rows: list[Row] = []
    errors: list[tuple[int, str]] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_sniff(text))
    seen: set[str] = set()
    columns: Columns | None = None  # None until the first row decides
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
        if not any(cells) or cells[0].startswith("#"):
            continue
        if columns is None:
            columns = _columns(cells, mapping)
            if columns:
                if len(cells) < 3 and columns["email"] == [0] and "status" not in columns:
                    columns["status"] = [2]  # "email,name" heading email,name,status rows
                continue  # the header row
            if mapping:
                errors.append((start, "--map needs a header row naming the columns"))
                return [], errors
        if not columns and len(cells) > 3:
            errors.append(
                (
                    start,
                    f"expected email[,name[,status]], got {len(cells)} columns; add a header "
                    "row naming the columns (e.g. email,name), or use --map COLUMN=FIELD",
                )
            )
            continue
        use = columns or {"email": [0], "name": [1], "status": [2]}
        raw = _cell(cells, use, "email").lstrip("\ufeff")
        try:
            email = normalize_address(raw)
        except AddressError as exc:
            errors.append((start, str(exc)))
            continue
        status, word = _status(cells, use)
        if status is None or status == "pending" or status not in STATUSES:
            known = ", ".join(STATUSES)
            why = "never confirmed their subscription" if status == "pending" else "unknown"
            errors.append((start, f"{why} status {word!r}; not imported (statuses: {known})"))
            continue
        key = address_key(email)
        if key in seen:
            errors.append((start, f"{email} appears twice in the file; kept the first"))
            continue
        seen.add(key)
        name = _cell(cells, use, "name") or " ".join(
            p for p in (_cell(cells, use, "first_name"), _cell(cells, use, "last_name")) if p
        )
        since = _parse_date(_cell(cells, use, "subscribed_at"))
        try:
            prefs = _row_preferences(
                config,
                _cell(cells, use, "timezone"),
                _cell(cells, use, "send_at"),
                _cell(cells, use, "sections"),
            )
        except PreferenceError as exc:
            errors.append((start, str(exc)))
            continue
        rows.append(Row(start, email, clean_name(name), status, since, prefs))
    return rows, errors


def _row_preferences(config: Config | None, tz: str, send_at: str, sections: str) -> Preferences:
    """Return a row's checked preferences (sections against the config's when given)."""
    names = [x for x in (p.strip() for p in sections.split(",")) if x]
    if config is not None:
        return check_preferences(config, timezone=tz, send_at=send_at, sections=names)
    from dataclasses import replace

    from digest.config import SiteConfig

    bare = Config(path=Path("."), site=SiteConfig(name="", url=""), sources=())
    checked = check_preferences(bare, timezone=tz, send_at=send_at)
    return replace(checked, sections=tuple(dict.fromkeys(names)))


def import_csv(
    store: Store,
    source: TextIO | str,
    *,
    now: datetime,
    mapping: Mapping[str, str] | None = None,
    config: Config | None = None,
) -> ImportReport:
    """Import subscribers from a CSV export; bad rows are reported by line, the rest imported.

    Addresses already on the list (in any spelling) are left as they are: an import
    never re-subscribes someone who unsubscribed, bounced or complained (use `add`
    for that, deliberately).
    """
    text = source if isinstance(source, str) else source.read()
    rows, errors = parse_csv(text, mapping, config)
    with_prefs = [r for r in rows if r.preferences != Preferences()]
    before = {s.email for s in store.list_subscribers()} if with_prefs else set()
    added, existing = store.import_subscribers(
        [(r.email, r.name, r.status, r.subscribed_at) for r in rows], now=now
    )
    # Preferences come with new rows; addresses already on the list keep their own.
    if added and with_prefs:
        store.import_preferences(
            [
                (r.email, r.preferences.timezone, r.preferences.send_at, r.preferences.sections)
                for r in with_prefs
                if r.email not in before
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
