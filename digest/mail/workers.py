"""Send workers: many processes, on many machines, draining one issue's deliveries.

Only on a shared (PostgreSQL) store: each worker claims leased batches from the
ledger (see digest.store.ledger), so they split the work without talking to each other
and a killed one's unsent claims are taken over when its lease runs out.

    work              `digest worker`: drain the open issue once, or keep following
                      new issues (`follow`) until stopped
    send_with_workers `digest send --workers N`: this process plus N local workers
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from digest.config import Config
from digest.errors import DigestError, StoreError
from digest.mail.claims import Lease
from digest.mail.deliver import open_issue, send_issue
from digest.mail.report import SendProgress, SendReport
from digest.store import Store, StoredIssue

log = logging.getLogger(__name__)

IDLE_POLL = 10.0  # seconds between looks for new work when following


def _utcnow() -> datetime:
    return datetime.now(tz=UTC)


def require_shared(store: Store, what: str) -> None:
    """Raise StoreError unless the store is one several processes can share."""
    if not store.shared:
        raise StoreError(
            f"{what} needs a PostgreSQL store ([store].url = "
            '"postgresql+psycopg://user@host/db"); on SQLite `digest send` alone '
            "delivers (raise [smtp].connections to send faster)"
        )


def work(
    config: Config,
    store: Store,
    *,
    lease: Lease,
    date: str | None = None,
    follow: bool = False,
    stop: threading.Event | None = None,
    idle: float = IDLE_POLL,
    on_report: Callable[[StoredIssue, SendReport], None] | None = None,
) -> SendReport | None:
    """Deliver the open issue's (or `date`'s) pending mail alongside other workers.

    Returns the last run's report (None when there was nothing to deliver). With
    `follow`, keeps looking for pending deliveries every `idle` seconds until `stop`.
    """
    require_shared(store, "`digest worker`")
    config.require_smtp()
    stop = stop or threading.Event()
    last: SendReport | None = None
    while not stop.is_set():
        now = _utcnow()
        issue = store.issue_for_date(date) if date else open_issue(store, now=now)
        if date and issue is None:
            raise DigestError(f"no issue stored for {date}; see `digest status`")
        counts = store.ledger.delivery_counts(issue.id) if issue else {}
        # An issue with no ledger yet is one whose creator has not queued it: do it.
        if issue is not None and (counts.get("pending") or not counts or not follow):
            last = send_issue(store, issue, config, now=now, stop=stop, lease=lease)
            if on_report is not None:
                on_report(issue, last)
        if not follow:
            break
        stop.wait(idle)
    return last


def spawn_workers(config: Config, date: str, n: int) -> list[subprocess.Popen[bytes]]:
    """Start `n` local `digest worker --date DATE` processes (errors go to our stderr)."""
    cmd = [sys.executable, "-m", "digest", "--config", str(config.path), "worker", "--date", date]
    return [subprocess.Popen(cmd, stdout=subprocess.DEVNULL) for _ in range(n)]


def send_with_workers(
    store: Store,
    issue: StoredIssue,
    config: Config,
    *,
    now: datetime,
    workers: int,
    resend_uncertain: bool = False,
    progress: SendProgress | None = None,
) -> SendReport:
    """Deliver an issue from this process and `workers` local worker processes together."""
    require_shared(store, "`digest send --workers`")
    before = store.ledger.delivery_counts(issue.id).get("sent", 0)
    if resend_uncertain:  # before the workers start, so none of them sees a stale state
        n = store.ledger.requeue_uncertain(issue.id, now=now)
        log.warning("requeued %d uncertain deliveries", n)
    store.ledger.ensure_deliveries(issue.id, now=now)
    procs = spawn_workers(config, issue.date, workers)
    mine: SendReport | None = None
    try:
        mine = send_issue(store, issue, config, now=now, progress=progress)
    finally:
        if mine is None or mine.interrupted:  # stopped or crashed: stop the helpers too
            for proc in procs:
                if proc.poll() is None:
                    proc.terminate()  # SIGTERM: they finish the message in flight
        for proc in procs:
            proc.wait()
    failed = [p.returncode for p in procs if p.returncode not in (0, 3, 4)]
    counts = store.ledger.delivery_counts(issue.id)
    return SendReport.from_counts(
        issue.id,
        counts,
        sent_now=counts.get("sent", 0) - before,
        error=mine.error
        or (f"{len(failed)} worker(s) failed; see their errors above" if failed else None),
        interrupted=mine.interrupted,
    )
