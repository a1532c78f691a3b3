"""A real HTTP server on 127.0.0.1 for tests: routes map paths to canned or scripted responses."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Response:
    """A canned response; `delay` sleeps before answering, `chunk_delay` trickles the body."""

    body: bytes | str = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "text/html; charset=utf-8"
    delay: float = 0.0
    chunk_delay: float = 0.0
    chunk_size: int = 1


Handler = Callable[[BaseHTTPRequestHandler], Response]


class _Server(ThreadingHTTPServer):
    # socketserver's default backlog of 5 drops connections when 64 clients connect at
    # once (benchmarks do), and each dropped SYN costs a 1 s retransmit.
    request_queue_size = 256


class LocalHTTPServer:
    """Serve `routes` (path -> Response or callable) on 127.0.0.1 in a background thread."""

    def __init__(self) -> None:
        self.routes: dict[str, Response | Handler] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        server = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                server.requests.append((self.path, dict(self.headers.items())))
                route = server.routes.get(self.path) or server.routes.get(self.path.split("?")[0])
                if route is None:
                    resp = Response(b"not found", status=404, content_type="text/plain")
                elif callable(route):
                    resp = route(self)
                else:
                    resp = route
                if resp.delay:
                    time.sleep(resp.delay)
                body = resp.body.encode("utf-8") if isinstance(resp.body, str) else resp.body
                try:
                    self.send_response(resp.status)
                    self.send_header("Content-Type", resp.content_type)
                    if "Content-Length" not in resp.headers:
                        self.send_header("Content-Length", str(len(body)))
                    for k, v in resp.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    if resp.chunk_delay:
                        for i in range(0, len(body), resp.chunk_size):
                            self.wfile.write(body[i : i + resp.chunk_size])
                            self.wfile.flush()
                            time.sleep(resp.chunk_delay)
                    else:
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self._httpd = _Server(("127.0.0.1", 0), _H)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        """Return the server's base URL, e.g. http://127.0.0.1:PORT."""
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        """Return the absolute URL of `path` on this server."""
        return self.base + path

    def start(self) -> LocalHTTPServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
