"""Build an issue's MIME message once, then personalize it per subscriber by substitution.

The stored issue carries `TOKEN_PLACEHOLDER` wherever a subscriber's unsubscribe token
goes, and a time placeholder (digest.text.storytime) wherever a story's time is shown.
`build_template` encodes headers and both bodies once (quoted-printable, CRLF,
no line over 76 octets, a placeholder never split by a soft line break) and keeps
the result as literal byte segments with slots between them for To, Date,
Message-ID, the token and the story times. `MessageTemplate.render` joins segments
and per-subscriber values: no MIME is rebuilt, no body re-encoded. The times are
worded once per batch (`times_at(now)`, "2 hours ago" as of the send) and reused for
every message of the batch.

The output is also already "dot-safe" for SMTP: no line starts with ".", so the
sender can write it after DATA without a per-message dot-stuffing pass.
"""

from __future__ import annotations

import base64
import email.utils
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from html import escape
from zoneinfo import ZoneInfo

from digest.config import SiteConfig, SmtpConfig
from digest.errors import ConfigError, DeliveryError
from digest.mail.tokens import unsubscribe_url, valid_token
from digest.models import TOKEN_PLACEHOLDER, RenderedIssue
from digest.text.clean import one_line
from digest.text.storytime import PLACEHOLDER_LEN, TIME_PLACEHOLDER, placeholder_time, word_time

# Slots in a template, in the order `render` takes their values; a slot numbered
# FIRST_TIME + k holds the wording of `MessageTemplate.times[k]`.
TO, DATE, MESSAGE_ID, TOKEN = range(4)
FIRST_TIME = 4

MAX_LINE = 998  # RFC 5322 hard limit, without CRLF
_QP_WIDTH = 76  # RFC 2045 limit for an encoded line, the soft-break "=" included
_WORD_BYTES = 45  # UTF-8 bytes per encoded word: 60 base64 chars, 75 in total with =?utf-8?b??=
_CTRL_RE = re.compile(r"[\x00-\x1f\x7f]")
_ATEXT_RE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*")
_PLACEHOLDER = TOKEN_PLACEHOLDER.encode("ascii")
# What a soft line break must never split: the token and the time placeholders.
_KEEP = re.compile(re.escape(_PLACEHOLDER) + rb"|" + TIME_PLACEHOLDER.pattern.encode("ascii"))
_TIME_BYTES = re.compile(TIME_PLACEHOLDER.pattern.encode("ascii"))


def _encoded_words(text: str) -> list[str]:
    words: list[str] = []
    chunk = ""
    for ch in text:
        # Never split a character's UTF-8 bytes across two encoded words.
        if len((chunk + ch).encode("utf-8")) > _WORD_BYTES:
            words.append(chunk)
            chunk = ""
        chunk += ch
    if chunk:
        words.append(chunk)
    return [
        "=?utf-8?b?" + base64.b64encode(w.encode("utf-8")).decode("ascii") + "?=" for w in words
    ]


def _fold(name: str, words: Sequence[str], sep: str) -> str:
    """Join header tokens into lines of at most 78 characters where the tokens allow it."""
    lines: list[str] = []
    line = f"{name}:"
    for i, word in enumerate(words):
        piece = (" " if i == 0 else sep) + word
        if len(line) + len(piece) > 78 and line != f"{name}:":
            lines.append(line)
            line = " " + word
        else:
            line += piece
    lines.append(line)
    return "\r\n".join(lines) + "\r\n"


def unstructured(name: str, text: str) -> str:
    """Return a complete header line for free text: one logical line, RFC 2047 when needed."""
    text = one_line(text)
    plain = text.isascii() and "=?" not in text and all(len(w) <= 70 for w in text.split(" "))
    if plain:
        return _fold(name, text.split(" ") if text else [""], " ")
    # Encoded words: the space between two of them is not part of the text.
    return _fold(name, _encoded_words(text), " ")


def phrase(text: str) -> str:
    """Return a display name as an RFC 5322 phrase: atoms, a quoted string or encoded words."""
    text = one_line(text)
    if not text:
        return ""
    if text.isascii() and "=?" not in text:
        if _ATEXT_RE.fullmatch(text):
            return text
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return " ".join(_encoded_words(text))


def mailbox(address: str, name: str = "") -> str:
    """Return `name <address>` (or `<address>`) safe to put in a header."""
    if mailbox_unsafe(address):
        raise ValueError(f"unsafe address {address!r}")
    # 60 characters keep even an all-non-ASCII name plus a long address under 998 octets.
    shown = phrase(one_line(name)[:60])
    return f"{shown} <{address}>" if shown else f"<{address}>"


def qp_encode(text: str, keep: re.Pattern[bytes] = _KEEP) -> bytes:
    """Quoted-printable encode text as UTF-8 with CRLF lines, never splitting a `keep` match."""
    out: list[bytes] = []
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    for line in text.split("\n"):
        raw = line.encode("utf-8")
        atoms: list[bytes] = []
        i = 0
        n = len(raw)
        while i < n:
            if raw[i] == 68 and (m := keep.match(raw, i)):  # 68: "D", as in DIGESTX…
                atoms.append(m[0])
                i = m.end()
                continue
            b = raw[i]
            if (33 <= b <= 126 and b != 61) or b == 32 or b == 9:
                atoms.append(raw[i : i + 1])
            else:
                atoms.append(b"=%02X" % b)
            i += 1
        if atoms and atoms[-1] in (b" ", b"\t"):
            atoms[-1] = b"=%02X" % atoms[-1][0]  # trailing whitespace would be stripped in transit
        cur: list[bytes] = []
        width = 0
        for atom in atoms:
            if width + len(atom) > _QP_WIDTH - 1:  # leave room for the soft-break "="
                out.append(b"".join(cur) + b"=")
                cur, width = [], 0
            if width == 0 and atom in (b".", b"F"):
                # A leading "." needs SMTP dot-stuffing and "From " gets mangled by mbox;
                # encoding them keeps the body safe to send as is.
                atom = b"=%02X" % atom[0]
            cur.append(atom)
            width += len(atom)
        out.append(b"".join(cur))
    return b"\r\n".join(out) + b"\r\n"


def _qp_inline(text: str, *, line_start: bool) -> bytes:
    """Quoted-printable encode a value that goes mid-line into an encoded body."""
    out = bytearray()
    raw = text.encode("utf-8")
    for i, b in enumerate(raw):
        # A space is literal inside the value; a last one could end up trailing a line.
        safe = (33 <= b <= 126 and b != 61) or (b == 32 and i < len(raw) - 1)
        if safe and not (i == 0 and line_start and b in b".F"):
            out.append(b)
        else:
            out += b"=%02X" % b
    return bytes(out)


@dataclass(frozen=True)
class TimeSlot:
    """A story time in the finished message: when, and how to encode its wording."""

    when: datetime
    html: bool  # in the HTML part: escape the wording
    line_start: bool  # first on its encoded line: "." and "From" need encoding


@dataclass(frozen=True)
class MessageTemplate:
    """A finished message as literal segments with per-subscriber slots between them."""

    segments: tuple[bytes, ...]  # len(slots) + 1 literal pieces
    slots: tuple[int, ...]  # TO, DATE, MESSAGE_ID, TOKEN or FIRST_TIME + k, between segments
    sender: str  # envelope sender (MAIL FROM)
    domain: str  # the From domain: Message-IDs and DKIM use it
    issue_date: str
    times: tuple[TimeSlot, ...] = ()
    timezone: str = "UTC"  # the site's: "yesterday" and clock times are local
    language: str = "en"  # the site's: story times are worded in it

    def times_at(self, now: datetime | None) -> tuple[bytes, ...]:
        """Return every story time worded for a reader at `now` (None: absolute times).

        A wording longer than its placeholder (possible in some languages once encoded)
        falls back to the absolute time, so encoded lines stay within 76 octets.
        """
        tz = ZoneInfo(self.timezone)
        day = date.fromisoformat(self.issue_date)
        out: list[bytes] = []
        for slot in self.times:
            for moment in (now, None):
                words = word_time(slot.when, tz, now=moment, day=day, language=self.language)
                encoded = _qp_inline(
                    escape(words) if slot.html else words, line_start=slot.line_start
                )
                if len(encoded) <= PLACEHOLDER_LEN:
                    break
            out.append(encoded)
        return tuple(out)

    def render(
        self,
        *,
        to: str,
        date: str,
        message_id: str,
        token: str,
        times: tuple[bytes, ...] | None = None,
    ) -> bytes:
        """Return the complete message for one recipient; values are header-safe strings.

        `times` comes from `times_at(send time)`, once per batch; without it story times
        are absolute ("07:42"), never a relative wording nobody checked.
        """
        if not valid_token(token):
            raise ValueError("unsubscribe token must be 1-64 URL-safe characters")
        if "\n" in to or "\r" in to or "\n" in message_id or "\r" in message_id:
            raise ValueError("header values must not contain line breaks")
        if times is None:
            times = self.times_at(None) if self.times else ()
        if len(times) != len(self.times):
            raise ValueError("times must come from this template's times_at()")
        values = (
            to.encode("ascii"),
            date.encode("ascii"),
            message_id.encode("ascii"),
            token.encode(),
            *times,
        )
        pieces = [self.segments[0]]
        for slot, segment in zip(self.slots, self.segments[1:], strict=True):
            pieces.append(values[slot])
            pieces.append(segment)
        return b"".join(pieces)

    def new_message_id(self, tag: str = "") -> str:
        """Return a fresh Message-ID on the sender's domain."""
        tag = re.sub(r"[^A-Za-z0-9.-]", "", tag)[:40]
        return (
            f"<{self.issue_date}.{tag + '.' if tag else ''}{secrets.token_hex(10)}@{self.domain}>"
        )


def format_date(when: datetime) -> str:
    """Return an RFC 5322 Date header value for an aware datetime."""
    return email.utils.format_datetime(when)


def parse_from(smtp: SmtpConfig) -> tuple[str, str, str]:
    """Return (display name, address, domain) of `smtp.from`, or raise ConfigError."""
    name, address = email.utils.parseaddr(smtp.from_)
    local, _, domain = address.rpartition("@")
    if not local or not domain or not address.isascii() or mailbox_unsafe(address):
        raise ConfigError(
            f"smtp.from: {smtp.from_!r} is not a usable sender; write e.g. "
            '"The Daily Digest <digest@news.example.com>"'
        )
    return name, address, domain.lower()


def mailbox_unsafe(address: str) -> bool:
    """Return True if an address could break a header or an SMTP command."""
    return bool(_CTRL_RE.search(address)) or any(c in address for c in ' <>,;"()')


def dkim_sign(message: bytes, *, selector: str, domain: str, key: bytes) -> bytes:
    """Return the message with a DKIM-Signature header covering the list headers."""
    import dkim  # imported lazily: only senders with a key pay for it

    signature = dkim.sign(
        message,
        selector.encode("ascii"),
        domain.encode("ascii"),
        key,
        include_headers=list(DKIM_HEADERS),
    )
    return bytes(signature) + message


DKIM_HEADERS = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"mime-version",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"content-type",
)


def _split_slots(data: bytes, marker: bytes, slot: int) -> list[bytes | int]:
    pieces: list[bytes | int] = []
    for i, part in enumerate(data.split(marker)):
        if i:
            pieces.append(slot)
        pieces.append(part)
    return pieces


def build_template(
    issue: RenderedIssue, *, smtp: SmtpConfig, site: SiteConfig, list_name: str = ""
) -> MessageTemplate:
    """Encode the issue into a message template once; `render` personalizes it."""
    from_name, sender, domain = parse_from(smtp)
    unsubscribe = [f"<{unsubscribe_url(site.url)}>"]
    if smtp.unsubscribe_mailto:
        if mailbox_unsafe(smtp.unsubscribe_mailto) or "@" not in smtp.unsubscribe_mailto:
            raise ConfigError(
                f"smtp.unsubscribe_mailto: {smtp.unsubscribe_mailto!r} is not an address"
            )
        # The token rides in the subject so `digest subscribers mail-unsubscribe` knows who
        # left without trusting the (forgeable) From: header.
        unsubscribe.append(
            f"<mailto:{smtp.unsubscribe_mailto}?subject=unsubscribe%20{TOKEN_PLACEHOLDER}>"
        )
    boundary = "=_digest_" + secrets.token_hex(12)  # "=_" can never occur in QP output
    list_label = phrase(list_name or site.name)
    head = "".join(
        [
            f"From: {mailbox(sender, from_name)}\r\n",
            "To: \x00TO\x00\r\n",
            unstructured("Subject", issue.subject),
            "Date: \x00DATE\x00\r\n",
            "Message-ID: \x00MSGID\x00\r\n",
            "MIME-Version: 1.0\r\n",
            f"List-Id: {list_label + ' ' if list_label else ''}<digest.{domain}>\r\n",
            _fold("List-Unsubscribe", [u + "," for u in unsubscribe[:-1]] + unsubscribe[-1:], " "),
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
            f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n',
            "\r\n",
        ]
    ).encode("ascii")
    part = (
        "--{b}\r\nContent-Type: text/{kind}; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    )
    times: list[TimeSlot] = []
    body: list[bytes | int] = [part.format(b=boundary, kind="plain").encode("ascii")]
    body += _time_slots(qp_encode(issue.text), html=False, times=times)
    body.append(part.format(b=boundary, kind="html").encode("ascii"))
    body += _time_slots(qp_encode(issue.html), html=True, times=times)
    body.append(f"--{boundary}--\r\n".encode("ascii"))
    pieces: list[bytes | int] = [head]
    for marker, slot in (
        (b"\x00TO\x00", TO),
        (b"\x00DATE\x00", DATE),
        (b"\x00MSGID\x00", MESSAGE_ID),
    ):
        pieces = [
            q
            for p in pieces
            for q in ([p] if isinstance(p, int) else _split_slots(p, marker, slot))
        ]
    pieces = [
        q
        for p in pieces
        for q in ([p] if isinstance(p, int) else _split_slots(p, _PLACEHOLDER, TOKEN))
    ]
    pieces.extend(
        q
        for p in body
        for q in ([p] if isinstance(p, int) else _split_slots(p, _PLACEHOLDER, TOKEN))
    )
    # Merge adjacent literal pieces so `render` joins as few as possible.
    segments: list[bytes] = [b""]
    slots: list[int] = []
    for p in pieces:
        if isinstance(p, int):
            slots.append(p)
            segments.append(b"")
        else:
            segments[-1] += p
    template = MessageTemplate(
        segments=tuple(segments),
        slots=tuple(slots),
        sender=sender,
        domain=domain,
        issue_date=issue.date,
        times=tuple(times),
        timezone=site.timezone,
        language=site.language,
    )
    _check(template)
    return template


def _time_slots(encoded: bytes, *, html: bool, times: list[TimeSlot]) -> list[bytes | int]:
    """Split an encoded part at its time placeholders, appending a `TimeSlot` for each."""
    pieces: list[bytes | int] = []
    start = 0
    for m in _TIME_BYTES.finditer(encoded):
        pieces.append(encoded[start : m.start()])
        line_start = m.start() == 0 or encoded[m.start() - 2 : m.start()] == b"\r\n"
        times.append(TimeSlot(when=placeholder_time(m), html=html, line_start=line_start))
        pieces.append(FIRST_TIME + len(times) - 1)
        start = m.end()
    pieces.append(encoded[start:])
    return pieces


def _check(template: MessageTemplate) -> None:
    """Refuse a template whose worst-case rendering could break SMTP or RFC 5322 limits."""
    sample = template.render(
        to="<" + "x" * 64 + "@" + "y" * 250 + ">",
        date="Wed, 25 Nov 2026 07:00:00 +0000",
        message_id=template.new_message_id("x" * 40),
        token="T" * 64,
    )
    for line in sample.split(b"\r\n"):
        if len(line) > MAX_LINE:
            raise DeliveryError(
                f"a message line would be {len(line)} octets (limit {MAX_LINE}); "
                "shorten site.url or smtp.unsubscribe_mailto"
            )
        if line.startswith(b"."):
            raise DeliveryError("internal: a message line starts with '.'; please report this")
    if b"\n" in sample.replace(b"\r\n", b"") or b"\r" in sample.replace(b"\r\n", b""):
        raise DeliveryError("internal: bare CR or LF in a message; please report this")
