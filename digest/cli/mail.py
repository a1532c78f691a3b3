"""CLI commands for the mailing side: `digest subscribers …` and `digest send`."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import click
from rich.markup import escape

from digest.cli.app import App, console, err_console, iso_date, on_signals
from digest.errors import DeliveryError, DigestError
from digest.models import SUBSCRIBER_STATUSES

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from digest.mail.report import SendReport
    from digest.models import Delivery
    from digest.store import StoredIssue
    from digest.store.locks import LockInfo


def _now() -> datetime:
    return datetime.now(tz=UTC)


@click.group(name="subscribers")
def subscribers_group() -> None:
    """Manage the subscriber list."""


@subscribers_group.command(name="add")
@click.argument("email")
@click.option("--name", default="", help="Display name used in the To: header.")
@click.option(
    "--confirm",
    is_flag=True,
    help="Store the address as pending and mail it the opt-in link instead of adding it.",
)
@click.pass_obj
def subscribers_add(app: App, email: str, name: str, confirm: bool) -> None:
    """Add a subscriber (or reactivate one who left); --confirm asks them first by mail."""
    from digest.mail import subscribers

    if confirm:
        app.config.require_smtp()
        sub, mailed = subscribers.invite(app.config, app.store, email, name, now=_now())
        word = (
            "pending, confirmation mail sent"
            if mailed
            else f"{sub.status}, no mail sent (one went out recently, or nothing to confirm)"
        )
        console.print(escape(f"{sub.email}: {word}"), soft_wrap=True)
        return
    sub, changed = subscribers.add(app.store, email, name, now=_now())
    word = "added" if changed else "already subscribed"
    console.print(escape(f"{sub.email}: {word}"), soft_wrap=True)


@subscribers_group.command(name="set")
@click.argument("email")
@click.option("--timezone", "tz", metavar="TZ", help='IANA time zone; "" = [site].timezone.')
@click.option("--send-at", metavar="HH:MM", help='Local delivery time; "" = [schedule].send_at.')
@click.option("--sections", metavar="A,B", help='Sections to receive; "" = every section.')
@click.pass_obj
def subscribers_set(
    app: App, email: str, tz: str | None, send_at: str | None, sections: str | None
) -> None:
    """Set a reader's time zone, delivery time or sections (what the preferences page sets)."""
    from digest.mail import subscribers

    sub = subscribers.set_preferences(
        app.config,
        app.store,
        email,
        timezone=tz,
        send_at=send_at,
        sections=None if sections is None else sections.split(","),
        now=_now(),
    )
    click.echo(subscribers.describe(sub, app.config))


@subscribers_group.command(name="remove")
@click.argument("email")
@click.pass_obj
def subscribers_remove(app: App, email: str) -> None:
    """Unsubscribe an address (kept on file so no import re-adds it)."""
    from digest.mail import subscribers

    sub = subscribers.remove(app.store, email, now=_now())
    if sub is None:
        raise DigestError(f"{email} is not on the list; see `digest subscribers list`")
    console.print(escape(f"{sub.email}: {sub.status}"), soft_wrap=True)


@subscribers_group.command(name="mail-unsubscribe")
@click.argument("file", type=click.File("rb"), default="-")
@click.pass_obj
def subscribers_mail_unsubscribe(app: App, file: BinaryIO) -> None:
    """Unsubscribe the sender of one e-mail (FILE or stdin) sent to [smtp].unsubscribe_mailto.

    Pipe the mailbox's mail here (e.g. from /etc/aliases); the token in the subject says
    who. Exit code 1 when the mail names no known subscriber (the MTA bounces it).
    """
    from digest.mail import subscribers

    sub = subscribers.remove_by_mail(app.store, file.read(20_000_000), now=_now())
    console.print(escape(f"{sub.email}: {sub.status}"), soft_wrap=True)


def _counts_line(counts: dict[str, int]) -> str:
    order = [*SUBSCRIBER_STATUSES, *sorted(set(counts) - set(SUBSCRIBER_STATUSES))]
    return ", ".join(
        f"{status} {counts.get(status, 0)}" for status in order if _shown(status, counts)
    )


def _shown(status: str, counts: dict[str, int]) -> bool:
    """Return whether a status is counted: "pending" only when a web sign-up waits."""
    return status != "pending" or bool(counts.get(status))


@subscribers_group.command(name="list")
@click.option(
    "--status", type=click.Choice(SUBSCRIBER_STATUSES), default=None, help="Only this status."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (counts and subscribers).")
@click.pass_obj
def subscribers_list(app: App, status: str | None, as_json: bool) -> None:
    """Print subscribers, one per line, tab-separated: address, name, status, time zone,
    delivery time and sections ("-" = the site's default).

    The counts per status follow on stderr. With --json, one JSON object on stdout:
    {"counts": {status: n}, "subscribers": [{"email", "name", "status", "created_at",
    "timezone", "send_at", "sections"}]}.
    """
    from digest.mail import subscribers
    from digest.store.quick import subscribers_and_counts

    # On an up-to-date SQLite store this answers without loading SQLAlchemy.
    quick = subscribers_and_counts(app.config.store.url, status)
    subs, counts = quick or (app.store.list_subscribers(status), app.store.subscriber_counts())
    if as_json:
        out = {
            "counts": {s: counts.get(s, 0) for s in SUBSCRIBER_STATUSES if _shown(s, counts)}
            | counts,
            "subscribers": [
                {
                    "email": sub.email,
                    "name": sub.name,
                    "status": sub.status,
                    "created_at": sub.created_at.isoformat() if sub.created_at else None,
                    "timezone": sub.timezone,
                    "send_at": sub.send_at,
                    "sections": list(sub.sections),
                }
                for sub in subs
            ],
        }
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    for sub in subs:
        click.echo(subscribers.describe(sub, app.config))
    err_console.print(escape(_counts_line(counts)), soft_wrap=True)


@subscribers_group.command(name="import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path, allow_dash=True))
@click.option(
    "--map",
    "maps",
    multiple=True,
    metavar="COLUMN=FIELD",
    help=(
        "Read a column as FIELD (email, name, first_name, last_name, status, subscribed_at, "
        "unsubscribed_at, cleaned_at, disabled, ignore); repeatable."
    ),
)
@click.pass_obj
def subscribers_import(app: App, file: Path, maps: tuple[str, ...]) -> None:
    """Import subscribers from a CSV export ('-' for stdin).

    The delimiter is detected; a header row names the columns (Mailchimp, Substack and
    Buttondown exports work as they are), else rows are `email[,name[,status]]`. Bad
    rows are reported with their line numbers and the rest imported; the exit code is
    1 when any row was rejected. Addresses already on the list (in any spelling) are
    left as they are (an import never re-subscribes anyone). The `timezone`, `send_at`
    and `sections` columns of `export` bring readers' preferences along.
    """
    from digest.mail import importing

    mapping = importing.parse_mapping(maps)
    if str(file) == "-":
        report = importing.import_csv(
            app.store, sys.stdin, now=_now(), mapping=mapping, config=app.config
        )
    else:
        try:
            with file.open(encoding="utf-8-sig", newline="") as fh:
                report = importing.import_csv(
                    app.store, fh, now=_now(), mapping=mapping, config=app.config
                )
        except OSError as exc:
            raise DigestError(f"cannot read {file}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise DigestError(f"{file} is not UTF-8 text; save it as UTF-8 CSV") from None
    for line, message in report.errors:
        err_console.print(escape(f"{file}:{line}: {message}"), soft_wrap=True)
    console.print(
        f"imported {report.added}, already on the list {report.existing}, "
        f"rejected {len(report.errors)}"
    )
    if report.errors:
        sys.exit(1)


def _envelope_recipients() -> list[str]:
    """Return the address the MTA delivered to, from a pipe's environment (Postfix, Exim)."""
    return [v for k in ("ORIGINAL_RECIPIENT", "RECIPIENT") if (v := os.environ.get(k, ""))]


def _report(app: App, file: BinaryIO, only: str | None) -> None:
    from digest.config import SmtpConfig
    from digest.mail import bounces

    # Without [smtp] (mail sent by another machine's config) the defaults still read
    # tokens from any `+TOKEN@` address and from the quoted headers.
    smtp = app.config.smtp or SmtpConfig()
    done = bounces.process_report(
        app.store,
        file.read(bounces.MAX_REPORT),
        smtp=smtp,
        now=_now(),
        envelope_recipients=_envelope_recipients(),
        only=only,
    )
    report, sub, outcome = done.report, done.subscriber, done.outcome
    if outcome is None:
        line = f"{sub.email}: the report says nothing failed ({report.status}); no change"
    elif outcome.kind == "soft":
        streak = f"{outcome.streak} of {smtp.soft_bounce_limit} in a row"
        line = f"{sub.email}: soft bounce {report.status} ({streak}); {sub.status}"
    else:
        what = "complaint" if outcome.kind == "complaint" else "bounce"
        line = f"{sub.email}: {what} {report.status}; {sub.status}"
    console.print(escape(line), soft_wrap=True)


@subscribers_group.command(name="bounce")
@click.argument("file", type=click.File("rb"), default="-")
@click.pass_obj
def subscribers_bounce(app: App, file: BinaryIO) -> None:
    """Process one bounce (DSN) or complaint (ARF) e-mail from FILE or stdin.

    Pipe the mail to [smtp].bounce_address here (e.g. from /etc/aliases). A permanent
    failure (5.x.x) marks the reader bounced; [smtp].soft_bounce_limit temporary ones
    (4.x.x) on issues in a row do too; a complaint marks them complained. Exit code 1
    when the mail is neither or names no known reader (nothing changes).
    """
    _report(app, file, None)


@subscribers_group.command(name="complaint")
@click.argument("file", type=click.File("rb"), default="-")
@click.pass_obj
def subscribers_complaint(app: App, file: BinaryIO) -> None:
    """Process one complaint (an RFC 5965 ARF report) from FILE or stdin.

    The reader is found from the token or Message-ID of the reported message and is
    never mailed again. Exit code 1 for anything else (nothing changes).
    """
    _report(app, file, "arf")


@subscribers_group.command(name="export")
@click.option(
    "--status", type=click.Choice(SUBSCRIBER_STATUSES), default=None, help="Only this status."
)
@click.pass_obj
def subscribers_export(app: App, status: str | None) -> None:
    """Write the list as CSV (email,name,status,timezone,send_at,sections); `import` reads it."""
    from digest.mail import importing

    click.echo(importing.export_text(app.store, status=status), nl=False)


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
