"""One-click unsubscribe (RFC 8058) and its pages.

    GET  /unsubscribe?token=T    confirmation page with an "Unsubscribe" button
    POST /unsubscribe?token=T    RFC 8058 one-click (body List-Unsubscribe=One-Click) → 200
    GET  /unsubscribe            (no token) how to unsubscribe: the archive's link lands here
    POST /resubscribe?token=T    undo an unsubscribe

A GET never changes anything (mail scanners fetch every link); the POST works without
cookies or redirects, and is idempotent. A malformed, forged or unknown token gets a 400.
"""

from __future__ import annotations

import email.policy
import logging
from email.parser import BytesParser
from html import escape
from urllib.parse import parse_qs, quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response

from digest.mail.tokens import valid_token
from digest.models import Subscriber
from digest.web.guards import read_body
from digest.web.pages import Pages

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024  # a one-click body is 26 bytes; anything large is not one
ONE_CLICK = ("List-Unsubscribe", "One-Click")


def is_one_click(body: bytes, content_type: str) -> bool:
    """Return True when a POST body carries List-Unsubscribe=One-Click (urlencoded or multipart)."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "multipart/form-data":
        head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
        msg = BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        for part in msg.iter_parts() if msg.is_multipart() else ():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if name == ONE_CLICK[0] and isinstance(payload, bytes):
                return payload.decode("utf-8", "replace").strip() == ONE_CLICK[1]
        return False
    # RFC 8058 allows application/x-www-form-urlencoded; be lenient about a missing type.
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        return False
    return ONE_CLICK[1] in fields.get(ONE_CLICK[0], [])


class UnsubscribePages(Pages):
    """Unsubscribe and resubscribe by the reader's token."""

    def _(self, message: str, **values: str) -> str:
        """Return `message` in the site's language; values are HTML-escaped first (these
        pages are built as HTML strings, not templates)."""
        return super()._(message, **{k: escape(v) for k, v in values.items()})

    def bad_token(self) -> HTMLResponse:
        """Return the plain 400 page for a malformed, forged or unknown token."""
        return self.page(
            self._("This link is not valid"),
            "<p>"
            + self._(
                "The link may be incomplete or mistyped. Please use the unsubscribe link "
                "from the most recent email you received."
            )
            + "</p>",
            status=400,
        )

    def _form(self, action: str, token: str, label: str, *, quiet: bool = False) -> str:
        # The hidden field makes the button's POST exactly the RFC 8058 one-click request.
        hidden = (
            f'<input type="hidden" name="{ONE_CLICK[0]}" value="{ONE_CLICK[1]}">'
            if action == "unsubscribe"
            else ""
        )
        cls = ' class="quiet"' if quiet else ""
        return (
            f'<form method="post" action="{self.prefix}/{action}?token={quote(token)}">'
            f'{hidden}<button type="submit"{cls}>{escape(label)}</button></form>'
        )

    def _done(self, sub: Subscriber, token: str) -> HTMLResponse:
        email = self._mask(sub.email)
        return self.page(
            self._("You are unsubscribed"),
            "<p>"
            + self._(
                "%(email)s will get no more emails from %(site)s.", email=email, site=self.site_name
            )
            + "</p><p>"
            + self._("Unsubscribed by mistake?")
            + "</p>"
            + self._form("resubscribe", token, self._("Subscribe again"), quiet=True),
        )

    async def _subscriber(self, token: str) -> Subscriber | None:
        return await run_in_threadpool(lambda: self.store.get_subscriber(token=token))

    async def _set_status(self, token: str, status: str) -> Subscriber | None:
        now = self.clock()
        return await run_in_threadpool(
            lambda: self.store.set_subscriber_status(status=status, now=now, token=token)
        )

    async def unsubscribe_form(self, request: Request) -> Response:
        """Show the confirmation page; a GET never unsubscribes (scanners follow links)."""
        if "token" not in request.query_params:
            return self.page(
                self._("Unsubscribe"),
                "<p>"
                + self._(
                    "To stop receiving this newsletter, use the <em>Unsubscribe</em> link at "
                    "the bottom of any email you received from us; it is personal to you."
                )
                + "</p>",
            )
        token = request.query_params["token"]
        sub = await self._subscriber(token) if valid_token(token) else None
        if sub is None:
            return self.bad_token()
        if sub.status == "unsubscribed":
            return self._done(sub, token)
        return self.page(
            self._("Unsubscribe?"),
            "<p>"
            + self._(
                "Stop sending %(site)s to %(email)s?",
                site=self.site_name,
                email=self._mask(sub.email),
            )
            + "</p>"
            + self._form("unsubscribe", token, self._("Unsubscribe")),
        )

    async def unsubscribe(self, request: Request) -> Response:
        """Unsubscribe on the RFC 8058 one-click POST (idempotent)."""
        token = request.query_params.get("token", "")
        if not valid_token(token):
            return self.bad_token()
        body = await read_body(request, MAX_BODY)
        if body is None:
            return PlainTextResponse("request body too large\n", status_code=413)
        if not is_one_click(body, request.headers.get("content-type", "")):
            return self.page(
                self._("Unsubscribe"),
                "<p>"
                + self._(
                    "This request did not say <code>List-Unsubscribe=One-Click</code>; "
                    "nothing was changed. Use the button on the unsubscribe page."
                )
                + "</p>",
                status=400,
            )
        sub = await self._subscriber(token)
        if sub is None:
            return self.bad_token()
        if sub.status == "active":
            sub = await self._set_status(token, "unsubscribed") or sub
            log.info("subscriber %s unsubscribed via the web", sub.id)
        # Already unsubscribed, bounced or complained: leave the status alone, answer the same.
        return self._done(sub, token)

    async def resubscribe(self, request: Request) -> Response:
        """Undo an unsubscribe for the token's owner."""
        token = request.query_params.get("token", "")
        sub = await self._subscriber(token) if valid_token(token) else None
        if sub is None:
            return self.bad_token()
        if sub.status == "bounced":
            return self.page(
                self._("Cannot subscribe again here"),
                "<p>"
                + self._(
                    "Mail to this address bounced, so we stopped sending to it. Please "
                    "contact the editor to be added again."
                )
                + "</p>",
            )
        if sub.status == "complained":
            # A spam report from this mailbox: never mail it again on a link's say-so.
            return self.page(
                self._("Cannot subscribe again here"),
                "<p>"
                + self._(
                    "This address reported our mail as spam, so we stopped sending to it. "
                    "Please contact the editor to be added again."
                )
                + "</p>",
            )
        if sub.status != "active":
            sub = await self._set_status(token, "active") or sub
            log.info("subscriber %s re-subscribed via the web", sub.id)
        return self.page(
            self._("Welcome back"),
            "<p>"
            + self._(
                "%(email)s will get %(site)s again, starting with the next issue.",
                email=self._mask(sub.email),
                site=self.site_name,
            )
            + "</p>"
            + self._form("unsubscribe", token, self._("Unsubscribe"), quiet=True),
        )
