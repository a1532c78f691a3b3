"""The readers' web side: sign-up, preferences, one-click unsubscribe, the archive, a health check.

    GET|POST /subscribe, /confirm, /preferences   digest.web.readers
    GET|POST /unsubscribe, POST /resubscribe       digest.web.unsubscribe
    GET  /archive, /archive/YYYY-MM-DD[.json]      digest.web.archive
    GET  /healthz                "ok" when the database answers

Shared by all: digest.web.pages (layout, words, headers) and digest.web.guards.

RFC 8058 asks that the one-click POST work without cookies and without redirects, so
every answer here is a final 200 (or a plain 4xx) and no cookie is ever set: Starlette's
slash redirects are off (they built Location from the Host header and carried the token
along), and its own 404/405 answers are pages of ours with the same security headers. A GET never
changes anything: mail scanners and link previewers fetch every URL in a message.
A token that is malformed, forged or unknown gets a 400 and changes nothing.

`create_app(config, store)` returns the Starlette app; `digest serve` runs it with uvicorn
behind the operator's reverse proxy at `[site].url`. Links use the path of `[site].url`,
so a proxy that maps https://example.com/news/ to this app's root keeps them working.
Every page is in `[site].language` (`digest.text.i18n`), with English for untranslated words.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digest.config import Config
from digest.errors import StoreError
from digest.store import Store
from digest.web.archive import ArchivePages
from digest.web.pages import HEADERS, Clock, Pages
from digest.web.readers import ReaderPages
from digest.web.unsubscribe import UnsubscribePages

log = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(tz=UTC)


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
                for name, value in HEADERS.items():
                    if name.lower().encode("latin-1") not in have:
                        headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(config: Config, store: Store, *, clock: Clock | None = None) -> Starlette:
    """Return the web app for `digest serve` (tests pass a fixed clock)."""
    clock = clock or _utcnow
    readers = ReaderPages(config, store, clock)
    unsubscribe = UnsubscribePages(config, store, clock)
    archive = ArchivePages(config, store, clock)
    pages = Pages(config, store, clock)  # 404 and 405 in the site's layout

    async def healthz(request: Request) -> Response:
        """Answer "ok" when the database answers, 503 otherwise."""
        try:
            await run_in_threadpool(store.version)
        except StoreError as exc:
            log.warning("health check failed: %s", exc)
            return PlainTextResponse("database unavailable\n", status_code=503)
        return PlainTextResponse("ok\n", headers={"Cache-Control": "no-store"})

    async def http_error(request: Request, exc: Exception) -> Response:
        code = exc.status_code if isinstance(exc, HTTPException) else 500
        if code == 405:
            return pages.page("Method not allowed", "<p>This address does not take that.</p>", 405)
        if code == 404:
            return pages.page("Not found", "<p>There is no page at this address.</p>", 404)
        return PlainTextResponse(f"{code}\n", status_code=code, headers=HEADERS)

    routes = [
        Route("/unsubscribe", unsubscribe.unsubscribe_form, methods=["GET"]),
        Route("/unsubscribe", unsubscribe.unsubscribe, methods=["POST"]),
        Route("/resubscribe", unsubscribe.resubscribe, methods=["POST"]),
        Route("/archive", archive.archive, methods=["GET"]),
        Route("/archive/", archive.archive, methods=["GET"]),
        Route("/archive/{date}.json", archive.archived_json, methods=["GET"]),
        Route("/archive/{date}", archive.archived_issue, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/subscribe", readers.subscribe_form, methods=["GET"]),
        Route("/subscribe", readers.subscribe, methods=["POST"]),
        Route("/confirm", readers.confirm_form, methods=["GET"]),
        Route("/confirm", readers.confirm, methods=["POST"]),
        Route("/confirm/renew", readers.renew, methods=["POST"]),
        Route("/preferences", readers.preferences_form, methods=["GET"]),
        Route("/preferences", readers.preferences, methods=["POST"]),
    ]
    app = Starlette(
        routes=routes, exception_handlers={HTTPException: http_error, Exception: http_error}
    )
    app.router.redirect_slashes = False  # a redirect's Location came from the Host header
    app.add_middleware(SecurityHeaders)
    return app
