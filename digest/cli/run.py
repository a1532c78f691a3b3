"""CLI commands for the long-running side: `digest run` (the daemon) and `digest status`."""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from datetime import UTC, datetime

import click
from rich.markup import escape

from digest import daemon as schedule
from digest.cli.app import App, console, on_signals
from digest.config import Config
from digest.due import Group, local_time
from digest.due import groups as due_groups
from digest.store import SourceState, Store, StoredIssue
from digest.store.locks import LockInfo, describe, read_lock, stale_reason


def _now() -> datetime:
    return datetime.now(tz=UTC)


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


def gather_status(config: Config, store: Store, *, now: datetime, issues: int = 5) -> Status:
    """Collect the daemon's state, next run times, recent issues and failing sources."""
    lock = read_lock(store, schedule.RUN_LOCK)
    dead = None
    if lock is not None:
        dead = stale_reason(
            lock, now=now, stale_after=schedule.LOCK_STALE_AFTER, host=socket.gethostname()
        )
    times = schedule.next_run_times(store) if lock is not None and dead is None else {}
    next_send = times.get(schedule.SEND_JOB)
    if next_send is None:  # no daemon: when it would send once started
        next_send = schedule.send_trigger(config).get_next_fire_time(None, now)
    names = {s.name for s in config.sources}
    failing = tuple(
        s
        for s in store.source_states().values()
        if s.name in names and s.consecutive_failures >= config.collect.flag_after_failures
    )
    recent = store.list_issues(issues)
    return Status(
        now=now,
        daemon=lock if dead is None else None,
        dead_daemon=dead,
        next_collect=times.get(schedule.COLLECT_JOB),
        next_send=next_send,
        issues=tuple((i, store.delivery_counts(i.id)) for i in recent),
        failing=failing,
        active_subscribers=len(store.list_subscribers("active")),
        workers=store.live_leases(recent[0].id, now=now) if recent else {},
        groups=tuple(due_groups(config, store, now=now)),
    )


def _counts(counts: dict[str, int]) -> str:
    parts = [f"{k} {counts.get(k, 0)}" for k in ("sent", "failed", "pending")]
    parts += [
        f"{label} {counts[k]}"
        for k, label in (("sending", "uncertain"), ("skipped", "skipped"))
        if counts.get(k)
    ]
    return ", ".join(parts)


@click.command(name="status")
@click.pass_obj
def status_cmd(app: App) -> None:
    """Show the daemon, next collection and send, recent issues and failing sources."""
    config = app.config
    st = gather_status(config, app.store, now=_now())
    zone = config.site.timezone
    if st.daemon is not None:
        daemon = f"running ({describe(st.daemon, now=st.now)})"
    elif st.dead_daemon is not None:
        daemon = f"not running (a stopped daemon left its lock: {st.dead_daemon})"
    else:
        daemon = "not running (start it with `digest run`)"
    s = config.schedule
    days = "every day" if s.days == "*" else s.days
    lines = [f"daemon:         {daemon}"]
    if st.next_collect is not None:
        lines.append(
            f"next collect:   {schedule.local(config, st.next_collect)} {zone} "
            f"(every {s.collect_every_minutes:g} min)"
        )
    else:
        lines.append("next collect:   - (only while `digest run` runs)")
    when = schedule.local(config, st.next_send) if st.next_send else "-"
    lines.append(f"next send:      {when} {zone} ({days} at {', '.join(s.send_at)})")
    lines.append(f"subscribers:    {st.active_subscribers} active")
    if st.groups:
        lines.append("local-time sends (next per time zone and delivery time):")
        for g in st.groups:
            lines.append(
                f"  {local_time(g.next_send, g.timezone)} {g.timezone} "
                f"({schedule.local(config, g.next_send)} {zone}): "
                f"{g.readers} reader(s) waiting"
            )
    if st.workers:
        lines.append("sending now:")
        for worker, (held, until) in st.workers.items():
            lines.append(
                f"  {worker}: {held} delivery(ies) leased until "
                f"{schedule.local(config, until)[-5:]} {zone}"
            )
    lines.append("last issues:" if st.issues else "last issues:    none yet")
    for issue, counts in st.issues:
        created = schedule.local(config, issue.created_at)[-5:]
        lines.append(f"  {issue.date} {created}  {_counts(counts)}  {issue.subject}")
    lines.append("failing sources:" if st.failing else "failing sources: none")
    for src in st.failing:
        since = schedule.local(config, src.failing_since) if src.failing_since else "?"
        lines.append(
            f"  {src.name}: since {since}, {src.consecutive_failures} times in a row: "
            f"{src.last_error}"
        )
    for line in lines:
        console.print(escape(line), soft_wrap=True)


@click.command(name="run")
@click.option(
    "--standby",
    is_flag=True,
    help="PostgreSQL store: if a daemon already runs, wait and take over when it stops.",
)
@click.pass_obj
def run_cmd(app: App, standby: bool) -> None:
    """Run the daemon: collect all day, send at [schedule].send_at (SIGTERM stops it)."""
    # A daemon's log is its output: one line per event by default, -v adds detail.
    logging.getLogger("digest").setLevel(logging.DEBUG if app.verbose else logging.INFO)
    # The schedule module logs one line per source; the fetcher's own lines are detail.
    for name in ("digest.collect", "digest.collect.fetch"):
        logging.getLogger(name).setLevel(logging.NOTSET if app.verbose else logging.WARNING)
    logging.getLogger("apscheduler").setLevel(
        {0: logging.ERROR, 1: logging.WARNING}.get(app.verbose, logging.DEBUG)
    )
    config = app.config
    store = app.store
    config.require_smtp()
    fired = False

    def interrupt_once() -> None:
        # The first SIGTERM/SIGINT stops gracefully; a second must not cut short the
        # delivery being finished.
        nonlocal fired
        if not fired:
            fired = True
            raise KeyboardInterrupt

    with on_signals(interrupt_once):
        schedule.run_daemon(config, store, standby=standby)
