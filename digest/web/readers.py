"""Readers joining and choosing: sign-up with double opt-in, and the preferences page.

    GET  /subscribe[?email=…]        the form (the README's snippet links here, pre-filled)
    POST /subscribe                  store "pending", mail one confirmation link
    GET  /confirm?token=C            a button; never changes anything (scanners prefetch)
    POST /confirm?token=C            make the reader active (unexpired tokens only)
    POST /confirm/renew?token=C      an expired link: mail a new one
    GET  /preferences?token=T        sections, time zone, delivery time, unsubscribe
    POST /preferences?token=T        save them

Abuse limits: the answer to POST /subscribe is the same page whatever the address's
state, and the mail goes out after the answer (no timing tells either); the store
lets at most one confirmation mail per address per [subscribe].resend_minutes; each
client address may make [subscribe].client_posts form posts per window (then 429 with
Retry-After); a hidden "website" field that people leave empty catches form robots.
Form posts carry a signed, expiring `csrf` field and are refused when the browser
says they come from another site (Origin, Sec-Fetch-Site): no cookie is needed, so
the one-click unsubscribe POST keeps its RFC 8058 semantics. No handler redirects.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import available_timezones

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response

from digest.config import Config
from digest.errors import AddressError, DigestError, PreferenceError
from digest.mail import subscribers as subs
from digest.mail.tokens import valid_token
from digest.models import Subscriber
from digest.store import Store
from digest.web.guards import Forms, RateLimit, read_form, same_site
from digest.web.pages import HEADERS, Clock, Pages

log = logging.getLogger(__name__)


_SECRET_NAME = "web-form-key"


def _one(form: dict[str, list[str]], name: str) -> str:
    values = form.get(name) or [""]
    return values[0].strip()


class ReaderPages(Pages):
    """The sign-up and preferences handlers."""

    def __init__(
        self,
        config: Config,
        store: Store,
        clock: Clock,
        headers: dict[str, str] = HEADERS,
        *,
        limiter: RateLimit | None = None,
    ) -> None:
        super().__init__(config, store, clock, headers)
        sub = config.subscribe
        self.limiter = limiter or RateLimit(sub.client_posts, sub.client_window_minutes * 60)
        self.forms = Forms(
            lambda: bytes.fromhex(store.setting(_SECRET_NAME, lambda: secrets.token_hex(32)))
        )
        self._zones: list[str] | None = None

    # -- guards -----------------------------------------------------------------

    def _guard(self, request: Request) -> Response | None:
        """Refuse rate-limited or cross-site posts; None when the post may proceed."""
        client = request.client.host if request.client else "?"
        wait = self.limiter.retry_after(client)
        if wait:
            return PlainTextResponse(
                "too many requests; try again later\n",
                status_code=429,
                headers={**self.headers, "Retry-After": str(wait)},
            )
        if not same_site(request, self.base):
            return self.message(
                self._("Request refused"),
                self._("This form was sent from another site."),
                status=403,
            )
        return None

    def _stale_form(self, form_name: str, **context: Any) -> HTMLResponse:
        return self.message(
            self._("Please try again"),
            self._(
                "This form was open too long or did not come from this site; nothing was "
                "changed. Reload the page and send it again."
            ),
            status=400,
        )

    # -- sign-up ------------------------------------------------------------------

    async def subscribe_form(self, request: Request) -> Response:
        """Show the sign-up form (an `email` parameter pre-fills it)."""
        email = request.query_params.get("email", "")[:320]
        name = request.query_params.get("name", "")[:200]
        return self._subscribe_page(email=email, name=name)

    def _subscribe_page(self, *, email: str, name: str, error: str = "") -> HTMLResponse:
        return self.render(
            "web/subscribe.html",
            self._("Subscribe to %(site)s", site=self.config.site.name),
            400 if error else 200,
            email=email,
            name=name,
            error=error,
            csrf=self.forms.token("subscribe"),
        )

    async def subscribe(self, request: Request) -> Response:
        """Record a sign-up and mail a confirmation link; the same answer for every address."""
        refused = self._guard(request)
        if refused is not None:
            return refused
        form = await read_form(request)
        if form is None:
            return PlainTextResponse("request body too large\n", status_code=413)
        if not self.forms.valid("subscribe", _one(form, "csrf")):
            return self._stale_form("subscribe")
        raw, name = _one(form, "email"), subs.clean_name(_one(form, "name"))
        try:
            email = subs.normalize_address(raw)
        except AddressError:
            return self._subscribe_page(
                email=raw[:320], name=name, error=self._("Please enter a valid email address.")
            )
        sent = self.render(
            "web/subscribe_sent.html",
            self._("Check your inbox"),
            resend_minutes=f"{self.config.subscribe.resend_minutes:g}",
        )
        if _one(form, "website"):  # the honeypot: people never see it, robots fill it in
            log.info("sign-up with the hidden field filled in ignored")
            return sent
        now = self.clock()
        sub, token = await run_in_threadpool(lambda: self._start(email, name, now))
        if sub is not None and token is not None:
            sent.background = BackgroundTask(self._mail, sub, token, now)
        return sent

    def _start(self, email: str, name: str, now: datetime) -> tuple[Subscriber | None, str | None]:
        cfg = self.config.subscribe
        return self.store.start_opt_in(
            email,
            name,
            now=now,
            resend=timedelta(minutes=cfg.resend_minutes),
            valid=timedelta(hours=cfg.confirm_hours),
        )

    def _mail(self, sub: Subscriber, token: str, now: datetime) -> None:
        """Send the confirmation mail (after the answer went out); log, never raise."""
        from digest.mail.optin import send_opt_in

        try:
            send_opt_in(self.config, sub, token, now=now)
        except DigestError as exc:
            log.error("confirmation mail not sent: %s", exc)
            self.store.opt_in_mail_failed(token)

    async def confirm_form(self, request: Request) -> Response:
        """Show the confirmation button; a GET never confirms."""
        token = request.query_params.get("token", "")
        found = await run_in_threadpool(lambda: self.store.confirmation(token)) if token else None
        if found is None:
            return self._bad_confirm()
        sub = found.subscriber
        if sub.status == "active":
            return self._confirmed(sub)
        if sub.status != "pending":
            return self._bad_confirm()
        if found.expires is None or found.expires <= self.clock():
            return self._expired(token)
        return self.render(
            "web/confirm.html",
            self._("Confirm your subscription"),
            email=self._mask(sub.email),
            token=token,
            csrf=self.forms.token("confirm"),
        )

    async def confirm(self, request: Request) -> Response:
        """Make the token's pending reader active, if the token has not expired."""
        refused = self._guard(request)
        if refused is not None:
            return refused
        token = request.query_params.get("token", "")
        # The token in the URL is the secret here (no csrf field needed: a forger cannot
        # know it); the origin check above still refuses other sites' posts.
        if await read_form(request) is None:
            return PlainTextResponse("request body too large\n", status_code=413)
        now = self.clock()
        found = await run_in_threadpool(lambda: self.store.confirmation(token)) if token else None
        if found is None or found.subscriber.status not in ("pending", "active"):
            return self._bad_confirm()
        if found.subscriber.status == "active":
            return self._confirmed(found.subscriber)
        sub = await run_in_threadpool(lambda: self.store.confirm(token, now=now))
        if sub is None:
            return self._expired(token)
        log.info("subscriber %s confirmed via the web", sub.id)
        return self._confirmed(sub)

    async def renew(self, request: Request) -> Response:
        """Mail a new confirmation link for an expired one (within the resend limit)."""
        refused = self._guard(request)
        if refused is not None:
            return refused
        token = request.query_params.get("token", "")
        form = await read_form(request)
        if form is None:
            return PlainTextResponse("request body too large\n", status_code=413)
        if not self.forms.valid("confirm", _one(form, "csrf")):
            return self._stale_form("confirm")
        now = self.clock()
        cfg = self.config.subscribe
        sub, new = await run_in_threadpool(
            lambda: self.store.renew_opt_in(
                token,
                now=now,
                resend=timedelta(minutes=cfg.resend_minutes),
                valid=timedelta(hours=cfg.confirm_hours),
            )
        )
        sent = self.render(
            "web/subscribe_sent.html",
            self._("Check your inbox"),
            resend_minutes=f"{cfg.resend_minutes:g}",
        )
        if sub is not None and new is not None:
            sent.background = BackgroundTask(self._mail, sub, new, now)
        return sent

    def _bad_confirm(self) -> HTMLResponse:
        return self.message(
            self._("This link is not valid"),
            self._(
                "The link may be incomplete or mistyped. Please use the link from the most "
                "recent confirmation email, or sign up again."
            ),
            status=400,
        )

    def _expired(self, token: str) -> HTMLResponse:
        return self.render(
            "web/confirm_expired.html",
            self._("This link has expired"),
            400,
            token=token,
            csrf=self.forms.token("confirm"),
        )

    def _confirmed(self, sub: Subscriber) -> HTMLResponse:
        return self.render(
            "web/confirmed.html",
            self._("You are subscribed"),
            email=self._mask(sub.email),
            preferences_url=f"{self.prefix}/preferences?token={sub.token}",
        )

    # -- preferences --------------------------------------------------------------

    def zones(self) -> list[str]:
        """Return the IANA time zone names, sorted (computed once)."""
        if self._zones is None:
            self._zones = sorted(z for z in available_timezones() if "/" in z or z == "UTC")
        return self._zones

    async def preferences_form(self, request: Request) -> Response:
        """Show a reader's sections, time zone and delivery time."""
        token = request.query_params.get("token", "")
        sub = await self._reader(token)
        if sub is None:
            return self._bad_preferences()
        return self._preferences_page(sub, token)

    def _preferences_page(
        self,
        sub: Subscriber,
        token: str,
        *,
        saved: bool = False,
        error: str = "",
        timezone: str | None = None,
        send_at: str | None = None,
    ) -> HTMLResponse:
        chosen = set(sub.sections)
        return self.render(
            "web/preferences.html",
            self._("Your preferences"),
            400 if error else 200,
            nonce=secrets.token_urlsafe(16),
            email=self._mask(sub.email),
            token=token,
            csrf=self.forms.token("preferences"),
            saved=saved,
            error=error,
            sections=[{"name": s, "checked": s in chosen} for s in self.config.sections],
            timezone=sub.timezone if timezone is None else timezone,
            send_at=sub.send_at if send_at is None else send_at,
            default_timezone=self.config.site.timezone,
            default_send_at=self.config.schedule.send_at[0][:5],
            zones=self.zones(),
        )

    async def preferences(self, request: Request) -> Response:
        """Save a reader's preferences from the form."""
        refused = self._guard(request)
        if refused is not None:
            return refused
        token = request.query_params.get("token", "")
        sub = await self._reader(token)
        if sub is None:
            return self._bad_preferences()
        form = await read_form(request)
        if form is None:
            return PlainTextResponse("request body too large\n", status_code=413)
        if not self.forms.valid("preferences", _one(form, "csrf")):
            return self._stale_form("preferences")
        tz, at = _one(form, "timezone"), _one(form, "send_at")
        sections = [s.strip() for s in form.get("section", []) if s.strip()]
        try:
            prefs = subs.check_preferences(self.config, timezone=tz, send_at=at, sections=sections)
        except PreferenceError as exc:
            error = self._(exc.template, **exc.values)
            return self._preferences_page(sub, token, error=error, timezone=tz, send_at=at)
        assert sub.id is not None
        sub_id = sub.id
        now = self.clock()
        saved = await run_in_threadpool(
            lambda: self.store.set_preferences(
                sub_id,
                now=now,
                timezone=prefs.timezone,
                send_at=prefs.send_at,
                sections=prefs.sections,
            )
        )
        log.info("subscriber %s changed preferences via the web", sub_id)
        return self._preferences_page(saved or sub, token, saved=True)

    async def _reader(self, token: str) -> Subscriber | None:
        if not valid_token(token):
            return None
        sub = await run_in_threadpool(lambda: self.store.get_subscriber(token=token))
        return sub if sub is not None and sub.status in ("active", "unsubscribed") else None

    def _bad_preferences(self) -> HTMLResponse:
        return self.message(
            self._("This link is not valid"),
            self._(
                "The link may be incomplete or mistyped. Please use the "
                "“Manage preferences” link from the most recent email you received."
            ),
            status=400,
        )
