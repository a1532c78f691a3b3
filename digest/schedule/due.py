"""Local-time delivery: who is due for which issue at a given moment, and sending to them.

Each reader has a delivery time in a time zone (their own, or the first
[schedule].send_at in [site].timezone). Their *slot* is the latest instant at or before
now that is that wall time there (see digest.schedule.localtime for daylight saving).

Which issue a reader gets at a slot: **the most recent issue released at or before
the slot**, where an issue is released at the earlier of its scheduled time (the first
[schedule].send_at on its date in [site].timezone) and the moment it was composed.
So a reader in Tokyo at 07:00 gets the issue Berlin released at 07:00 the day before
(their 07:00 comes first); a reader whose time falls just before the site's gets the
previous day's issue. They get it only if they have no delivery of it yet (never one
they already got) and only while the slot is recent: at most
max([schedule].misfire_grace_minutes, collect_every_minutes + 5) minutes old. A slot
missed by more than that is skipped (the next slot brings the next issue; `digest
send --date` sends an older issue to everyone still without it).

Readers are sent together by issue: one `send_issue` run per issue, which queues the
due readers in the ledger and then delivers every pending row, so a crash and a
re-run never lose or duplicate a delivery, exactly as for a plain send.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from digest import pipeline
from digest.config import Config
from digest.mail.deliver import send_issue
from digest.mail.report import SendProgress, SendReport
from digest.models import Subscriber
from digest.schedule.localtime import last_slot, next_slot, parse_hhmm, slot_on, weekdays
from digest.store import Store, StoredIssue

log = logging.getLogger(__name__)

RECENT_ISSUES = 14  # issues looked at when choosing one for a slot


@dataclass(frozen=True)
class Due:
    """What a due send does for one reader at one moment."""

    subscriber: Subscriber
    action: str  # "send" | "skip"
    reason: str
    issue: str | None = None  # the issue's date
    issue_id: int | None = None  # None for an issue still to be composed
    slot: datetime | None = None

    def as_json(self) -> dict[str, str | None]:
        """Return the `--json` form: email, issue, action and reason."""
        return {
            "email": self.subscriber.email,
            "issue": self.issue,
            "action": self.action,
            "reason": self.reason,
        }


def late_limit(config: Config) -> timedelta:
    """Return how long after a reader's time the send may still go out."""
    s = config.schedule
    return timedelta(minutes=max(s.misfire_grace_minutes, s.collect_every_minutes + 5))


def reader_zone(config: Config, sub: Subscriber) -> str:
    """Return the reader's IANA zone (theirs, else the site's)."""
    return sub.timezone or config.site.timezone


def reader_time(config: Config, sub: Subscriber) -> str:
    """Return the reader's local delivery time (theirs, else the first [schedule].send_at)."""
    return sub.send_at or config.schedule.send_at[0]


def scheduled(config: Config, date: str) -> datetime:
    """Return when the issue of an ISO date is scheduled: the first send_at there (UTC)."""
    day = datetime.fromisoformat(date).date()
    return slot_on(day, parse_hhmm(config.schedule.send_at[0]), config.site.tz)


def released(config: Config, issue: StoredIssue) -> datetime:
    """Return when an issue became available to readers (scheduled time, or earlier if composed)."""
    return min(scheduled(config, issue.date), issue.created_at)


@dataclass(frozen=True)
class _Candidate:
    date: str
    id: int | None
    release: datetime


def _candidates(config: Config, store: Store, now: datetime) -> list[_Candidate]:
    """Return the recent issues (and today's, if due to be composed), newest release first."""
    out = [_Candidate(i.date, i.id, released(config, i)) for i in store.list_issues(RECENT_ISSUES)]
    today = pipeline.today(config, now)
    if today_needs_composing(config, store, now):
        out.append(_Candidate(today, None, scheduled(config, today)))
    return sorted(out, key=lambda c: c.release, reverse=True)


def today_needs_composing(config: Config, store: Store, now: datetime) -> bool:
    """Return True when today's issue is scheduled by now (on a send day) but not stored."""
    today = pipeline.today(config, now)
    day = now.astimezone(config.site.tz).date()
    if day.weekday() not in weekdays(config.schedule.days):
        return False
    return scheduled(config, today) <= now and store.issue_for_date(today) is None


def plan_due(config: Config, store: Store, *, now: datetime) -> list[Due]:
    """Return, without writing anything, what a due send at `now` does for every subscriber."""
    candidates = _candidates(config, store, now)
    rows: dict[int, dict[int, str]] = {}

    def status_of(issue_id: int, sub_id: int) -> str | None:
        if issue_id not in rows:
            rows[issue_id] = {
                d.subscriber_id: d.status for d in store.ledger.list_deliveries(issue_id)
            }
        return rows[issue_id].get(sub_id)

    groups: dict[tuple[str, str], tuple[datetime, _Candidate | None]] = {}
    out: list[Due] = []
    for sub in store.list_subscribers():
        if sub.status != "active":
            why = "waiting for confirmation" if sub.status == "pending" else sub.status
            out.append(Due(sub, "skip", why))
            continue
        key = (reader_zone(config, sub), reader_time(config, sub))
        if key not in groups:
            slot = last_slot(now, parse_hhmm(key[1]), ZoneInfo(key[0]))
            pick = next((c for c in candidates if c.release <= slot), None)
            groups[key] = (slot, pick)
        slot, pick = groups[key]
        local = f"{slot.astimezone(ZoneInfo(key[0])):%Y-%m-%d %H:%M} {key[0]}"
        if now - slot > late_limit(config):
            upcoming = next_slot(now, parse_hhmm(key[1]), ZoneInfo(key[0]))
            when = f"{upcoming.astimezone(ZoneInfo(key[0])):%Y-%m-%d %H:%M} {key[0]}"
            out.append(Due(sub, "skip", f"not their time: next at {when}", slot=slot))
            continue
        if pick is None:
            out.append(Due(sub, "skip", f"no issue released by their time ({local})", slot=slot))
            continue
        status = None if pick.id is None or sub.id is None else status_of(pick.id, sub.id)
        due = Due(sub, "skip", "", pick.date, pick.id, slot)
        if status == "sent":
            out.append(_with(due, f"already has the {pick.date} issue"))
        elif status == "sending":
            out.append(_with(due, "uncertain after a crash (see --resend-uncertain)"))
        elif status == "failed":
            out.append(_with(due, "the mail server refused it"))
        else:
            why = f"their time {local} has come"
            if pick.id is None:
                why += " (the issue is composed first)"
            elif status == "pending":
                why += " (retry)"
            out.append(Due(sub, "send", why, pick.date, pick.id, slot))
    return out


def _with(due: Due, reason: str) -> Due:
    return Due(due.subscriber, due.action, reason, due.issue, due.issue_id, due.slot)


def compose_if_due(config: Config, store: Store, *, now: datetime) -> StoredIssue | None:
    """Compose today's issue when its scheduled time has passed and it is not stored yet."""
    if not today_needs_composing(config, store, now):
        return None
    from digest.schedule.daily import create_issue  # imports this module: import on use

    return create_issue(config, store, now=now)


def send_due(
    config: Config,
    store: Store,
    *,
    now: datetime,
    compose: bool = True,
    default_readers: bool = False,
    stop: threading.Event | None = None,
    progress: SendProgress | None = None,
) -> list[tuple[StoredIssue, SendReport]]:
    """Send each due reader their issue; return one report per issue sent.

    `default_readers` also queues, for today's issue, every reader on the site's own
    schedule whatever the clock says: the daemon's send job fires at their time.
    """
    if compose:
        compose_if_due(config, store, now=now)
    plan = plan_due(config, store, now=now)
    by_issue: dict[int, list[int]] = defaultdict(list)
    for d in plan:
        if d.action == "send" and d.issue_id is not None and d.subscriber.id is not None:
            by_issue[d.issue_id].append(d.subscriber.id)
    if default_readers:
        today = store.issue_for_date(pipeline.today(config, now))
        if today is not None:
            by_issue[today.id].extend(
                s.id
                for s in store.list_subscribers("active")
                if s.id is not None and not s.timezone and not s.send_at
            )
    issues = {i.id: i for i in store.list_issues(RECENT_ISSUES)}
    reports = []
    for issue_id, ids in sorted(by_issue.items()):
        issue = issues.get(issue_id)
        if issue is None or (stop is not None and stop.is_set()):
            continue
        log.info("issue %s: %d reader(s) due", issue.date, len(set(ids)))
        report = send_issue(
            store, issue, config, now=now, only=_unique(ids), stop=stop, progress=progress
        )
        log_report(issue, report)
        reports.append((issue, report))
    return reports


def log_report(issue: StoredIssue, r: SendReport) -> None:
    """Log a send's outcome in one line (and its stopping error, if any)."""
    level = logging.INFO if r.exit_code == 0 else logging.WARNING
    log.log(level, "deliveries of %s: %s", issue.date, r)
    if r.error:
        log.error("delivery of %s stopped: %s", issue.date, r.error)


def _unique(ids: Sequence[int]) -> list[int]:
    return sorted(set(ids))


@dataclass(frozen=True)
class Group:
    """Readers sharing a time zone and delivery time: they are sent together."""

    timezone: str
    send_at: str
    readers: int
    next_send: datetime


def groups(config: Config, store: Store, *, now: datetime) -> list[Group]:
    """Return the time-zone groups of active readers with their next send, soonest first."""
    merged: dict[tuple[str, str], int] = defaultdict(int)
    for tz, at, n in store.preference_groups():
        merged[(tz or config.site.timezone, at or config.schedule.send_at[0])] += n
    out = [
        Group(tz, at, n, next_slot(now, parse_hhmm(at), ZoneInfo(tz)))
        for (tz, at), n in merged.items()
    ]
    return sorted(out, key=lambda g: (g.next_send, g.timezone))


def local_time(t: datetime, zone: str) -> str:
    """Return "YYYY-MM-DD HH:MM" of an instant in a zone."""
    return f"{t.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M}"
