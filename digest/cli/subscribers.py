"""CLI commands for the readers: `digest subscribers …` (add, set, remove, list, import,
export, bounces and complaints)."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import click
from rich.markup import escape

from digest.cli.app import App, console, err_console
from digest.errors import DigestError
from digest.models import SUBSCRIBER_STATUSES

if TYPE_CHECKING:
    pass


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
