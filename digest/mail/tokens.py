"""Subscriber tokens: made, checked and put into URLs in this one place.

A token is the reader's key to their unsubscribe link (and nothing else): random,
not derived from the address, and URL- and header-safe so it can be substituted
into a finished message and into a mail subject as it is.
"""

from __future__ import annotations

import re
import secrets

from digest.models import TOKEN_PLACEHOLDER

# new_token() makes 32 characters; anything URL-safe up to 64 has the shape of one.
TOKEN_PATTERN = r"[A-Za-z0-9_-]{1,64}"
_TOKEN = re.compile(TOKEN_PATTERN)
_IN_SUBJECT = re.compile(rf"\bunsubscribe\s+({TOKEN_PATTERN})(?![A-Za-z0-9_-])", re.IGNORECASE)


def new_token() -> str:
    """Return an unguessable token (random, not derived from the address)."""
    return secrets.token_urlsafe(24)


def valid_token(token: str | None) -> bool:
    """Return True when `token` has the shape of a subscriber token (not that it exists)."""
    return bool(token) and _TOKEN.fullmatch(token or "") is not None


def token_in_subject(subject: str) -> str | None:
    """Return the token of an "unsubscribe <token>" subject, as the mailto link fills it."""
    found = _IN_SUBJECT.search(subject)
    return found.group(1) if found else None


def unsubscribe_url(site_url: str, token: str = TOKEN_PLACEHOLDER) -> str:
    """Return the one-click unsubscribe URL for a token (the placeholder by default)."""
    return f"{site_url.rstrip('/')}/unsubscribe?token={token}"


def preferences_url(site_url: str, token: str = TOKEN_PLACEHOLDER) -> str:
    """Return the reader's preferences page URL for a token (the placeholder by default)."""
    return f"{site_url.rstrip('/')}/preferences?token={token}"


def archive_url(site_url: str, date: str) -> str:
    """Return the public web-archive URL of an issue."""
    return f"{site_url.rstrip('/')}/archive/{date}"


def strip_tokens(text: str) -> str:
    """Remove the token placeholder (and its `token=` parameter) from an issue's HTML or text."""
    for prefix in ("?token=", "&amp;token=", "&token="):
        text = text.replace(prefix + TOKEN_PLACEHOLDER, "")
    return text.replace(TOKEN_PLACEHOLDER, "")
