"""The local server behind `digest preview --serve`: the rendered preview and nothing else.

It never serves files from disk: a page open in the operator's browser (or any local
process) could otherwise read config.toml or the SQLite database with every reader's
address and token. It answers only to Host 127.0.0.1/localhost (DNS rebinding), and
the page reloads itself through server-sent events when the preview is re-rendered.

    GET /             the HTML part, with a small reload script
    GET /text         the plain-text part
    GET /__events     text/event-stream: the preview's version, again on each change
"""

from __future__ import annotations

import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

EVENTS = "/__events"
KEEPALIVE = 15.0  # seconds between comments on an idle event stream

_SCRIPT = """<script nonce="{nonce}">
(function () {{
  var seen = "{version}";
  var events = new EventSource("{events}");
  events.onmessage = function (e) {{ if (e.data !== seen) {{ location.reload(); }} }};
}})();
</script>"""


class PreviewServer:
    """Serve one preview (HTML and text) on 127.0.0.1 and tell browsers when it changes."""

    def __init__(self, port: int = 0) -> None:
        self._cond = threading.Condition()
        self._version = 0
        self._html = b""
        self._text = b""
        self._nonce = ""
        self._stopping = False
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        """Return the port listened on (the random free one when 0 was asked)."""
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        """Return the preview's address."""
        return f"http://127.0.0.1:{self.port}/"

    @property
    def version(self) -> int:
        """Return how many times a preview was published."""
        with self._cond:
            return self._version

    def publish(self, html: str, text: str) -> None:
        """Replace the preview; open pages reload."""
        with self._cond:
            self._version += 1
            self._nonce = secrets.token_urlsafe(16)
            script = _SCRIPT.format(nonce=self._nonce, version=self._version, events=EVENTS)
            at = html.lower().rfind("</body>")
            page = html[:at] + script + html[at:] if at >= 0 else html + script
            self._html = page.encode("utf-8")
            self._text = text.encode("utf-8")
            self._cond.notify_all()

    def start(self) -> PreviewServer:
        """Start answering in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering and end the event streams."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- what the handler reads ---------------------------------------------------------

    def page(self, path: str) -> tuple[bytes, str, str] | None:
        """Return (body, content type, nonce) for a path, or None."""
        with self._cond:
            if path in ("/", "/index.html"):
                return self._html, "text/html; charset=utf-8", self._nonce
            if path in ("/text", "/index.txt"):
                return self._text, "text/plain; charset=utf-8", ""
        return None

    def wait_change(self, seen: int, timeout: float) -> int | None:
        """Block until the version differs from `seen` (or timeout); None when stopping."""
        with self._cond:
            self._cond.wait_for(lambda: self._version != seen or self._stopping, timeout)
            return None if self._stopping else self._version


_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def _csp(nonce: str) -> str:
    # Remote images and inline styles, as a mail client shows them; the one script is ours.
    script = f"'nonce-{nonce}'" if nonce else "'none'"
    return (
        f"default-src 'none'; img-src https: http: data:; style-src 'unsafe-inline'; "
        f"script-src {script}; connect-src 'self'; form-action 'none'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )


def _handler(server: PreviewServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "digest-preview"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def _host_ok(self) -> bool:
            host = (self.headers.get("Host") or "").lower()
            return host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}")

        def _answer(self, code: int, body: bytes, kind: str, nonce: str = "") -> None:
            self.send_response(code)
            for name, value in _HEADERS.items():
                self.send_header(name, value)
            self.send_header("Content-Security-Policy", _csp(nonce))
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's hook name
            if not self._host_ok():
                self._answer(421, b"wrong host\n", "text/plain; charset=utf-8")
                return
            path = self.path.split("?", 1)[0]
            if path == EVENTS and self.command == "GET":
                self._events()
                return
            found = server.page(path)
            if found is None:
                self._answer(404, b"not found\n", "text/plain; charset=utf-8")
                return
            self._answer(200, *found)

        do_HEAD = do_GET  # noqa: N815

        def do_POST(self) -> None:  # noqa: N802
            self.close_connection = True
            self._answer(405, b"method not allowed\n", "text/plain; charset=utf-8")

        do_PUT = do_DELETE = do_POST  # noqa: N815

        def _events(self) -> None:
            self.close_connection = True
            self.send_response(200)
            for name, value in _HEADERS.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            seen = server.version
            try:
                self.wfile.write(f"retry: 1000\ndata: {seen}\n\n".encode())
                self.wfile.flush()
                while True:
                    now = server.wait_change(seen, KEEPALIVE)
                    if now is None:
                        return
                    if now == seen:
                        self.wfile.write(b": keep-alive\n\n")
                    else:
                        seen = now
                        self.wfile.write(f"data: {seen}\n\n".encode())
                    self.wfile.flush()
            except OSError:  # the browser went away
                return

    return Handler
