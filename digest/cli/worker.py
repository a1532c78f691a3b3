"""CLI command for scaling out the send: `digest worker` (PostgreSQL store)."""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from digest.cli.app import App, console, err_console, iso_date, on_signals
from digest.errors import DeliveryError

if TYPE_CHECKING:
    from digest.mail.report import SendReport
    from digest.store import StoredIssue


@click.command(name="worker")
@click.option(
    "--date",
    metavar="YYYY-MM-DD",
    callback=iso_date,
    help="Deliver this stored issue, not the open one.",
)
@click.option(
    "--follow", is_flag=True, help="Keep running: deliver each new issue as it is created."
)
@click.option(
    "--batch",
    type=click.IntRange(1, 10_000),
    default=100,
    show_default=True,
    help="Deliveries claimed at a time.",
)
@click.option(
    "--lease",
    "lease_seconds",
    type=click.FloatRange(1.0),
    default=120.0,
    show_default=True,
    help="Seconds before a dead worker's unsent claims go to the others.",
)
@click.pass_obj
def worker_cmd(app: App, date: str | None, follow: bool, batch: int, lease_seconds: float) -> None:
    """Deliver the open issue's pending mail alongside other workers (PostgreSQL store).

    Any number may run, on any machines sharing the database. Exit code as for
    `digest send` (with --follow: 0 once stopped by SIGTERM or Ctrl-C).
    """
    from digest.mail import workers
    from digest.mail.claims import Lease, new_worker_id

    lease = Lease(worker=new_worker_id(), batch=batch, seconds=lease_seconds)
    stop = threading.Event()

    def show(issue: StoredIssue, report: SendReport) -> None:
        console.print(
            escape(f"{issue.date}: {report}"),
            soft_wrap=True,
        )
        if report.error and follow:  # otherwise it ends the command below
            err_console.print(f"[bold red]error:[/] {escape(report.error)}", soft_wrap=True)

    # SIGTERM/SIGINT: messages in flight finish, claims are released.
    with on_signals(stop.set):
        report = workers.work(
            app.config, app.store, lease=lease, date=date, follow=follow, stop=stop, on_report=show
        )
    if report is None:
        if not follow:
            console.print("no open issue to deliver")
        return
    if report.error:
        raise DeliveryError(report.error)
    if not follow and report.exit_code:
        sys.exit(report.exit_code)
