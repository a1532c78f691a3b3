"""The double opt-in mail: one plain-text message with the reader's confirmation link.

It goes straight to the SMTP server (no ledger: it is not an issue), with the same
header hygiene as issues: addresses are checked, the subject is encoded, the body is
quoted-printable and safe to send after DATA as is.
"""

from __future__ import annotations

import logging
import re
import secrets
import socket
import time
from datetime import datetime

from digest.config import Config
from digest.errors import DeliveryError
from digest.mail.message import format_date, mailbox, parse_from, qp_encode, unstructured
from digest.mail.smtp import Fatal, Rejected, SmtpClient, Temporary, Uncertain
from digest.models import Subscriber

log = logging.getLogger(__name__)

_NOTHING = re.compile(rb"(?!)")  # a plain mail has no placeholders to keep whole


def confirmation_message(
    config: Config, *, email: str, name: str, subject: str, text: str, now: datetime
) -> tuple[str, bytes]:
    """Return (envelope sender, message bytes) of a confirmation mail to one address."""
    smtp = config.require_smtp()
    from_name, sender, domain = parse_from(smtp)
    head = "".join(
        [
            f"From: {mailbox(sender, from_name)}\r\n",
            f"To: {mailbox(email, name)}\r\n",
            unstructured("Subject", subject),
            f"Date: {format_date(now)}\r\n",
            f"Message-ID: <confirm.{secrets.token_hex(10)}@{domain}>\r\n",
            "MIME-Version: 1.0\r\n",
            "Auto-Submitted: auto-generated\r\n",
            "Content-Type: text/plain; charset=utf-8\r\n",
            "Content-Transfer-Encoding: quoted-printable\r\n",
            "\r\n",
        ]
    ).encode("ascii")
    return sender, head + qp_encode(text, keep=_NOTHING)


def send_opt_in(config: Config, sub: Subscriber, token: str, *, now: datetime) -> None:
    """Mail a reader their confirmation link (text from the template web/confirm_mail.txt)."""
    from digest.text import i18n
    from digest.web.pages import make_web_environment  # the pages' templates, themeable

    base = config.site.url.rstrip("/")
    language = config.site.language
    text = (
        make_web_environment(config.render.templates or None, language)
        .get_template("web/confirm_mail.txt")
        .render(
            name=sub.name,
            email=sub.email,
            site_name=config.site.name,
            site_url=base,
            confirm_url=f"{base}/confirm?token={token}",
            confirm_hours=f"{config.subscribe.confirm_hours:g}",
        )
    )
    send_confirmation(
        config,
        email=sub.email,
        name=sub.name,
        subject=i18n.translate(
            language, "Confirm your subscription to %(site)s", site=config.site.name
        ),
        text=text,
        now=now,
    )


def send_confirmation(
    config: Config, *, email: str, name: str, subject: str, text: str, now: datetime
) -> None:
    """Send one confirmation mail, retrying temporary failures; raise DeliveryError if not."""
    from digest.mail.personalize import smtp_password  # the same password rules as a send

    smtp = config.require_smtp()
    sender, data = confirmation_message(
        config, email=email, name=name, subject=subject, text=text, now=now
    )
    client = SmtpClient(smtp, password=smtp_password(smtp), local_hostname=socket.getfqdn())
    last = ""
    try:
        for attempt in range(1, smtp.max_attempts + 1):
            try:
                if not client.connected:
                    client.connect()
                client.transact(sender, email, data, lambda: True)
                log.info("confirmation mail sent to subscriber address %s", email)
                return
            except Temporary as exc:
                last = str(exc)
                time.sleep(min(smtp.backoff * 2 ** (attempt - 1), 30.0))
            except (Rejected, Uncertain, Fatal) as exc:
                raise DeliveryError(f"confirmation mail to {email}: {exc}") from None
    finally:
        client.quit()
    raise DeliveryError(
        f"confirmation mail to {email} not sent after {smtp.max_attempts} tries: {last}"
    )
