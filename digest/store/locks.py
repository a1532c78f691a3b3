"""Named locks in the database, so one `digest run` (and one `digest send`) works on a store.

A lock is a row in the `locks` table: who holds it (a random holder id, host and pid)
and when it last proved it was alive (`heartbeat`). Acquiring is atomic: an INSERT, or,
when a row exists but is stale, a compare-and-set UPDATE that only succeeds if the row
is still the one we judged stale. A lock is stale when its heartbeat is older than
`stale_after` seconds, or when its holder ran on this host and that pid is gone (a crash
is detected at once, without waiting for the heartbeat to age).

On PostgreSQL the row is only a record for `digest status`: who may run is decided
by a session advisory lock, held on a connection of its own for the daemon's life.
The server drops it the moment that connection ends (the process died, or its
machine vanished and TCP keepalives found out), so a standby (`digest run
--standby`) polling for it takes over within seconds, and two daemons on different
machines never both believe they lead.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from digest.errors import DigestError, LockHeldError, StoreError
from digest.store import Store
from digest.store.schema import advisory_key, locks

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

# Held by every send (`digest send`, the daemon's send job) so two never run at once.
SEND_LOCK = "digest-send"


@dataclass(frozen=True)
class LockInfo:
    """One row of the `locks` table."""

    name: str
    holder: str
    host: str
    pid: int
    acquired_at: datetime
    heartbeat: datetime


def _utcnow() -> datetime:
    return datetime.now(tz=UTC)


def pid_alive(pid: int) -> bool:
    """Return True when a process with this id exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def read_lock(store: Store, name: str) -> LockInfo | None:
    """Return the current holder of a lock, if any (stale or not)."""
    with store.db.begin() as conn:
        row = conn.execute(sa.select(locks).where(locks.c.name == name)).mappings().first()
    if row is None:
        return None
    return LockInfo(
        name=row["name"],
        holder=row["holder"],
        host=row["host"],
        pid=row["pid"],
        acquired_at=row["acquired_at"],
        heartbeat=row["heartbeat"],
    )


def stale_reason(info: LockInfo, *, now: datetime, stale_after: float, host: str) -> str | None:
    """Return why a lock is stale (holder dead or silent), or None if it looks alive."""
    if info.host == host and not pid_alive(info.pid):
        return f"pid {info.pid} on {info.host} is gone"
    age = (now - info.heartbeat).total_seconds()
    if age > stale_after:
        return f"no heartbeat for {age:.0f} s"
    return None


def describe(info: LockInfo, *, now: datetime) -> str:
    """Return 'pid 123 on host, heartbeat 4 s ago' for messages."""
    age = max((now - info.heartbeat).total_seconds(), 0.0)
    return f"pid {info.pid} on {info.host}, heartbeat {age:.0f} s ago"


def acquire(
    store: Store,
    name: str,
    *,
    holder: str,
    now: datetime,
    stale_after: float,
    host: str | None = None,
    pid: int | None = None,
) -> LockInfo:
    """Take the lock `name` for `holder`, taking over a stale one; raise LockHeldError if held."""
    host = host or socket.gethostname()
    pid = os.getpid() if pid is None else pid
    mine = LockInfo(name=name, holder=holder, host=host, pid=pid, acquired_at=now, heartbeat=now)
    values = {k: v for k, v in asdict(mine).items() if k != "name"}
    for _ in range(5):  # only loops when another process races us for a stale row
        try:
            with store.db.begin() as conn:
                conn.execute(locks.insert().values(name=name, **values))
            return mine
        except sa.exc.IntegrityError:
            pass
        current = read_lock(store, name)
        if current is None:
            continue  # released between our INSERT and our read
        reason = (
            "it is ours"
            if current.holder == holder
            else stale_reason(current, now=now, stale_after=stale_after, host=host)
        )
        if reason is None:
            raise LockHeldError(
                f"another `digest run` is already running on {store.db.engine.url.database or name}"
                " "
                f"({describe(current, now=now)}); stop it first (the lock of a crashed daemon "
                f"is taken over at once on its host, after {stale_after:.0f} s from others)"
            )
        with store.db.begin() as conn:
            res = conn.execute(
                locks.update()
                .where(
                    locks.c.name == name,
                    locks.c.holder == current.holder,
                    locks.c.heartbeat == current.heartbeat,
                )
                .values(**values)
            )
        if res.rowcount == 1:
            if current.holder != holder:
                log.warning("took over the stale %s lock: %s", name, reason)
            return mine
    raise LockHeldError(f"could not take the {name} lock: other processes keep racing for it")


def take(store: Store, name: str, *, holder: str, now: datetime) -> LockInfo:
    """Write the lock row as ours whatever it says (we hold the advisory lock)."""
    host, pid = socket.gethostname(), os.getpid()
    mine = LockInfo(name=name, holder=holder, host=host, pid=pid, acquired_at=now, heartbeat=now)
    values = {k: v for k, v in asdict(mine).items() if k != "name"}
    with store.db.begin() as conn:
        if conn.execute(locks.update().where(locks.c.name == name).values(**values)).rowcount:
            return mine
        conn.execute(locks.insert().values(name=name, **values))
    return mine


class AdvisoryLock:
    """A PostgreSQL session advisory lock on a dedicated connection."""

    # Keepalives on the server side of our connection: if our machine vanishes, the
    # server notices in about 25 s and frees the lock for a standby.
    KEEPALIVES = (
        "tcp_keepalives_idle = 10",
        "tcp_keepalives_interval = 5",
        "tcp_keepalives_count = 3",
    )

    def __init__(self, store: Store, name: str) -> None:
        self.store = store
        self.key = advisory_key(name)
        self._conn: sa.Connection | None = None

    def try_acquire(self) -> bool:
        """Take the lock if it is free; True when we hold it."""
        try:
            if self._conn is None:
                self._conn = self.store.db.engine.connect().execution_options(
                    isolation_level="AUTOCOMMIT"
                )
                for setting in self.KEEPALIVES:
                    self._conn.exec_driver_sql(f"SET {setting}")
            got = self._conn.execute(sa.select(sa.func.pg_try_advisory_lock(self.key))).scalar()
        except sa.exc.OperationalError as exc:
            self.close()
            raise StoreError(f"database error on {self.store.db.where}: {exc.orig}") from None
        return bool(got)

    def alive(self) -> bool:
        """Return True while our connection (and so the lock) is still there."""
        if self._conn is None:
            return False
        try:
            self._conn.execute(sa.select(1))
        except sa.exc.DBAPIError:
            return False
        return True

    def close(self) -> None:
        """Release the lock (closing the connection releases it too)."""
        if self._conn is None:
            return
        try:
            self._conn.execute(sa.select(sa.func.pg_advisory_unlock(self.key)))
        except sa.exc.DBAPIError:
            self._conn.invalidate()
        finally:
            self._conn.close()
            self._conn = None


def heartbeat(store: Store, name: str, holder: str, *, now: datetime) -> bool:
    """Refresh our heartbeat; False when the lock is no longer ours."""
    with store.db.begin() as conn:
        res = conn.execute(
            locks.update()
            .where(locks.c.name == name, locks.c.holder == holder)
            .values(heartbeat=now)
        )
    return res.rowcount == 1


def release(store: Store, name: str, holder: str) -> bool:
    """Drop the lock if we still hold it; return whether we did."""
    with store.db.begin() as conn:
        res = conn.execute(locks.delete().where(locks.c.name == name, locks.c.holder == holder))
    return res.rowcount == 1


class DaemonLock:
    """A lock held for a process's lifetime, kept fresh by a heartbeat thread.

    When the heartbeat finds the lock taken over, `lost` is set (and `on_lost` called)
    so the daemon can stop rather than run beside its successor.
    """

    def __init__(
        self,
        store: Store,
        name: str,
        *,
        stale_after: float = 60.0,
        heartbeat_every: float = 10.0,
        clock: Clock = _utcnow,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.name = name
        self.holder = uuid.uuid4().hex
        self.stale_after = stale_after
        self.heartbeat_every = heartbeat_every
        self.clock = clock
        self.on_lost = on_lost
        self.lost = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._advisory: AdvisoryLock | None = None

    def acquire(
        self, *, standby: bool = False, stop: threading.Event | None = None, poll: float = 2.0
    ) -> LockInfo | None:
        """Take the lock and start beating; None if `stop` was set while standing by.

        Raises LockHeldError when a live process has it, unless `standby` (PostgreSQL
        only): then wait, polling every `poll` seconds, until the holder is gone.
        """
        if self.store.shared:
            info = self._acquire_advisory(standby, stop or threading.Event(), poll)
            if info is None:
                return None
        elif standby:
            raise StoreError(
                "--standby needs a PostgreSQL store (a standby on another machine needs a "
                "shared database); with SQLite run one `digest run` under a service manager"
            )
        else:
            info = acquire(
                self.store,
                self.name,
                holder=self.holder,
                now=self.clock(),
                stale_after=self.stale_after,
            )
        self._thread = threading.Thread(
            target=self._beat, name=f"{self.name}-heartbeat", daemon=True
        )
        self._thread.start()
        return info

    def _acquire_advisory(
        self, standby: bool, stop: threading.Event, poll: float
    ) -> LockInfo | None:
        self._advisory = AdvisoryLock(self.store, self.name)
        waiting = False
        while not self._advisory.try_acquire():
            current = read_lock(self.store, self.name)
            leader = describe(current, now=self.clock()) if current else "starting up"
            if not standby:
                self._advisory.close()
                raise LockHeldError(
                    f"another `digest run` is already running on {self.store.db.where} "
                    f"({leader}); stop it first, or start this one with --standby to take "
                    "over when it stops"
                )
            if not waiting:
                log.info("standby: another `digest run` leads (%s); waiting to take over", leader)
                waiting = True
            if stop.wait(poll):
                self._advisory.close()
                return None
        if waiting:
            log.warning("the leading `digest run` is gone; taking over")
        return take(self.store, self.name, holder=self.holder, now=self.clock())

    def _beat(self) -> None:
        while not self._done.wait(self.heartbeat_every):
            if self._advisory is not None and not self._advisory.alive():
                log.error("lost the connection holding the %s lock; stopping", self.name)
                self.lost.set()
                if self.on_lost is not None:
                    self.on_lost()
                return
            try:
                ours = heartbeat(self.store, self.name, self.holder, now=self.clock())
            except DigestError as exc:  # a busy or vanished database: try again next beat
                log.warning("lock heartbeat failed: %s", exc)
                continue
            if not ours:
                log.error("the %s lock was taken over by another process; stopping", self.name)
                self.lost.set()
                if self.on_lost is not None:
                    self.on_lost()
                return

    def release(self) -> None:
        """Stop the heartbeat and drop the lock."""
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        if not self.lost.is_set():
            try:
                release(self.store, self.name, self.holder)
            except DigestError as exc:
                log.warning("could not release the %s lock: %s", self.name, exc)
        if self._advisory is not None:
            self._advisory.close()


@contextmanager
def hold(
    store: Store,
    name: str,
    *,
    on_wait: Callable[[LockInfo], None] | None = None,
    poll: float = 0.2,
    stale_after: float = 60.0,
    heartbeat_every: float = 10.0,
    stop: threading.Event | None = None,
) -> Iterator[DaemonLock]:
    """Hold the lock `name` for a block, first waiting while another live process has it.

    `on_wait` is called once, with the holder, when we have to wait. A holder that died
    on this host is taken over at once; one elsewhere after `stale_after` seconds.
    Setting `stop` while we wait gives up with LockHeldError.
    """
    lock = DaemonLock(store, name, stale_after=stale_after, heartbeat_every=heartbeat_every)
    waited = False
    while True:
        try:
            lock.acquire()
            break
        except LockHeldError:
            holder = read_lock(store, name)
            if holder is not None and not waited and on_wait is not None:
                on_wait(holder)
            waited = True
            if stop is not None and stop.wait(poll):
                raise LockHeldError(f"stopped while waiting for the {name} lock") from None
            if stop is None:
                time.sleep(poll)
    try:
        yield lock
    finally:
        lock.release()
