"""What `digest status` shows: the daemon, next runs, recent issues, failing sources.

Gathered without writing anything, so it is safe beside a running daemon.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from datetime import datetime

from digest.config import Config
from digest.schedule.daemon import (
    COLLECT_JOB,
    LOCK_STALE_AFTER,
    RUN_LOCK,
    SEND_JOB,
    next_run_times,
    send_trigger,
)
from digest.schedule.due import Group
from digest.schedule.due import groups as due_groups
from digest.store import SourceState, Store, StoredIssue
from digest.store.locks import LockInfo, read_lock, stale_reason


@dataclass(frozen=True)
class Status:
    """What `digest status` shows, gathered without writing anything."""

    now: datetime
    daemon: LockInfo | None  # the lock of a live `digest run`
    dead_daemon: str | None  # why a leftover lock is stale
    next_collect: datetime | None  # None: no daemon scheduled one
    next_send: datetime | None
    issues: tuple[tuple[StoredIssue, dict[str, int]], ...]
    failing: tuple[SourceState, ...]
    active_subscribers: int
    workers: dict[str, tuple[int, datetime]]  # live leases on the newest issue
    groups: tuple[Group, ...] = ()  # readers by time zone and delivery time, soonest first
    subscribers: dict[str, int] = field(default_factory=dict)  # how many in each status


def gather_status(config: Config, store: Store, *, now: datetime, issues: int = 5) -> Status:
    """Collect the daemon's state, next run times, recent issues and failing sources."""
    lock = read_lock(store, RUN_LOCK)
    dead = None
    if lock is not None:
        dead = stale_reason(lock, now=now, stale_after=LOCK_STALE_AFTER, host=socket.gethostname())
    times = next_run_times(store) if lock is not None and dead is None else {}
    next_send = times.get(SEND_JOB)
    if next_send is None:  # no daemon: when it would send once started
        next_send = send_trigger(config).get_next_fire_time(None, now)
    names = {s.name for s in config.sources}
    failing = tuple(
        s
        for s in store.source_states().values()
        if s.name in names and s.consecutive_failures >= config.collect.flag_after_failures
    )
    recent = store.list_issues(issues)
    counts = store.subscriber_counts()
    return Status(
        now=now,
        daemon=lock if dead is None else None,
        dead_daemon=dead,
        next_collect=times.get(COLLECT_JOB),
        next_send=next_send,
        issues=tuple((i, store.ledger.delivery_counts(i.id)) for i in recent),
        failing=failing,
        active_subscribers=counts.get("active", 0),
        workers=store.ledger.live_leases(recent[0].id, now=now) if recent else {},
        groups=tuple(due_groups(config, store, now=now)),
        subscribers=counts,
    )
