"""The readers' web side: sign-up, preferences, one-click unsubscribe, the archive, a health check.

    GET|POST /subscribe, /confirm, /preferences   see digest.web.readers

    GET  /unsubscribe?token=T    confirmation page with an "Unsubscribe" button
    POST /unsubscribe?token=T    RFC 8058 one-click (body List-Unsubscribe=One-Click) → 200
    GET  /unsubscribe            (no token) how to unsubscribe: the archive's link lands here
    POST /resubscribe?token=T    undo an unsubscribe
    GET  /archive                past issues, newest first
    GET  /archive/YYYY-MM-DD     an issue as sent, with no subscriber's token in it, then
                                 "More stories today": the day's stories the email left out
    GET  /archive/YYYY-MM-DD.json  the composed issue as JSON (digest.compose.document)
    GET  /healthz                "ok" when the database answers

RFC 8058 asks that the one-click POST work without cookies and without redirects, so
every answer here is a final 200 (or a plain 4xx) and no cookie is ever set: Starlette's
slash redirects are off (they built Location from the Host header and carried the token
along), and its own 404/405 answers are pages of ours with the same security headers. A GET never
changes anything: mail scanners and link previewers fetch every URL in a message.
A token that is malformed, forged or unknown gets a 400 and changes nothing.

`create_app(config, store)` returns the Starlette app; `digest serve` runs it with uvicorn
behind the operator's reverse proxy at `[site].url`. Links use the path of `[site].url`,
so a proxy that maps https://example.com/news/ to this app's root keeps them working.
Every page is in `[site].language` (`digest.i18n`), with English for untranslated words.
"""

from __future__ import annotations

import email.policy
import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from email.parser import BytesParser
from html import escape
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digest import i18n
from digest.config import Config
from digest.errors import StoreError
from digest.models import Subscriber
from digest.store import Store, StoredIssue
from digest.storytime import fill_times
from digest.tokens import strip_tokens, valid_token
from digest.web.readers import ReaderPages, mask

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
MAX_BODY = 16 * 1024  # a one-click body is 26 bytes; anything large is not one
ARCHIVE_LIMIT = 1000
ONE_CLICK = ("List-Unsubscribe", "One-Click")

_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the token is in the URL: never pass it on
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}
# Archived issues load remote images and inline styles, and post nothing.
_ARCHIVE_HEADERS = {
    **_HEADERS,
    "Cache-Control": "public, max-age=300",
    "Content-Security-Policy": (
        "default-src 'none'; img-src https: http:; style-src 'unsafe-inline'; "
        "form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    ),
}


def _utcnow() -> datetime:
    return datetime.now(tz=UTC)


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


class WebApp:
    """The request handlers, bound to one config, store and clock."""

    def __init__(self, config: Config, store: Store, clock: Clock) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.site_name = config.site.name
        self.base = config.site.url.rstrip("/")
        self.prefix = urlsplit(self.base).path.rstrip("/")  # where the proxy mounts us
        self.language = config.site.language
        self.readers = ReaderPages(config, store, clock, _HEADERS)

    def _mask(self, address: str) -> str:
        return mask(address) or i18n.translate(self.language, "your address")

    def _(self, message: str, **values: str) -> str:
        """Return `message` in the site's language; values are HTML-escaped first."""
        return i18n.translate(self.language, message, **{k: escape(v) for k, v in values.items()})

    # -- pages ----------------------------------------------------------------

    def page(self, title: str, body: str, status: int = 200) -> HTMLResponse:
        """Return a page of the site's layout (templates web/page.html) around escaped `body`."""
        return self.readers.render("web/message.html", title, status, content=Markup(body))

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

    # -- handlers -------------------------------------------------------------

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
        body = await _read_body(request)
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

    async def archive(self, request: Request) -> Response:
        """List past issues, newest first."""
        issues: list[StoredIssue] = await run_in_threadpool(
            lambda: self.store.list_issues(limit=ARCHIVE_LIMIT)
        )
        if not issues:
            return self.page(self._("Archive"), "<p>" + self._("No issues yet.") + "</p>")
        rows = "".join(
            f'<li><span class="date">{escape(self._date(i.date))}</span>'
            f'<a href="{self.prefix}/archive/{escape(i.date)}">{escape(i.subject)}</a></li>'
            for i in issues
        )
        return self.page(self._("Archive"), f"<ul>{rows}</ul>")

    def _date(self, iso: str) -> str:
        """Return an issue's ISO date as the site's language writes it in full."""
        try:
            return i18n.long_date(date.fromisoformat(iso), self.language)
        except ValueError:
            return iso

    async def archived_issue(self, request: Request) -> Response:
        """Show one issue as it was sent, with no subscriber's token in it."""
        date = request.path_params["date"]
        issue = None
        if _DATE.fullmatch(date):
            issue = await run_in_threadpool(lambda: self.store.issue_for_date(date))
        if issue is None:
            return self.page(
                self._("Not found"),
                "<p>" + self._("There is no issue for that date.") + "</p>",
                404,
            )
        # Cached and read at any time later: story times are absolute ("07:42").
        day = datetime.fromisoformat(date).date()
        html = fill_times(
            issue.html, self.config.site.tz, now=None, day=day, html=True, language=self.language
        )
        html = strip_tokens(html)
        more = more_stories_html(json.loads(issue.doc), self.language) if issue.doc else ""
        if more:
            cut = html.rfind("</body>")
            html = html[:cut] + more + html[cut:] if cut >= 0 else html + more
        return HTMLResponse(html, headers=_ARCHIVE_HEADERS)

    async def archived_json(self, request: Request) -> Response:
        """Return one issue as composed, in the JSON format of `digest preview --json`."""
        date = request.path_params["date"]
        issue = None
        if _DATE.fullmatch(date):
            issue = await run_in_threadpool(lambda: self.store.issue_for_date(date))
        if issue is None or not issue.doc:
            return JSONResponse({"error": "no issue for that date"}, status_code=404)
        headers = {**_ARCHIVE_HEADERS, "Content-Type": "application/json; charset=utf-8"}
        return Response(issue.doc, headers=headers)

    async def healthz(self, request: Request) -> Response:
        """Answer "ok" when the database answers, 503 otherwise."""
        try:
            await run_in_threadpool(self.store.version)
        except StoreError as exc:
            log.warning("health check failed: %s", exc)
            return PlainTextResponse("database unavailable\n", status_code=503)
        return PlainTextResponse("ok\n", headers={"Cache-Control": "no-store"})


def _http(url: object) -> str:
    text = url if isinstance(url, str) else ""
    return text if urlsplit(text).scheme in ("http", "https") and "\n" not in text else ""


def _story_item(story: dict[str, Any]) -> str:
    title = escape(str(story.get("title") or "(untitled)"))
    url = _http(story.get("url"))
    head = f'<a href="{escape(url)}">{title}</a>' if url else f"<strong>{title}</strong>"
    summary = " ".join(str(x) for x in story.get("summary") or ())
    also = [
        f'<a href="{escape(u)}">{escape(str(a.get("source", "")))}</a>'
        if (u := _http(a.get("url")))
        else escape(str(a.get("source", "")))
        for a in story.get("also") or ()
    ]
    return (
        f"<li>{head}<br><small>{escape(str(story.get('source', '')))}"
        + (f" · Also: {', '.join(also)}" if also else "")
        + "</small>"
        + (f"<br>{escape(summary)}" if summary else "")
        + "</li>"
    )


def more_stories_html(doc: dict[str, Any], language: str = "en") -> str:
    """Return the archive's "More stories today" list for an issue document, or ""."""
    more = [s for s in doc.get("more") or () if isinstance(s, dict)]
    if not more:
        return ""
    items = "".join(_story_item(s) for s in more)
    return (
        '<div id="more" style="max-width:600px;margin:0 auto;padding:8px 20px 32px;'
        "font:15px/1.5 -apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,Helvetica,Arial,"
        'sans-serif"><h2 style="font-size:18px">'
        + escape(i18n.translate(language, "More stories today"))
        + "</h2>"
        f'<ul style="padding-left:18px">{items}</ul></div>'
    )


async def _read_body(request: Request) -> bytes | None:
    """Return the request body, or None when it exceeds MAX_BODY."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class SecurityHeaders:
    """ASGI middleware: every answer carries the security headers, whoever produced it.

    Handlers set their own (the archive's differ); anything else, a 500 included,
    gets the defaults, so no answer of this app is ever without them.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                have = {name.lower() for name, _ in headers}
                for name, value in _HEADERS.items():
                    if name.lower().encode("latin-1") not in have:
                        headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(config: Config, store: Store, *, clock: Clock | None = None) -> Starlette:
    """Return the web app for `digest serve` (tests pass a fixed clock)."""
    web = WebApp(config, store, clock or _utcnow)

    async def http_error(request: Request, exc: Exception) -> Response:
        code = exc.status_code if isinstance(exc, HTTPException) else 500
        if code == 405:
            return web.page("Method not allowed", "<p>This address does not take that.</p>", 405)
        if code == 404:
            return web.page("Not found", "<p>There is no page at this address.</p>", 404)
        return PlainTextResponse(f"{code}\n", status_code=code, headers=_HEADERS)

    routes = [
        Route("/unsubscribe", web.unsubscribe_form, methods=["GET"]),
        Route("/unsubscribe", web.unsubscribe, methods=["POST"]),
        Route("/resubscribe", web.resubscribe, methods=["POST"]),
        Route("/archive", web.archive, methods=["GET"]),
        Route("/archive/", web.archive, methods=["GET"]),
        Route("/archive/{date}.json", web.archived_json, methods=["GET"]),
        Route("/archive/{date}", web.archived_issue, methods=["GET"]),
        Route("/healthz", web.healthz, methods=["GET"]),
        Route("/subscribe", web.readers.subscribe_form, methods=["GET"]),
        Route("/subscribe", web.readers.subscribe, methods=["POST"]),
        Route("/confirm", web.readers.confirm_form, methods=["GET"]),
        Route("/confirm", web.readers.confirm, methods=["POST"]),
        Route("/confirm/renew", web.readers.renew, methods=["POST"]),
        Route("/preferences", web.readers.preferences_form, methods=["GET"]),
        Route("/preferences", web.readers.preferences, methods=["POST"]),
    ]
    app = Starlette(
        routes=routes, exception_handlers={HTTPException: http_error, Exception: http_error}
    )
    app.router.redirect_slashes = False  # a redirect's Location came from the Host header
    app.add_middleware(SecurityHeaders)
    return app
