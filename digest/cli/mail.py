"""CLI commands for sending: `digest send` and `digest issue discard` (readers: `subscribers`)."""

from __future__ import annotations

import json
import signal
import sys
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from digest.cli.app import App, console, err_console, iso_date, on_signals
from digest.errors import DeliveryError, DigestError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from digest.mail.report import SendReport
    from digest.models import Delivery
    from digest.store import StoredIssue
    from digest.store.locks import LockInfo


def _now() -> datetime:
    return datetime.now(tz=UTC)


@click.group(name="issue")
def issue_group() -> None:
    """Manage stored issues."""


@issue_group.command(name="discard")
@click.option("--date", "date", required=True, metavar="YYYY-MM-DD", help="The issue's date.")
@click.pass_obj
def issue_discard(app: App, date: str) -> None:
    """Remove a stored issue nothing was delivered from; its articles are free again.

    The next `digest send` or scheduled send composes the day's issue afresh. An issue
    with deliveries is frozen (everyone gets the same issue) and is never removed.
    """
    try:
        datetime.strptime(date, "%Y-%m-%d")  # noqa: DTZ007 (a calendar date, not a time)
    except ValueError:
        raise DigestError(f"--date {date!r}: write the date as YYYY-MM-DD") from None
    gone = app.store.discard_issue(date)
    if gone is None:
        raise DigestError(f"no issue stored for {date}; see `digest status`")
    console.print(
        escape(f"{date}: discarded {gone.subject!r}; {len(gone.article_ids)} article(s) freed"),
        soft_wrap=True,
    )


def _interrupt() -> None:
    """Let SIGTERM stop a send gracefully (messages in flight finish) like Ctrl-C."""
    raise KeyboardInterrupt


def _summary(issue: StoredIssue, report: SendReport) -> str:
    return f"{issue.date}: {report}"


def uncertain_text(rows: list[Delivery]) -> str:
    """Explain deliveries left "sending": why the server may or may not have them, what to do."""
    lost = sum(1 for d in rows if (d.last_error or "").startswith("uncertain:"))
    stopped = len(rows) - lost
    why = []
    if lost:
        why.append(
            f"{lost} lost the connection (or the server's answer) after the whole message "
            "had been sent"
        )
    if stopped:
        why.append(
            f"{stopped} were being sent by a process that stopped before the server answered"
        )
    return (
        f"{len(rows)} delivery(ies) may or may not have been accepted: {'; '.join(why)}. "
        "They are not resent. Check the mail server's log, then "
        "`digest send --resend-uncertain` if they never arrived."
    )


def send_progress(where: Console) -> Progress:
    """Return the send's progress bar: done/total and the time left (terminals only)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("sending"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=where,
        transient=True,
        disable=not where.is_terminal,
    )


def _dry_run(app: App, issue: StoredIssue | None, date: str) -> None:
    if issue is None:
        console.print(
            escape(f"{date}: no issue stored yet; `digest send` would collect and create it")
        )
    else:
        console.print(escape(f"{issue.date}: {issue.subject}"), soft_wrap=True)
    from digest.mail.deliver import plan

    counts: Counter[str] = Counter()
    for item in plan(app.store, issue):
        counts[item.action] += 1
        click.echo(f"{item.subscriber.email}\t{item.action}")
    console.print(", ".join(f"{action} {n}" for action, n in sorted(counts.items())) or "no one")


@click.command()
@click.option(
    "--to",
    "to",
    metavar="ADDRESS",
    multiple=True,
    help="Send a test copy to ADDRESS (repeat for more); the ledger is untouched.",
)
@click.option("--dry-run", is_flag=True, help="Show who would receive what; send nothing.")
@click.option(
    "--date",
    metavar="YYYY-MM-DD",
    callback=iso_date,
    help="Finish an earlier stored issue instead of today's.",
)
@click.option(
    "--resend-uncertain",
    is_flag=True,
    help="Also resend deliveries a crash left uncertain (their readers may get two copies).",
)
@click.option(
    "--workers",
    "n_workers",
    type=click.IntRange(0, 64),
    default=0,
    help="PostgreSQL store: also start N local `digest worker` processes to send with.",
)
@click.option(
    "--due",
    is_flag=True,
    help="Send only to readers whose own local delivery time has come (as `digest run` does).",
)
@click.option(
    "--now",
    "now_text",
    metavar="ISO-8601",
    help="With --due: act as if it were this moment (e.g. 2026-11-25T12:00:00Z).",
)
@click.option("--json", "as_json", is_flag=True, help="With --due --dry-run: print JSON.")
@click.pass_obj
def send(
    app: App,
    to: tuple[str, ...],
    dry_run: bool,
    date: str | None,
    resend_uncertain: bool,
    n_workers: int,
    due: bool,
    now_text: str | None,
    as_json: bool,
) -> None:
    """Create today's issue if needed and mail it to every active subscriber once.

    `--to` sends one test copy of today's issue as `digest preview` would show it
    (composed afresh until real deliveries start) and stores nothing.

    Exit code: 0 all done; 1 a problem stopped the send (e.g. login refused);
    3 deliveries remain to retry (run again later); 4 some deliveries are
    uncertain after a crash (check the mail server's log, then use
    --resend-uncertain if they never arrived).

    A second `digest send` started while one runs waits for it, then delivers
    whatever is left. A missing [smtp] table or a store that cannot be written
    stops the command before anything is collected or sent.
    """
    from digest.mail import workers
    from digest.store import locks

    config = app.config
    store = app.store
    if (now_text or as_json) and not due:
        raise DigestError("--now and --json go with --due; e.g. `digest send --due --dry-run`")
    if due and (to or date or n_workers):
        raise DigestError("--due decides the issue and readers itself; drop --to/--date/--workers")
    if as_json and not dry_run:
        raise DigestError("--json lists a plan: use it with --dry-run")
    now = _parse_now(now_text) if now_text else _now()
    if due and dry_run:
        _due_dry_run(app, now, as_json=as_json)
        return
    if dry_run:
        _send(app, _now(), date, dry_run=True, to=to, resend_uncertain=resend_uncertain)
        return
    # Before collecting anything or touching the network: a mistake here must cost nothing.
    if n_workers:
        workers.require_shared(store, "`digest send --workers`")
    config.require_smtp()
    store.check_writable()

    def waiting(holder: LockInfo) -> None:
        err_console.print(
            escape(
                f"another `digest send` is running ({locks.describe(holder, now=_now())}); "
                "waiting for it to finish, then delivering whatever it left"
            ),
            soft_wrap=True,
        )

    # Two sends at once would both collect and compose; the ledger alone already keeps
    # them from sending anything twice, the lock makes the second one simply wait.
    with locks.hold(store, locks.SEND_LOCK, on_wait=waiting):
        if due:
            _send_due(app, now, resend_uncertain=resend_uncertain)
            return
        _send(
            app,
            _now(),
            date,
            dry_run=False,
            to=to,
            resend_uncertain=resend_uncertain,
            n_workers=n_workers,
        )


def _parse_now(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise DigestError(
            f"--now {text!r} is not an ISO-8601 moment; write e.g. 2026-11-25T07:00:00+01:00"
        ) from None
    if when.tzinfo is None:
        raise DigestError(f"--now {text!r} has no UTC offset; add Z or +01:00")
    return when


def _due_dry_run(app: App, now: datetime, *, as_json: bool) -> None:
    from digest.schedule.due import plan_due

    plan = plan_due(app.config, app.store, now=now)
    if as_json:
        click.echo(json.dumps([d.as_json() for d in plan], ensure_ascii=False, indent=1))
        return
    for d in plan:
        click.echo(f"{d.subscriber.email}\t{d.issue or '-'}\t{d.action}\t{d.reason}")
    sends = sum(d.action == "send" for d in plan)
    console.print(f"send {sends}, skip {len(plan) - sends}")


def _send_due(app: App, now: datetime, *, resend_uncertain: bool) -> None:
    from digest.schedule.due import send_due

    config, store = app.config, app.store
    if resend_uncertain:
        latest = store.last_issue()
        if latest is not None:
            store.ledger.requeue_uncertain(latest.id, now=now)
    with on_signals(_interrupt, (signal.SIGTERM,)):
        reports = send_due(config, store, now=now)
    if not reports:
        console.print("nobody is due now")
    code = 0
    for issue, report in reports:
        console.print(escape(_summary(issue, report)), soft_wrap=True)
        if report.error:
            raise DeliveryError(report.error)
        code = max(code, report.exit_code)
    if code:
        sys.exit(code)


def _send_test_copy(app: App, now: datetime, to: tuple[str, ...]) -> None:
    """Send test copies of today's issue, composed afresh until deliveries start; store nothing."""
    from digest.cli.pipeline import build_preview
    from digest.mail import subscribers
    from digest.mail.deliver import send_test

    addresses = [subscribers.normalize_address(a) for a in to]  # all checked first
    shown = build_preview(app, now, collect=True)
    for address in dict.fromkeys(addresses):
        message_id = send_test(app.config, shown.rendered, address, now=now)
        console.print(escape(f"test copy of {shown.rendered.date} sent to {address} {message_id}"))


def _send(
    app: App,
    now: datetime,
    date: str | None,
    *,
    dry_run: bool,
    to: tuple[str, ...],
    resend_uncertain: bool,
    n_workers: int = 0,
) -> None:
    from digest import pipeline
    from digest.mail import subscribers, workers
    from digest.mail.deliver import send_issue, send_test

    config = app.config
    store = app.store
    day = date or pipeline.today(config, now)
    issue: StoredIssue | None
    if to and not date and not dry_run:
        _send_test_copy(app, now, to)
        return
    if date or dry_run:
        issue = store.issue_for_date(day)
        if issue is None and not dry_run:
            raise DigestError(
                f"no issue stored for {day}; `digest send` without --date creates today's"
            )
    else:
        issue = pipeline.ensure_issue(config, store, now=now)
    if dry_run:
        _dry_run(app, issue, day)
        return
    assert issue is not None
    if to:
        addresses = [subscribers.normalize_address(a) for a in to]  # all checked first
        for address in dict.fromkeys(addresses):
            message_id = send_test(config, issue, address, now=now)
            console.print(escape(f"test copy of {issue.date} sent to {address} {message_id}"))
        return
    store.ledger.ensure_deliveries(issue.id, now=now)  # (send_issue does too) to know the total
    counts = store.ledger.delivery_counts(issue.id)
    total = counts.get("pending", 0) + (counts.get("sending", 0) if resend_uncertain else 0)
    with (
        send_progress(err_console) as bar,
        on_signals(_interrupt, (signal.SIGTERM,)),
    ):
        task = bar.add_task("send", total=total)
        if n_workers:
            report = workers.send_with_workers(
                store,
                issue,
                config,
                now=now,
                workers=n_workers,
                resend_uncertain=resend_uncertain,
                progress=lambda _address, _outcome: bar.advance(task),
            )
        else:
            report = send_issue(
                store,
                issue,
                config,
                now=now,
                resend_uncertain=resend_uncertain,
                progress=lambda _address, _outcome: bar.advance(task),
            )
    console.print(escape(_summary(issue, report)), soft_wrap=True)
    for line in report.gave_up:
        err_console.print(
            escape(
                f"gave up on {line} (refused for {config.require_smtp().give_up_hours:g} h, "
                "[smtp].give_up_hours); it counts as failed for this issue"
            ),
            soft_wrap=True,
        )
    if report.uncertain:
        rows = store.ledger.list_deliveries(issue.id, "sending")
        err_console.print(escape(uncertain_text(rows)), soft_wrap=True)
    if report.interrupted:
        err_console.print(
            f"interrupted: {report.to_retry} delivery(ies) not sent yet; run `digest send` "
            "again to deliver them (nobody gets a copy twice)",
            soft_wrap=True,
        )
    if report.error:
        raise DeliveryError(report.error)
    if report.exit_code:
        sys.exit(report.exit_code)
