"""Lint a rendered issue for what readers would suffer: clipping, blocked or broken images,
dead links, lost styles, a missing text part, no way out, a subject cut short.

`lint_issue` (the rendered issue) and `lint_message` (a built MIME message) are pure:
values in, a list of `Finding`s out; empty means nothing to fix. `check_issue` wires
both for `digest preview`. Safety problems come from `emailsafety.check_email_html`.
"""

from __future__ import annotations

import email.policy
import html
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.parser import BytesParser
from html.parser import HTMLParser

from digest.config import Config
from digest.errors import DigestError
from digest.models import TOKEN_PLACEHOLDER, RenderedIssue
from digest.render.emailsafety import GMAIL_CLIP_BYTES, check_email_html

SUBJECT_SHOWN = 70  # characters a desktop inbox list shows; phones show about 40
SIZE_MARGIN = 0.9  # warn from 90% of Gmail's clip: a long summary tips it over
PREVIEW_TOKEN = "preview-token"

# Substrings of check_email_html's messages -> our finding codes.
_SAFETY_CODES = (
    ("Gmail clips", ""),  # reported by the size check below, with the remedy
    ("no alt attribute", "image"),
    ("no width attribute", "image"),
    ("not an absolute http(s) URL", "link"),
    ("dangerous URL", "link"),
    ("was not inlined", "style"),
)
_TAG = re.compile(r"</?(p|a|div|td|tr|table|span|br|img|h[1-6])\b[^>]*>", re.I)
_DISPLAY_BLOCK = re.compile(r"display\s*:\s*block", re.I)
_WBR = re.compile(r"<wbr\s*/?>", re.I)


@dataclass(frozen=True)
class Finding:
    """One lint warning: a short code and what to do about it."""

    # size, image, link, style, text, unsubscribe, subject, preheader, headers, address, unsafe
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class _Scan(HTMLParser):
    """Collect the images and link targets of an HTML document (conditional comments skipped)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.images: list[dict[str, str]] = []
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "img":
            self.images.append(values)
        elif tag == "a" and "href" in values:
            self.hrefs.append(values["href"])

    handle_startendtag = handle_starttag


def _safety(html: str) -> list[Finding]:
    out: list[Finding] = []
    for problem in check_email_html(html):
        code = next((c for needle, c in _SAFETY_CODES if needle in problem), "unsafe")
        if code:
            out.append(Finding(code, problem))
    return out


def _size(html: str) -> list[Finding]:
    size = len(html.encode("utf-8"))
    if size > GMAIL_CLIP_BYTES:
        return [
            Finding(
                "size",
                f"HTML is {size / 1000:.1f} KB; Gmail clips messages over "
                f"{GMAIL_CLIP_BYTES / 1000:.0f} KB and hides the footer with the unsubscribe "
                "link; lower [compose].max_roundup or shorten the template",
            )
        ]
    if size > GMAIL_CLIP_BYTES * SIZE_MARGIN:
        return [
            Finding(
                "size",
                f"HTML is {size / 1000:.1f} KB, close to Gmail's "
                f"{GMAIL_CLIP_BYTES / 1000:.0f} KB clip; lower [compose].max_roundup",
            )
        ]
    return []


def _images(scan: _Scan) -> list[Finding]:
    out = []
    for img in scan.images:
        if not _DISPLAY_BLOCK.search(img.get("style", "")):
            out.append(
                Finding(
                    "image",
                    f"<img src={img.get('src', '')[:60]!r}> is not display:block; "
                    "Outlook and Gmail leave a gap under inline images",
                )
            )
    return out


def _unsubscribe(issue: RenderedIssue, scan: _Scan) -> list[Finding]:
    out = []
    links = [h for h in scan.hrefs if TOKEN_PLACEHOLDER in h]
    if not links:
        out.append(
            Finding(
                "unsubscribe",
                "the HTML part has no unsubscribe link carrying the subscriber's token; "
                "keep {{ unsubscribe_url }} in your base.html footer",
            )
        )
    elif not any(h.lower().startswith("https://") for h in links):
        out.append(
            Finding(
                "unsubscribe",
                f"the unsubscribe link {links[0][:80]!r} is not https; one-click "
                "unsubscribe (RFC 8058, required by Gmail and Yahoo) needs an https [site].url",
            )
        )
    if issue.text.strip() and TOKEN_PLACEHOLDER not in issue.text:
        out.append(
            Finding(
                "unsubscribe",
                "the plain-text part has no unsubscribe link; keep {{ unsubscribe_url }} "
                "in your digest.txt",
            )
        )
    return out


def _text(issue: RenderedIssue) -> list[Finding]:
    if not issue.text.strip():
        return [
            Finding(
                "text",
                "the plain-text part is empty; spam filters and text-only readers need one",
            )
        ]
    tags = _TAG.findall(issue.text)
    if len(tags) >= 3:
        return [
            Finding(
                "text",
                f"the plain-text part contains HTML tags ({len(tags)}); digest.txt must be "
                "plain text",
            )
        ]
    return []


def _subject(issue: RenderedIssue, shown: int) -> list[Finding]:
    subject = issue.subject.strip()
    if not subject:
        return [Finding("subject", "the subject is empty; set [render].subject")]
    if len(subject) > shown:
        cut = subject[:shown].rsplit(" ", 1)[0]
        return [
            Finding(
                "subject",
                f"the subject is {len(subject)} characters; inboxes show about {shown} "
                f"(phones about 40), so readers see {cut + ' …'!r}; shorten [render].subject "
                "or lower [render].max_subject",
            )
        ]
    return []


def lint_issue(issue: RenderedIssue, *, subject_shown: int = SUBJECT_SHOWN) -> list[Finding]:
    """Return what would make the rendered issue read badly or fail in inboxes."""
    scan = _Scan()
    scan.feed(issue.html)
    scan.close()
    findings = _size(issue.html) + _safety(issue.html) + _images(scan)
    findings += _text(issue) + _unsubscribe(issue, scan) + _subject(issue, subject_shown)
    if not issue.preheader.strip():
        findings.append(
            Finding(
                "preheader",
                "there is no preheader; inboxes will show the header text as the preview",
            )
        )
    return findings


def _parse(raw: bytes) -> EmailMessage:
    msg = BytesParser(policy=email.policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    return msg


def lint_message(raw: bytes) -> list[Finding]:
    """Return what is missing from a built message: list headers and the two MIME parts."""
    msg = _parse(raw)
    out: list[Finding] = []
    for name in ("From", "To", "Subject", "Date", "Message-ID"):
        if not msg.get(name):
            out.append(Finding("headers", f"the message has no {name} header"))
    unsubscribe = " ".join(str(msg.get("List-Unsubscribe", "")).split())
    uris = re.findall(r"<([^>]*)>", unsubscribe)
    if not uris:
        out.append(Finding("headers", "the message has no List-Unsubscribe header"))
    elif not any(u.lower().startswith("https://") for u in uris):
        out.append(
            Finding(
                "headers",
                "List-Unsubscribe has no https URI; one-click unsubscribe needs one",
            )
        )
    if str(msg.get("List-Unsubscribe-Post", "")).strip() != "List-Unsubscribe=One-Click":
        out.append(
            Finding(
                "headers",
                "List-Unsubscribe-Post: List-Unsubscribe=One-Click is missing (RFC 8058)",
            )
        )
    kinds = {part.get_content_type() for part in msg.walk() if not part.is_multipart()}
    if msg.get_content_type() != "multipart/alternative" or "text/plain" not in kinds:
        out.append(
            Finding("text", "the message is not multipart/alternative with a text/plain part")
        )
    if "text/html" not in kinds:
        out.append(Finding("headers", "the message has no text/html part"))
    return out


def _postal_address(issue: RenderedIssue, address: str) -> list[Finding]:
    """Warn while no postal address is configured, or when a template leaves it out."""
    if not address.strip():
        return [
            Finding(
                "address",
                "no postal address in the footer; commercial mail needs the sender's "
                "physical postal address (CAN-SPAM; an imprint in the EU): set "
                "[site].postal_address",
            )
        ]
    # The templates print it on one line, its lines joined with ", ".
    shown = " ".join(", ".join(address.splitlines()).split())
    missing = [
        part
        for part, body in (("HTML", html.unescape(_WBR.sub("", issue.html))), ("text", issue.text))
        if shown not in " ".join(body.split())
    ]
    if missing:
        return [
            Finding(
                "address",
                f"[site].postal_address is set but missing from the {' and '.join(missing)} "
                "part; keep {{ postal_address }} in your templates' footer",
            )
        ]
    return []


def check_issue(config: Config, issue: RenderedIssue, *, now: datetime) -> list[Finding]:
    """Lint an issue and, when [smtp] is configured, the message `digest send` would build."""
    findings = lint_issue(issue) + _postal_address(issue, config.site.postal_address)
    if config.smtp is None:
        return findings
    from digest.mail.message import build_template, format_date  # only senders need the MIME side

    try:
        template = build_template(issue, smtp=config.smtp, site=config.site)
    except DigestError as exc:
        return [*findings, Finding("headers", f"cannot build the message: {exc}")]
    raw = template.render(
        to="<reader@example.com>",
        date=format_date(now),
        message_id=template.new_message_id("lint"),
        token=PREVIEW_TOKEN,
        times=template.times_at(now),
    )
    return findings + lint_message(raw)
