"""CLI commands for the long-running side: `digest run` (the daemon) and `digest status`."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from digest.cli.app import App, console, on_signals

if TYPE_CHECKING:
    from digest.schedule.status import Status


def _now() -> datetime:
    return datetime.now(tz=UTC)


def _counts(counts: dict[str, int]) -> str:
    parts = [f"{k} {counts.get(k, 0)}" for k in ("sent", "failed", "pending")]
    parts += [
        f"{label} {counts[k]}"
        for k, label in (("sending", "uncertain"), ("skipped", "skipped"))
        if counts.get(k)
    ]
    return ", ".join(parts)


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


def status_json(st: Status) -> dict[str, object]:
    """Return `digest status` as JSON-ready data."""
    return {
        "now": st.now.isoformat(),
        "daemon": (
            {"running": True, "host": st.daemon.host, "pid": st.daemon.pid}
            if st.daemon is not None
            else {"running": False, "stale_lock": st.dead_daemon}
        ),
        "next_collect": _iso(st.next_collect),
        "next_send": _iso(st.next_send),
        "active_subscribers": st.active_subscribers,
        "subscribers": dict(st.subscribers),
        "sending_now": {
            worker: {"deliveries": held, "leased_until": until.isoformat()}
            for worker, (held, until) in st.workers.items()
        },
        "issues": [
            {
                "date": issue.date,
                "created_at": issue.created_at.isoformat(),
                "subject": issue.subject,
                "deliveries": dict(counts),
            }
            for issue, counts in st.issues
        ],
        "failing_sources": [
            {
                "name": src.name,
                "since": _iso(src.failing_since),
                "failures_in_a_row": src.consecutive_failures,
                "last_error": src.last_error,
            }
            for src in st.failing
        ],
    }


@click.command(name="status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def status_cmd(app: App, as_json: bool) -> None:
    """Show the daemon, next collection and send, recent issues and failing sources."""
    from digest.schedule import daemon, status
    from digest.store.locks import describe

    config = app.config
    st = status.gather_status(config, app.store, now=_now())
    if as_json:
        click.echo(json.dumps(status_json(st), ensure_ascii=False, indent=2))
        return
    zone = config.site.timezone
    if st.daemon is not None:
        state = f"running ({describe(st.daemon, now=st.now)})"
    elif st.dead_daemon is not None:
        state = f"not running (a stopped daemon left its lock: {st.dead_daemon})"
    else:
        state = "not running (start it with `digest run`)"
    s = config.schedule
    days = "every day" if s.days == "*" else s.days
    lines = [f"daemon:         {state}"]
    if st.next_collect is not None:
        lines.append(
            f"next collect:   {daemon.local(config, st.next_collect)} {zone} "
            f"(every {s.collect_every_minutes:g} min)"
        )
    else:
        lines.append("next collect:   - (only while `digest run` runs)")
    when = daemon.local(config, st.next_send) if st.next_send else "-"
    lines.append(f"next send:      {when} {zone} ({days} at {', '.join(s.send_at)})")
    shown = {"active": st.active_subscribers, **st.subscribers}
    lines.append(
        "subscribers:    "
        + ", ".join(f"{n} {status}" for status, n in shown.items() if n or status == "active")
    )
    if st.groups:
        from digest.schedule.due import local_time

        lines.append("local-time sends (next per time zone and delivery time):")
        for g in st.groups:
            lines.append(
                f"  {local_time(g.next_send, g.timezone)} {g.timezone} "
                f"({daemon.local(config, g.next_send)} {zone}): "
                f"{g.readers} reader(s) waiting"
            )
    if st.workers:
        lines.append("sending now:")
        for worker, (held, until) in st.workers.items():
            lines.append(
                f"  {worker}: {held} delivery(ies) leased until "
                f"{daemon.local(config, until)[-5:]} {zone}"
            )
    lines.append("last issues:" if st.issues else "last issues:    none yet")
    for issue, counts in st.issues:
        created = daemon.local(config, issue.created_at)[-5:]
        lines.append(f"  {issue.date} {created}  {_counts(counts)}  {issue.subject}")
    lines.append("failing sources:" if st.failing else "failing sources: none")
    for src in st.failing:
        since = daemon.local(config, src.failing_since) if src.failing_since else "?"
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
    from digest.schedule import daemon

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
        daemon.run_daemon(config, store, standby=standby)
