"""Fetch one document over HTTP (or from disk), within hard limits.

Every request is bounded: `[collect] timeout` covers DNS, connect, redirects and the whole
body (a server trickling bytes cannot hold us), bodies stop at `max_bytes`, redirects at
`max_redirects`, requests in flight at `concurrency`, and Retry-After waits must fit into
the run's `deadline`. Pages linked from feeds are only fetched from public addresses,
checked before each request and again at connect time (see `netguard`). A failure is a
FetchError with a one-line reason. `collect` runs many fetches at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import http
import ipaddress
import logging
import mimetypes
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import TracebackType
from urllib.parse import urljoin, urlsplit

import httpx

from digest.collect.netguard import (
    AddressRefused,
    Policy,
    Resolver,
    check_url_allowed,
    guard_client,
    policy,
    system_resolve,
)
from digest.config import CollectConfig
from digest.errors import FetchError

log = logging.getLogger(__name__)

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5"
)
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class FetchResult:
    """One fetched document (or a 304 answer)."""

    url: str
    status: int
    body: bytes
    content_type: str | None
    etag: str | None
    last_modified: str | None
    not_modified: bool
    truncated: bool
    final_url: str


class _RetryLater(Exception):
    def __init__(self, status: str, wait: float) -> None:
        super().__init__(status)
        self.status = status
        self.wait = wait


def secs(value: float) -> str:
    """Format seconds for a message: '1.5 s'."""
    return f"{value:g} s"


class Fetcher:
    """Fetch URLs with the limits of a CollectConfig; use as `async with Fetcher(cfg) as f:`."""

    def __init__(
        self,
        cfg: CollectConfig,
        client: httpx.AsyncClient | None = None,
        *,
        deadline: float | None = None,
        resolve: Resolver = system_resolve,
    ) -> None:
        self.cfg = cfg
        self._own_client = client is None
        self._resolve = resolve
        self._client = client or httpx.AsyncClient(
            headers={"User-Agent": cfg.user_agent}, follow_redirects=False
        )
        if client is None:  # a caller's own client keeps only the check before each request
            guard_client(self._client, resolve)
        self._semaphore = asyncio.Semaphore(cfg.concurrency)
        self._per_host: dict[str, asyncio.Semaphore] = {}
        # Retry-After waits must fit into what is left of the run.
        self._ends = time.monotonic() + (cfg.deadline if deadline is None else deadline)

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this Fetcher created it."""
        if self._own_client:
            await self._client.aclose()

    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        trusted_hosts: frozenset[str] = frozenset(),
        check_private: bool = False,
        accept: str = FEED_ACCEPT,
    ) -> FetchResult:
        """GET `url` within the configured limits; raise FetchError with a one-line reason."""
        retried = False
        while True:
            try:
                async with self._host_slot(url), self._semaphore:
                    return await self._fetch_once(
                        url,
                        etag=etag,
                        last_modified=last_modified,
                        trusted_hosts=trusted_hosts,
                        check_private=check_private,
                        accept=accept,
                    )
            except _RetryLater as later:
                left = self._ends - time.monotonic()
                if retried:
                    raise FetchError(f"{later.status} (again after waiting)") from None
                if later.wait > left:
                    raise FetchError(
                        f"{later.status} (server asks to wait {secs(later.wait)}, "
                        f"more than the {left:.0f} s left)"
                    ) from None
                retried = True
                log.info("%s: %s; retrying in %s", url, later.status, secs(later.wait))
                await asyncio.sleep(later.wait)

    def _host_slot(self, url: str) -> asyncio.Semaphore | contextlib.nullcontext[None]:
        """Return what bounds requests to `url`'s host: `per_host` of them at once.

        Politeness is for other people's servers: a host on this machine is not held to it.
        """
        host = (urlsplit(url).hostname or "").lower()
        if not host or _is_loopback(host):
            return contextlib.nullcontext()
        if host not in self._per_host:
            self._per_host[host] = asyncio.Semaphore(self.cfg.per_host)
        return self._per_host[host]

    async def _fetch_once(
        self,
        url: str,
        *,
        etag: str | None,
        last_modified: str | None,
        trusted_hosts: frozenset[str],
        check_private: bool,
        accept: str,
    ) -> FetchResult:
        headers = {"User-Agent": self.cfg.user_agent, "Accept": accept}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        try:
            async with asyncio.timeout(self.cfg.timeout):
                return await self._follow(
                    url,
                    headers,
                    etag=etag,
                    last_modified=last_modified,
                    trusted_hosts=trusted_hosts,
                    check_private=check_private,
                )
        except (TimeoutError, httpx.TimeoutException):
            raise FetchError(f"timed out after {secs(self.cfg.timeout)}") from None
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise FetchError(f"invalid URL: {exc}") from None
        except httpx.DecodingError:
            raise FetchError("the body could not be decoded (bad compression)") from None
        except httpx.HTTPError as exc:  # connect, TLS, protocol errors
            raise FetchError(_connect_reason(exc)) from None

    async def _follow(
        self,
        url: str,
        headers: dict[str, str],
        *,
        etag: str | None,
        last_modified: str | None,
        trusted_hosts: frozenset[str],
        check_private: bool,
    ) -> FetchResult:
        current = url
        for hop in range(self.cfg.max_redirects + 1):
            scheme = urlsplit(current).scheme.lower()
            if scheme not in ("http", "https"):
                what = "redirect to non-http URL" if hop else "not an http(s) URL:"
                raise FetchError(f"{what} {current[:200]}")
            if check_private:
                reason = await check_url_allowed(
                    current,
                    trusted_hosts=trusted_hosts,
                    allow_private=self.cfg.allow_private,
                    resolve=self._resolve,
                )
                if reason:
                    raise FetchError(
                        reason if not hop else f"redirect to {current[:200]}: {reason}"
                    )
            request = self._client.build_request(
                "GET", current, headers=headers, timeout=httpx.Timeout(self.cfg.timeout)
            )
            # Checked again at connect time, on the address actually connected to.
            rule = (
                Policy(frozenset(h.lower() for h in trusted_hosts), self.cfg.allow_private)
                if check_private
                else None
            )
            try:
                with policy(rule):
                    response = await self._client.send(request, stream=True, follow_redirects=False)
            except httpx.InvalidURL as exc:
                # httpx parses a redirect's Location even when not following it; the URL
                # we asked for was valid (build_request checked it), so this is theirs.
                raise FetchError(f"redirect to an invalid URL ({exc})") from None
            try:
                code = response.status_code
                if code in _REDIRECTS and response.headers.get("location"):
                    current = urljoin(str(response.url), response.headers["location"].strip())
                    continue
                status = f"HTTP {code} {response.reason_phrase or _phrase(code)}".strip()
                if code == 304:
                    return FetchResult(
                        url=url,
                        status=code,
                        body=b"",
                        content_type=None,
                        etag=response.headers.get("etag") or etag,
                        last_modified=response.headers.get("last-modified") or last_modified,
                        not_modified=True,
                        truncated=False,
                        final_url=str(response.url),
                    )
                if code in (429, 503):
                    wait = _retry_after(response.headers.get("retry-after"))
                    if wait is not None:
                        raise _RetryLater(status, wait)
                if not 200 <= code < 300:
                    raise FetchError(status)
                body, truncated = await self._read(response)
                return FetchResult(
                    url=url,
                    status=code,
                    body=body,
                    content_type=response.headers.get("content-type"),
                    etag=response.headers.get("etag"),
                    last_modified=response.headers.get("last-modified"),
                    not_modified=False,
                    truncated=truncated,
                    final_url=str(response.url),
                )
            finally:
                await response.aclose()
        raise FetchError(f"too many redirects (>{self.cfg.max_redirects})")

    async def _read(self, response: httpx.Response) -> tuple[bytes, bool]:
        """Read at most max_bytes of the (decompressed) body; say whether more was there."""
        limit = self.cfg.max_bytes
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            if size + len(chunk) > limit:
                chunks.append(chunk[: limit - size])
                return b"".join(chunks), True
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks), False


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _phrase(code: int) -> str:
    try:
        return http.HTTPStatus(code).phrase
    except ValueError:
        return ""


def _retry_after(value: str | None) -> float | None:
    """Return the wait a Retry-After header asks for, in seconds, or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(tz=UTC)).total_seconds())


def _connect_reason(exc: BaseException) -> str:
    """Return a short reason for a failed connection, looking through chained errors."""
    seen: BaseException | None = exc
    texts: list[str] = []
    while seen is not None:
        if isinstance(seen, AddressRefused):
            return str(seen)
        if isinstance(seen, socket.gaierror):
            return "DNS: name not found"
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"TLS: certificate not trusted ({seen.verify_message})"
        if isinstance(seen, OSError) and seen.errno == errno.ECONNREFUSED:
            return "connection refused"
        texts.append(str(seen))
        seen = seen.__cause__ or seen.__context__
    text = " ".join(texts)
    lowered = text.lower()
    if "connection refused" in lowered:
        return "connection refused"
    if any(
        s in lowered
        for s in ("name or service not known", "nodename nor servname", "no address associated")
    ) or ("name resolution" in lowered):
        return "DNS: name not found"
    if "certificate" in lowered:
        return f"TLS: {text[:200]}"
    return f"connection failed: {text[:200] or type(exc).__name__}"


def read_local(path: str, *, max_bytes: int = CollectConfig.max_bytes) -> FetchResult:
    """Read a local file as if fetched: at most max_bytes, truncated=True if there was more."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise FetchError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise FetchError(f"{path} is a folder, not a file") from None
    except OSError as exc:
        raise FetchError(f"cannot read {path}: {exc.strerror or exc}") from None
    return FetchResult(
        url=path,
        status=200,
        body=data[:max_bytes],
        content_type=mimetypes.guess_type(p.name)[0],
        etag=None,
        last_modified=None,
        not_modified=False,
        truncated=len(data) > max_bytes,
        final_url=p.resolve().as_uri(),
    )
