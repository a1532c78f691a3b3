"""A throwaway PostgreSQL cluster for tests: initdb in a temp folder, pg_ctl start, rm.

The server binaries come from PATH or Debian's /usr/lib/postgresql/*/bin (package
`postgresql`; `.ci/run` installs it). Missing binaries fail the tests rather than
skip them: CI must exercise PostgreSQL. PostgreSQL refuses to run as root, so as
root the cluster belongs to the `postgres` user and its commands run through
`runuser`. The server listens on 127.0.0.1 on a free port, without fsync (the data
is thrown away).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

from tests.smtpserver import free_port


def find_binary(name: str) -> str:
    """Return the path of a PostgreSQL server program, or raise with how to install it."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if candidates:
        return candidates[0]
    raise RuntimeError(
        f"PostgreSQL server program {name!r} not found on PATH or in /usr/lib/postgresql/*/bin; "
        "install it (Debian: apt-get install postgresql) — these tests never skip"
    )


class LocalPostgres:
    """One PostgreSQL server on 127.0.0.1; `new_database()` gives each test a clean one."""

    def __init__(self) -> None:
        self.initdb = find_binary("initdb")
        self.pg_ctl = find_binary("pg_ctl")
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="digest-pg-"))
        self.data = self.root / "data"
        self._user = "postgres" if os.getuid() == 0 else None
        self._count = 0

    def _run(self, *args: str) -> None:
        cmd = [*args]
        if self._user is not None:
            cmd = ["runuser", "-u", self._user, "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")

    def start(self) -> LocalPostgres:
        """Create the cluster and start the server; wait until it accepts connections."""
        if self._user is not None:
            shutil.chown(self.root, user=self._user)
        self._run(
            self.initdb,
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.data} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        self._run(
            self.pg_ctl,
            "-D",
            str(self.data),
            "-l",
            str(self.root / "log"),
            "-o",
            options,
            "-w",
            "start",
        )
        return self

    def stop(self) -> None:
        """Stop the server at once and delete the cluster."""
        try:
            self._run(self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        """Return the SQLAlchemy URL of a database on this server."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        self._count += 1
        name = f"digest_test_{self._count}"
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)
