"""Bounces (RFC 3464 DSNs) and complaints (RFC 5965 ARF reports) coming back by mail.

Each message goes out with a VERP envelope sender, `[smtp].bounce_address` with the
reader's token in it (`bounces+TOKEN@example.org`), so the notification a relay sends
hours later names its reader without trusting what it says about addresses: the
token is a secret only that reader's mail carried. A report is matched to its reader
by the first of: the VERP address it was delivered to (the MTA's `RECIPIENT`
environment, `Delivered-To`, `X-Original-To`, `To`), the envelope sender quoted in
it (ARF `Original-Mail-From`, the original's `Return-Path`), the token in the quoted
original's `List-Unsubscribe`, and the original's Message-ID in the ledger. An
address a report names (`Final-Recipient`, `Original-Rcpt-To`) is never used: anyone
can write one.

`parse_report` is pure; `process_report` applies one report to the store.
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from email.parser import HeaderParser

from digest.config import SmtpConfig
from digest.errors import ReportError
from digest.models import Subscriber
from digest.store import BounceOutcome, Store

MAX_REPORT = 20_000_000  # bytes read from stdin: a DSN quoting a large issue stays below
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SMTP_CODE = re.compile(r"\b([245])\d\d\b")
_TOKEN = r"([A-Za-z0-9_-]{16,64})"
_URL_TOKEN = re.compile(r"[?&]token=" + _TOKEN + r"(?![A-Za-z0-9_-])")
_MAILTO_TOKEN = re.compile(r"subject=unsubscribe(?:%20|\+|\s)" + _TOKEN + r"(?![A-Za-z0-9_-])")
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,250}>")
_ANY_VERP = re.compile(r"\+" + _TOKEN + r"@[A-Za-z0-9.-]+")
_DELIVERED = ("delivered", "relayed", "expanded")
_RECIPIENT_HEADERS = (
    "Delivered-To",
    "X-Original-To",
    "Envelope-To",
    "X-Envelope-To",
    "X-Delivered-To",
    "To",
    "Cc",
)
_ORIGINAL_PARTS = ("message/rfc822", "message/global")
_HEADER_PARTS = (
    "text/rfc822-headers",
    "message/rfc822-headers",
    "message/global-headers",
    "text/rfc822",
)


@dataclass(frozen=True)
class Report:
    """What a returned message says, before it is matched to a reader."""

    kind: str  # "dsn" or "arf"
    severity: str  # dsn: "hard" | "soft" | "none" (delivered/relayed); arf: "complaint" | "none"
    status: str  # dsn: the worst status code ("5.1.1"); arf: the feedback type ("abuse")
    detail: str  # the diagnostic or the report's own words, one line
    tokens: tuple[str, ...]  # candidate reader tokens, most trustworthy first
    message_ids: tuple[str, ...]  # Message-IDs of the original message


@dataclass(frozen=True)
class Processed:
    """What processing one report did."""

    report: Report
    subscriber: Subscriber
    outcome: BounceOutcome | None  # None: the report says nothing went wrong


def verp_address(bounce_address: str, token: str) -> str:
    """Return the envelope sender carrying `token`: `bounces+TOKEN@example.org`."""
    local, _, domain = bounce_address.rpartition("@")
    return f"{local}+{token}@{domain}"


def _verp_pattern(bounce_address: str) -> re.Pattern[str] | None:
    local, _, domain = bounce_address.strip().rpartition("@")
    if not local or not domain:
        return None
    return re.compile(
        r"(?<![A-Za-z0-9.!#$%&'*+/=?^_`{|}~-])"
        + re.escape(local)
        + r"\+"
        + _TOKEN
        + "@"
        + re.escape(domain)
        + r"(?![A-Za-z0-9.-])",
        re.IGNORECASE,
    )


def _one_line(text: str, limit: int = 500) -> str:
    return " ".join(text.split())[:limit]


def _headers_text(msg: Message, names: Iterable[str]) -> list[str]:
    out = []
    for name in names:
        for value in msg.get_all(name, []):
            out.append(str(value))
    return out


def _field_blocks(part: Message) -> list[Message]:
    """Return the header blocks of a delivery-status or feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        blocks = [p for p in payload if isinstance(p, Message)]
        if any(len(b.keys()) for b in blocks):
            return blocks
    raw = part.get_payload(decode=True)
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(payload or "")
    text = text.replace("\r\n", "\n")
    return [HeaderParser().parsestr(chunk) for chunk in re.split(r"\n\s*\n", text) if chunk]


def _original(part: Message) -> Message | None:
    """Return the quoted original message (or just its headers) of a report part."""
    kind = part.get_content_type()
    if kind in _ORIGINAL_PARTS:
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            return payload[0]
    if kind in _HEADER_PARTS:
        raw = part.get_payload(decode=True)
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""
        return HeaderParser().parsestr(text.lstrip("\r\n"))
    return None


def _dsn_severity(blocks: Sequence[Message]) -> tuple[str, str, str]:
    """Return (severity, status, detail) of the per-recipient blocks of a DSN."""
    worst = ("none", "2.0.0", "")
    rank = {"none": 0, "soft": 1, "hard": 2}
    for block in blocks:
        action = str(block.get("Action", "")).strip().lower()
        status_field = str(block.get("Status", ""))
        diagnostic = str(block.get("Diagnostic-Code", ""))
        if not (action or status_field or block.get("Final-Recipient")):
            continue  # the per-message block (Reporting-MTA, Arrival-Date, ...)
        match = _STATUS.search(status_field) or _STATUS.search(diagnostic)
        if match:
            status = ".".join(match.groups())
        elif action == "failed":
            code = _SMTP_CODE.search(diagnostic)
            status = f"{code.group(1)}.0.0" if code else "5.0.0"
        elif action == "delayed":
            status = "4.0.0"
        else:
            status = "2.0.0"
        if action in _DELIVERED or status.startswith("2"):
            severity = "none"
        elif status.startswith("5"):
            severity = "hard"
        else:
            severity = "soft"
        detail = _one_line(diagnostic.split(";", 1)[-1] if diagnostic else action)
        if rank[severity] > rank[worst[0]]:
            worst = (severity, status, detail)
    return worst


def parse_report(
    raw: bytes, *, bounce_address: str = "", envelope_recipients: Sequence[str] = ()
) -> Report:
    """Read a DSN or an ARF report; raise ReportError for any other message."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    report_type = str(msg.get_param("report-type", "", header="content-type") or "").lower()
    status_part = feedback_part = None
    originals: list[Message] = []
    for part in msg.walk():
        kind = part.get_content_type()
        if kind == "message/delivery-status" and status_part is None:
            status_part = part
        elif kind == "message/feedback-report" and feedback_part is None:
            feedback_part = part
        elif kind in _ORIGINAL_PARTS or kind in _HEADER_PARTS:
            found = _original(part)
            if found is not None:
                originals.append(found)
    # Both report types are multipart/report with their machine-readable part.
    if feedback_part is not None and report_type in ("feedback-report", ""):
        kind = "arf"
    elif status_part is not None and report_type in ("delivery-status", ""):
        kind = "dsn"
    else:
        raise ReportError(
            "not a delivery status notification (RFC 3464) or a complaint report "
            "(RFC 5965); nothing changed"
        )
    fields: list[Message] = []
    if kind == "arf":
        assert feedback_part is not None
        fields = _field_blocks(feedback_part)
        feedback = str(fields[0].get("Feedback-Type", "abuse")).strip().lower() if fields else ""
        severity = "none" if feedback == "not-spam" else "complaint"
        status, detail = feedback or "abuse", _one_line(str(msg.get("Subject", "")))
    else:
        assert status_part is not None
        fields = _field_blocks(status_part)
        severity, status, detail = _dsn_severity(fields)
    original = originals[0] if originals else None

    # Where a token can be found, most trustworthy first (see the module docstring).
    places: list[str] = list(envelope_recipients)
    places += _headers_text(msg, _RECIPIENT_HEADERS)
    for block in fields:
        places += _headers_text(block, ("Original-Mail-From",))
    if original is not None:
        places += _headers_text(original, ("Return-Path", "X-Envelope-From"))
    tokens: list[str] = []
    pattern = _verp_pattern(bounce_address) if bounce_address else None
    for text in places:
        if pattern is not None:
            tokens += [m.group(1) for m in pattern.finditer(text)]
        # Any `+TOKEN@` too (a bounce address changed since the send): only a token
        # of ours can match a reader, so this cannot name a stranger.
        tokens += [m.group(1) for m in _ANY_VERP.finditer(text)]
    message_ids: list[str] = []
    for block in fields:
        for value in _headers_text(block, ("X-Original-Message-ID", "Original-Message-ID")):
            message_ids += _MESSAGE_ID.findall(value)
    if original is not None:
        for value in _headers_text(original, ("List-Unsubscribe",)):
            value = "".join(value.split())
            tokens += [m.group(1) for m in _URL_TOKEN.finditer(value)]
            tokens += [m.group(1) for m in _MAILTO_TOKEN.finditer(value)]
        for value in _headers_text(original, ("Message-ID",)):
            message_ids += _MESSAGE_ID.findall(value)
    # Gmail and Exchange also answer "in reply to" the bounced message.
    for value in _headers_text(msg, ("In-Reply-To", "References")):
        message_ids += _MESSAGE_ID.findall(value)
    return Report(
        kind=kind,
        severity=severity,
        status=status,
        detail=detail,
        tokens=tuple(dict.fromkeys(tokens)),
        message_ids=tuple(dict.fromkeys(message_ids)),
    )


def process_report(
    store: Store,
    raw: bytes,
    *,
    smtp: SmtpConfig,
    now: datetime,
    envelope_recipients: Sequence[str] = (),
    only: str | None = None,
) -> Processed:
    """Apply one DSN or ARF report to its reader; raise ReportError (nothing changed) if unusable.

    `only="arf"` refuses anything but a complaint report (`digest subscribers complaint`).
    """
    report = parse_report(
        raw, bounce_address=smtp.bounce_address, envelope_recipients=envelope_recipients
    )
    if only is not None and report.kind != only:
        raise ReportError("not a complaint report (RFC 5965 ARF); nothing changed")
    sub = store.find_subscriber(tokens=report.tokens, message_ids=report.message_ids)
    if sub is None or sub.id is None:
        what = "complaint report" if report.kind == "arf" else "delivery status notification"
        raise ReportError(
            f"the {what} names no reader of ours (no known token in its VERP address or "
            "quoted headers, no known Message-ID); nothing changed"
        )
    if report.severity == "none":
        return Processed(report=report, subscriber=sub, outcome=None)
    outcome = store.record_bounce(
        sub.id,
        kind=report.severity,
        status=report.status,
        detail=report.detail,
        now=now,
        message_ids=report.message_ids,
        soft_limit=smtp.soft_bounce_limit,
    )
    return Processed(report=report, subscriber=outcome.subscriber, outcome=outcome)
