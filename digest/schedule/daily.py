"""What the daemon's jobs do, as plain functions: collect, create today's issue, send it.

`digest run` calls these from its scheduled jobs (`digest.schedule.daemon`); tests and
scripts can call them directly. Each logs one line per outcome.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import datetime

from digest import pipeline
from digest.config import Config
from digest.errors import EmptyIssueError
from digest.mail.deliver import open_issue, send_issue
from digest.mail.report import SendReport
from digest.schedule.due import log_report, send_due
from digest.store import Store, StoredIssue

log = logging.getLogger(__name__)


def collect_now(config: Config, store: Store, *, now: datetime) -> pipeline.CollectReport:
    """Collect every source and log one line per source."""
    report = pipeline.collect_articles(config, store, now=now)
    for s in report.sources:
        if s.ok:  # failures are logged by the pipeline
            skipped = f", {s.pages_skipped} page(s) skipped" if s.pages_skipped else ""
            log.info(
                "collected %s: %d new of %d item(s)%s", s.source, s.new_articles, s.entries, skipped
            )
    return report


def deliver_issue(
    config: Config,
    store: Store,
    issue: StoredIssue,
    *,
    now: datetime,
    stop: threading.Event | None = None,
    only: Sequence[int] | None = None,
) -> SendReport:
    """Deliver an issue through the ledger and log the outcome in one line."""
    # On `stop` the messages in flight finish and the rest stay pending for a restart.
    r = send_issue(store, issue, config, now=now, stop=stop, only=only)
    log_report(issue, r)
    return r


def create_issue(config: Config, store: Store, *, now: datetime) -> StoredIssue | None:
    """Create today's issue under the minimum-content rule; None when the day is skipped."""
    minimum = config.compose.min_articles
    date = pipeline.today(config, now)
    try:
        issue = pipeline.ensure_issue(config, store, now=now)
    except EmptyIssueError as exc:
        n = len(store.unissued_articles(pipeline.cutoff_for(config, store, now)))
        if n:
            log.info(
                "quiet day %s: %d new article(s), fewer than [compose].min_articles = %d; "
                'no issue (set [schedule].quiet_day = "send" to send a short one)',
                date,
                n,
                minimum,
            )
        else:
            log.info("no issue for %s: %s", date, exc)
        return None
    n = len(issue.article_ids)
    if n < minimum:
        log.info("quiet day %s: a short issue with %d article(s)", issue.date, n)
    log.info("issue %s created: %d article(s), subject %r", issue.date, n, issue.subject)
    return issue


def send_today(
    config: Config, store: Store, *, now: datetime, stop: threading.Event | None = None
) -> SendReport | None:
    """Create today's issue if needed and deliver it; None when there is no issue today."""
    issue = store.issue_for_date(pipeline.today(config, now))
    if issue is None:
        issue = create_issue(config, store, now=now)
        if issue is None:
            return None
    else:
        log.info("issue %s already exists; delivering what is still pending", issue.date)
    # This job fires at the site's send time: the time of every reader on the default
    # schedule. Readers with their own zone or time get it when theirs comes (DUE_JOB).
    reports = send_due(config, store, now=now, compose=False, default_readers=True, stop=stop)
    return next((r for i, r in reports if i.id == issue.id), None)


def retry_pending(
    config: Config, store: Store, *, now: datetime, stop: threading.Event | None = None
) -> SendReport | None:
    """Finish the latest issue's pending deliveries (after an SMTP outage or a stop)."""
    issue = open_issue(store, now=now)
    if issue is None:
        return None
    pending = store.ledger.delivery_counts(issue.id).get("pending", 0)
    if not pending:
        return None
    log.info("issue %s: %d delivery(ies) pending; retrying", issue.date, pending)
    return deliver_issue(config, store, issue, now=now, stop=stop, only=())
