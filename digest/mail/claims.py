"""Where a send takes its next subscriber from: a fixed list, or leased ledger batches.

One `digest send` on its own store lists the pending subscribers once (`FixedQueue`).
Senders sharing a PostgreSQL store instead lease batches of pending deliveries
(`LeasedQueue`: `SELECT … FOR UPDATE SKIP LOCKED`, renewed while the process lives,
released on exit), so any number of them drain one issue without overlapping.
Either way the per-message claim in the ledger is what makes a delivery happen once.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from digest.errors import DigestError
from digest.models import Subscriber
from digest.store import Store

log = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(tz=UTC)


def new_worker_id() -> str:
    """Return a name for this sending process that is unique across machines."""
    return f"{socket.gethostname()[:70]}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(frozen=True)
class Lease:
    """How one process claims deliveries on a shared store.

    Short batches spread the work evenly and strand little with a killed worker.
    The lease is renewed every third of its length while the process lives, so its
    length is how long a dead worker's unsent claims wait for someone else.
    """

    worker: str
    batch: int = 100
    seconds: float = 120.0
    poll: float = 2.0  # longest wait between looks at other workers' leases
    clock: Callable[[], datetime] = _utcnow  # real time: leases are compared across processes


class FixedQueue:
    """The subscribers to serve, listed once at the start (one sender per store)."""

    def __init__(self, items: list[Subscriber]) -> None:
        self.items: deque[Subscriber] = deque(items)

    def take(self, stop: threading.Event) -> Subscriber | None:
        return self.items.popleft() if self.items else None

    def give_back(self, sub: Subscriber) -> None:
        self.items.appendleft(sub)

    def close(self) -> None:
        pass


class LeasedQueue:
    """Subscribers claimed from the ledger a batch at a time, leases kept fresh meanwhile."""

    def __init__(self, store: Store, issue_id: int, lease: Lease) -> None:
        self.store = store
        self.issue_id = issue_id
        self.lease = lease
        self.items: deque[Subscriber] = deque()
        self._done = threading.Event()
        self._renewer = threading.Thread(target=self._renew, name="digest-lease", daemon=True)
        self._renewer.start()

    def _renew(self) -> None:
        lease = self.lease
        while not self._done.wait(lease.seconds / 3):
            try:
                self.store.ledger.renew_claims(
                    self.issue_id, worker=lease.worker, lease=lease.seconds, now=lease.clock()
                )
            except DigestError as exc:  # a database blip: the next beat may work
                log.warning("lease renewal failed: %s", exc)

    def take(self, stop: threading.Event) -> Subscriber | None:
        lease = self.lease
        while not self.items and not stop.is_set():
            now = lease.clock()
            batch = self.store.ledger.claim_batch(
                self.issue_id, worker=lease.worker, size=lease.batch, lease=lease.seconds, now=now
            )
            if batch:
                self.items.extend(batch)
                break
            # Nothing free: done, unless another worker's claims may yet come free.
            until = self.store.ledger.next_lease_expiry(self.issue_id, worker=lease.worker, now=now)
            if until is None:
                return None
            wait = min(max((until - now).total_seconds(), 0.0) + 0.05, lease.poll)
            log.debug("waiting %.1f s for other workers' leases", wait)
            stop.wait(wait)
        return self.items.popleft() if self.items else None

    def give_back(self, sub: Subscriber) -> None:
        self.items.appendleft(sub)

    def close(self) -> None:
        """Stop renewing and hand back what this process claimed but did not finish."""
        self._done.set()
        self._renewer.join()
        try:
            n = self.store.ledger.release_claims(self.issue_id, worker=self.lease.worker)
        except DigestError as exc:  # the leases run out by themselves
            log.warning("could not release claims: %s", exc)
            return
        if n:
            log.info("released %d unfinished claim(s) to other workers", n)
