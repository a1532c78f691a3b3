"""What stands between the readers' forms and abuse: rate limits, form tokens, origins.

Kept apart from the pages (`digest.web.readers`) because none of it is about readers:
a per-client rate limit, signed and expiring form tokens (CSRF without cookies), the
browser's own word on where a POST came from, and a size-capped form reader.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import deque
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request

CSRF_TTL = 6 * 3600  # seconds a form stays usable after it was shown
MAX_FORM = 16 * 1024


class RateLimit:
    """At most `limit` events per client in any `window` seconds (in this process)."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.window = window
        self.clock = clock
        self.seen: dict[str, deque[float]] = {}
        self.lock = threading.Lock()

    def retry_after(self, client: str) -> int:
        """Count one event; return 0 when allowed, else seconds until the next is."""
        now = self.clock()
        with self.lock:
            if len(self.seen) > 50_000:  # forget idle clients rather than grow without end
                for key in [k for k, q in self.seen.items() if not q or q[-1] < now - self.window]:
                    del self.seen[key]
            times = self.seen.setdefault(client, deque())
            while times and times[0] <= now - self.window:
                times.popleft()
            if len(times) >= self.limit:
                return max(1, int(times[0] + self.window - now + 0.999))
            times.append(now)
            return 0


class Forms:
    """Signed, expiring form tokens (CSRF) keyed by a secret kept in the store."""

    def __init__(self, key: Callable[[], bytes], clock: Callable[[], float] = time.time) -> None:
        self._key_source = key
        self._key: bytes | None = None
        self.clock = clock

    @property
    def key(self) -> bytes:
        """Return the signing key (read from the store on first use)."""
        if self._key is None:
            self._key = self._key_source()
        return self._key

    def token(self, form: str) -> str:
        """Return a token for one form, valid for CSRF_TTL seconds."""
        stamp = str(int(self.clock()))
        return f"{stamp}.{self._mac(form, stamp)}"

    def valid(self, form: str, token: str) -> bool:
        """Return True for an unexpired token this server made for this form."""
        stamp, _, mac = token.partition(".")
        if not stamp.isdigit() or not hmac.compare_digest(mac, self._mac(form, stamp)):
            return False
        return 0 <= self.clock() - int(stamp) <= CSRF_TTL

    def _mac(self, form: str, stamp: str) -> str:
        return hmac.new(self.key, f"{form}:{stamp}".encode(), hashlib.sha256).hexdigest()[:32]


def same_site(request: Request, site_url: str) -> bool:
    """Return False when the browser says a POST comes from another site."""
    if request.headers.get("sec-fetch-site", "") == "cross-site":
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None  # "null": a sandboxed or privacy-stripped cross-site frame
    ours = {_origin(site_url)}
    host = request.headers.get("host")
    if host:
        ours.add(f"{request.url.scheme}://{host}")
    return origin.rstrip("/") in ours


def _origin(url: str) -> str:
    p = urlsplit(url)
    return f"{p.scheme}://{p.netloc}"


async def read_body(request: Request, limit: int) -> bytes | None:
    """Return the request body, or None when it is larger than `limit` bytes."""
    size = 0
    chunks = []
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def read_form(request: Request) -> dict[str, list[str]] | None:
    """Return an urlencoded form body (None when too large)."""
    body = await read_body(request, MAX_FORM)
    if body is None:
        return None
    try:
        return parse_qs(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        return {}
