from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.store import Store
from tests.chromium import INSTALL_HINT, Chromium, find_chromium
from tests.httpserver import LocalHTTPServer
from tests.pgserver import LocalPostgres


@pytest.fixture(scope="session", autouse=True)
def _own_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Derived data (the unpacked language model) goes to the session's folder, not ~."""
    from digest.text.langmodel import CACHE_ENV

    mp = pytest.MonkeyPatch()
    mp.setenv(CACHE_ENV, str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()


@pytest.fixture
def http_server() -> Iterator[LocalHTTPServer]:
    """A real HTTP server on 127.0.0.1; add routes to `.routes`."""
    server = LocalHTTPServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    """A real PostgreSQL server for the whole session (started on first use)."""
    server = LocalPostgres().start()
    yield server
    server.stop()


@pytest.fixture
def pg_url(postgres: LocalPostgres) -> str:
    """The SQLAlchemy URL of a fresh, empty PostgreSQL database."""
    return postgres.new_database()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh, migrated SQLite store in the test's own folder."""
    s = Store.open(f"sqlite:///{tmp_path / 'digest.db'}")
    yield s
    s.close()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Chromium]:
    """One headless Chromium for the whole session (started on first use); never skipped."""
    binary = find_chromium()
    if binary is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    browser = Chromium(binary).start()
    yield browser
    browser.stop()
