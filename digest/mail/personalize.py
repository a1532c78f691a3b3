"""One message per reader from an issue's finished template: To, Date, Message-ID, the
reader's token, story times worded at send time, DKIM; and the template of the reader's
sections when they chose some.

The expensive parts (composing, rendering, inlining) happened once per issue, or once
per choice of sections (`section_variants`); what is left per message is substitution.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from digest.config import Config, SmtpConfig
from digest.errors import DeliveryError
from digest.mail.bounces import verp_address
from digest.mail.message import MessageTemplate, build_template, dkim_sign, format_date, mailbox
from digest.models import Subscriber
from digest.store import Store, StoredIssue

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def smtp_password(smtp: SmtpConfig) -> str:
    if not smtp.username:
        return ""
    password = smtp.password()
    if not password:
        raise DeliveryError(
            f"smtp.username is set but ${smtp.password_env} is empty; "
            f"export {smtp.password_env}=… in the environment of `digest send`"
        )
    if smtp.security == "none":
        log.warning('smtp.security is "none": the SMTP password travels unencrypted')
    return password


def dkim_key(smtp: SmtpConfig) -> bytes | None:
    if not smtp.dkim_key:
        return None
    try:
        return Path(smtp.dkim_key).read_bytes()
    except OSError as exc:
        raise DeliveryError(
            f"cannot read smtp.dkim_key {smtp.dkim_key!r}: {exc.strerror}"
        ) from None


class NoStories(Exception):
    """The reader's chosen sections have no story in this issue: nothing to send them."""


Variant = Callable[[tuple[str, ...]], MessageTemplate | None]


class Sender:
    """Per-message personalization (To, Date, Message-ID, token, DKIM) from finished templates.

    Readers who chose sections get the template of their choice, built once per
    choice by `variants`; everyone else (and every reader when the config names no
    sections) gets the issue's own template with no extra work per message.

    Story times are worded against the send time once per batch: every message sent
    within the same minute shares one wording ("2 hours ago"), at most a minute off the
    exact gap.
    """

    def __init__(
        self,
        template: MessageTemplate,
        smtp: SmtpConfig,
        clock: Clock,
        variants: Variant | None = None,
    ) -> None:
        self.template = template
        self.smtp = smtp
        self.clock = clock
        self.key = dkim_key(smtp)
        self.variants = variants
        self._by_choice: dict[tuple[str, ...], MessageTemplate | None] = {}
        self._lock = threading.Lock()
        self._times_lock = threading.Lock()
        self._times: dict[int, tuple[datetime, tuple[bytes, ...]]] = {}

    def template_for(self, sub: Subscriber) -> MessageTemplate | None:
        """Return the template for a reader's sections (None: no story for them)."""
        if not sub.sections or self.variants is None:
            return self.template
        try:
            return self._by_choice[sub.sections]
        except KeyError:
            with self._lock:  # one render per choice, however many threads ask at once
                if sub.sections not in self._by_choice:
                    self._by_choice[sub.sections] = self.variants(sub.sections)
                return self._by_choice[sub.sections]

    def times(self, now: datetime, template: MessageTemplate | None = None) -> tuple[bytes, ...]:
        """Return a template's story times worded for messages sent at `now` (per minute)."""
        template = template or self.template
        minute = now.replace(second=0, microsecond=0)
        with self._times_lock:
            cached = self._times.get(id(template))
            if cached is None or cached[0] != minute:
                cached = (minute, template.times_at(now))
                self._times[id(template)] = cached
            return cached[1]

    def envelope_from(self, token: str) -> str:
        """Return the envelope sender: the VERP bounce address with `token`, else From."""
        if self.smtp.bounce_address:
            return verp_address(self.smtp.bounce_address, token)
        return self.template.sender

    def message(self, sub: Subscriber, token: str) -> tuple[str, bytes]:
        """Return (Message-ID, message bytes) for one recipient; NoStories if none for them."""
        template = self.template_for(sub)
        if template is None:
            raise NoStories(sub.email)
        message_id = template.new_message_id()
        now = self.clock()
        data = template.render(
            to=mailbox(sub.email, sub.name),
            date=format_date(now),
            message_id=message_id,
            token=token,
            times=self.times(now, template),
        )
        if self.key is not None:
            data = dkim_sign(
                data, selector=self.smtp.dkim_selector, domain=template.domain, key=self.key
            )
        return message_id, data


def section_variants(
    store: Store, issue: StoredIssue, config: Config, full: MessageTemplate, *, now: datetime
) -> Variant | None:
    """Return the builder of per-section templates, or None when the config has no sections."""
    if not config.sections:
        return None
    from digest.mail.sections import Variants, normalize_choice  # composing: only with sections

    smtp = config.require_smtp()
    made = Variants(config, store, issue)

    def build(sections: tuple[str, ...]) -> MessageTemplate | None:
        choice = normalize_choice(config, sections)
        if not choice:
            return full
        rendered = made.get(choice, now=now)
        return None if rendered is None else build_template(rendered, smtp=smtp, site=config.site)

    return build
