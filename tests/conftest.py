from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.httpserver import LocalHTTPServer


@pytest.fixture
def http_server() -> Iterator[LocalHTTPServer]:
    """A real HTTP server on 127.0.0.1; add routes to `.routes`."""
    server = LocalHTTPServer().start()
    yield server
    server.stop()
