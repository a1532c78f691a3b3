"""What every page of `digest serve` shares: its templates, the site's words, the layout.

`Pages` holds the config, store and clock one app is bound to, translates into
`[site].language` and renders a template (or plain paragraphs, or ready HTML) inside
`web/page.html` with the security headers. The sign-up and preferences pages
(`readers`), the unsubscribe pages (`unsubscribe`) and the archive (`archive`) build on it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.responses import HTMLResponse

from digest.config import Config
from digest.store import Store
from digest.text import i18n

Clock = Callable[[], datetime]

SHIPPED = Path(__file__).parent / "templates"
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the token is in the URL: never pass it on
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}


@functools.lru_cache(maxsize=16)
def make_web_environment(templates_dir: str | None, language: str = "en") -> Environment:
    """Return the pages' Jinja environment: the operator's [render].templates folder first,
    words translated into `language` with `_()` (the catalogs of `digest.text.i18n`).

    One per folder and language, shared by every page handler and every opt-in mail."""
    loaders = [FileSystemLoader(templates_dir)] if templates_dir else []
    env: Environment = i18n.jinja_environment(
        ChoiceLoader([*loaders, FileSystemLoader(SHIPPED)]),
        language,
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
    )
    return env


def mask(address: str) -> str | None:
    """Return "j•••@example.com": enough for the reader to recognise, little for a bystander
    (None when the address has no domain)."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}•••@{domain}" if domain else None


class Pages:
    """The handlers' shared part, bound to one config, store and clock."""

    def __init__(
        self, config: Config, store: Store, clock: Clock, headers: dict[str, str] = HEADERS
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.headers = headers
        self.site_name = config.site.name
        self.language = config.site.language
        self.env = make_web_environment(config.render.templates or None, self.language)
        self.base = config.site.url.rstrip("/")
        self.prefix = urlsplit(self.base).path.rstrip("/")  # where the proxy mounts us

    def _(self, message: str, **values: str) -> str:
        """Return `message` in the site's language (English when untranslated)."""
        return i18n.translate(self.language, message, **values)

    def _mask(self, address: str) -> str:
        return mask(address) or self._("your address")

    def render(
        self, template: str, title: str, status: int = 200, *, nonce: str = "", **context: Any
    ) -> HTMLResponse:
        """Render a page template with the site's name and this page's title."""
        values: dict[str, Any] = {
            "title": title,
            "site_name": self.config.site.name,
            "site_url": self.base,
            "prefix": self.prefix,
            "lang": self.config.site.language,
            "content": "",
            "paragraphs": (),
            "nonce": nonce,
            **context,
        }
        html = self.env.get_template(template).render(values)
        headers = dict(self.headers)
        if nonce:
            csp = headers.get("Content-Security-Policy", "")
            headers["Content-Security-Policy"] = f"{csp}; script-src 'nonce-{nonce}'"
        return HTMLResponse(html, status_code=status, headers=headers)

    def message(self, title: str, *paragraphs: str, status: int = 200) -> HTMLResponse:
        """Return a page of plain paragraphs."""
        return self.render("web/message.html", title, status, paragraphs=paragraphs)

    def page(self, title: str, body: str, status: int = 200) -> HTMLResponse:
        """Return a page of the site's layout around `body`, HTML the caller escaped."""
        return self.render("web/message.html", title, status, content=Markup(body))
