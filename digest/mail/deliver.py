"""Deliver a stored issue over SMTP so that every active subscriber gets exactly one copy.

The ledger (`deliveries` table) holds one row per (issue, subscriber):

    pending ──(RCPT accepted, content sent, committed just before end-of-data)──> sending
    sending ──(250 to end-of-data)──> sent          never attempted again
    sending ──(4xx, or the "." provably never left)──> pending
    pending | sending ──(5xx)──> failed            a 5xx to RCPT also bounces the subscriber
    pending ──(subscriber left before delivery)──> skipped

The crash window: a row is committed "sending" immediately before the final
"<CRLF>.<CRLF>" and "sent" on the 250 reply. If the process dies (or the connection
is lost) between the two, the server may or may not have taken the message. Such a
row is *never resent automatically*, so nobody can ever get two copies; `send_issue`
reports it as "uncertain" and `resend_uncertain=True` (`digest send --resend-uncertain`)
puts it back in the queue once an operator has checked the mail server's log.
The window per message is the claim's commit (a local write plus fsync), a 3-byte
send and the server's reply: a kill during the commit leaves an uncertain row whose
message was never sent, a kill while awaiting the reply one whose message was.

The claim is a compare-and-set (pending -> sending, subscriber still active), so a
subscriber who unsubscribed meanwhile is not sent to, and two `digest send` processes
running at once can never both complete the same delivery.

Everything runs in threads of the calling process: killing it stops all sending.

On a shared (PostgreSQL) store the run takes its work in leased batches instead of
one fixed list (`Lease`, see digest.store.ledger), so any number of processes on any
machines (`digest worker`, `digest send`, the daemon's send) drain one issue together
without sending anything twice, and a killed one's unsent claims are taken over
when its lease runs out.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from digest.config import Config, SmtpConfig
from digest.errors import DeliveryError
from digest.mail.claims import FixedQueue, Lease, LeasedQueue, new_worker_id
from digest.mail.message import build_template
from digest.mail.personalize import NoStories, Sender, section_variants, smtp_password
from digest.mail.report import SendProgress, SendReport
from digest.mail.smtp import (
    Abandoned,
    Fatal,
    RateLimiter,
    Rejected,
    SmtpClient,
    Temporary,
    Uncertain,
)
from digest.models import RenderedIssue, Subscriber
from digest.store import LedgerWriter, Store, StoredIssue

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

TEST_TOKEN = "TESTCOPYXNOTXAXREALXTOKENXXXXXXX"  # 32 chars like a real token; matches nobody
MAX_BACKOFF = 300.0


def _utcnow() -> datetime:
    return datetime.now(tz=UTC)


def _backoff(smtp: SmtpConfig, n: int) -> float:
    return float(min(smtp.backoff * 2 ** max(n - 1, 0), MAX_BACKOFF))


class _Run:
    """One send run: a shared queue drained by `smtp.connections` worker threads."""

    def __init__(
        self,
        store: Store,
        issue: StoredIssue,
        smtp: SmtpConfig,
        sender: Sender,
        source: FixedQueue | LeasedQueue,
        *,
        password: str,
        clock: Clock,
        progress: SendProgress | None,
    ) -> None:
        self.store = store
        self.issue = issue
        self.smtp = smtp
        self.sender = sender
        self.source = source
        self.clock = clock
        self.progress = progress
        self.password = password
        self.hostname = socket.getfqdn()
        self.limiter = RateLimiter(smtp.rate)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.sent = 0
        self.fatal: str | None = None
        self.gave_up: list[str] = []
        self.crash: BaseException | None = None
        self.running = 0
        self.all_done = threading.Event()

    def _next(self) -> Subscriber | None:
        with self.lock:
            return self.source.take(self.stop)

    def _note(self, sub: Subscriber, outcome: str) -> None:
        if self.progress is not None:
            self.progress(sub.email, outcome)

    def worker(self) -> None:
        """Deliver queued messages over one connection until the queue is empty or we stop."""
        try:
            self._work()
        finally:
            with self.lock:
                self.running -= 1
                if self.running == 0:
                    self.all_done.set()

    def _work(self) -> None:
        client = SmtpClient(self.smtp, password=self.password, local_hostname=self.hostname)
        ledger: LedgerWriter | None = None
        try:
            ledger = self.store.ledger.ledger_writer()
            while not self.stop.is_set():
                sub = self._next()
                if sub is None:
                    break
                if not self._deliver(client, ledger, sub):
                    with self.lock:
                        self.source.give_back(sub)
                    break
        except Fatal as exc:
            with self.lock:
                self.fatal = self.fatal or str(exc)
            self.stop.set()
        except BaseException as exc:  # a bug: stop everyone, re-raised by send_issue
            self.crash = exc
            self.stop.set()
        finally:
            client.quit()
            if ledger is not None:
                ledger.close()

    def _finish(
        self,
        ledger: LedgerWriter,
        sub: Subscriber,
        status: str,
        expect: str,
        error: str | None,
        **kw: bool,
    ) -> None:
        assert sub.id is not None
        ledger.finish(
            self.issue.id, sub.id, status=status, expect=expect, error=error, now=self.clock(), **kw
        )

    def _give_up(self, ledger: LedgerWriter, sub: Subscriber, exc: Temporary) -> bool:
        """Fail a delivery the server has refused for now for [smtp].give_up_hours; True if so.

        Only the server's answers about this recipient count (a lost connection or a 421
        is the server's trouble, not the reader's), from the first one on, across runs.
        """
        assert sub.id is not None
        now = self.clock()
        since = self.store.ledger.note_refusal(self.issue.id, sub.id, now=now)
        hours = self.smtp.give_up_hours
        if now - since < timedelta(hours=hours):
            return False
        why = f"refused for {hours:g} h, given up: {exc}"
        self._finish(ledger, sub, "failed", "pending", why)
        log.info("%s: %s", sub.email, why)  # the run's report names it (once)
        with self.lock:
            self.gave_up.append(f"{sub.email}: {exc}")
        self._note(sub, "failed")
        return True

    def _deliver(self, client: SmtpClient, ledger: LedgerWriter, sub: Subscriber) -> bool:
        """Try one delivery up to smtp.max_attempts times; False if this worker must give up."""
        assert sub.id is not None
        sub_id = sub.id
        attempts = 0
        connect_failures = 0
        while True:
            if self.stop.is_set():
                return False
            if not client.connected:
                try:
                    client.connect()
                    connect_failures = 0
                except Temporary as exc:
                    connect_failures += 1
                    log.warning("%s (try %d)", exc, connect_failures)
                    if connect_failures >= self.smtp.max_attempts:
                        log.error("giving up on this connection after %d tries", connect_failures)
                        return False
                    self.stop.wait(_backoff(self.smtp, connect_failures))
                    continue
            self.limiter.acquire(self.stop)
            if self.stop.is_set():
                return False
            attempts += 1
            try:
                message_id, data = self.sender.message(sub, sub.token)
            except NoStories:
                self._finish(ledger, sub, "skipped", "pending", "no story in their sections")
                self._note(sub, "skipped")
                return True

            def claim(message_id: str = message_id) -> bool:
                return ledger.claim(self.issue.id, sub_id, message_id=message_id, now=self.clock())

            try:
                reply = client.transact(
                    self.sender.envelope_from(sub.token), sub.email, data, claim
                )
            except Temporary as exc:
                expect = "sending" if exc.claimed else "pending"
                self._finish(
                    ledger, sub, "pending", expect, str(exc), count_attempt=not exc.claimed
                )
                if exc.reconnect:
                    client.drop()
                if exc.refused and self._give_up(ledger, sub, exc):
                    return True
                if attempts >= self.smtp.max_attempts:
                    log.warning("%s: %s; will retry on the next run", sub.email, exc)
                    self._note(sub, "retry")
                    return True
                log.info("%s: %s; retrying", sub.email, exc)
                self.stop.wait(_backoff(self.smtp, attempts))
                continue
            except Rejected as exc:
                expect = "sending" if exc.claimed else "pending"
                self._finish(
                    ledger,
                    sub,
                    "failed",
                    expect,
                    str(exc),
                    count_attempt=not exc.claimed,
                    bounce=exc.bounce,
                )
                log.warning("%s: %s%s", sub.email, exc, " (bounced)" if exc.bounce else "")
                self._note(sub, "failed")
                return True
            except Uncertain as exc:
                self._finish(ledger, sub, "sending", "sending", f"uncertain: {exc}")
                log.error("%s: %s; not resent (see --resend-uncertain)", sub.email, exc)
                self._note(sub, "uncertain")
                return True
            except Abandoned:
                # Still pending means the subscriber left (else another sender has it).
                self._finish(ledger, sub, "skipped", "pending", "not active at send time")
                log.info(
                    "%s: delivery no longer pending (unsubscribed or sent elsewhere)", sub.email
                )
                self._note(sub, "skipped")
                return True
            self._finish(ledger, sub, "sent", "sending", None)
            with self.lock:
                self.sent += 1
            log.debug("%s: %s %s", sub.email, reply, message_id)
            self._note(sub, "sent")
            return True


def send_issue(
    store: Store,
    issue: StoredIssue,
    config: Config,
    *,
    now: datetime,
    clock: Clock | None = None,
    resend_uncertain: bool = False,
    progress: SendProgress | None = None,
    stop: threading.Event | None = None,
    lease: Lease | None = None,
    only: Sequence[int] | None = None,
) -> SendReport:
    """Deliver an issue to every active subscriber not yet served; return the ledger's state.

    `only` queues just these subscribers (those whose local time has come, see
    digest.schedule.due); deliveries queued earlier and still pending are finished either way.

    Safe to run again at any time (after a crash, a kill or a partial failure): accepted
    deliveries are never repeated, and "uncertain" ones are left alone unless
    `resend_uncertain` is set. Setting `stop` (or Ctrl-C) lets the messages in flight
    finish and leaves the rest pending. On a shared store deliveries are claimed in
    leased batches (`lease`, by default a new worker id), so other processes can help.
    """
    smtp = config.require_smtp()
    # A ledger that cannot be written would let mail go out unrecorded (and go out
    # again on the next run): find out before the first message leaves.
    store.check_writable()
    clock = clock or _utcnow
    template = build_template(issue.rendered(), smtp=smtp, site=config.site)
    sender = Sender(
        template, smtp, clock, section_variants(store, issue, config, template, now=now)
    )
    password = smtp_password(smtp)
    if resend_uncertain:
        n = store.ledger.requeue_uncertain(issue.id, now=now)
        log.warning("requeued %d uncertain deliveries", n)
    store.ledger.ensure_deliveries(issue.id, now=now, only=only)
    if lease is None and store.shared:
        lease = Lease(worker=new_worker_id())
    source: FixedQueue | LeasedQueue
    if lease is not None:
        source, connections = LeasedQueue(store, issue.id, lease), smtp.connections
    else:
        items = [sub for _d, sub in store.ledger.pending_deliveries(issue.id)]
        source, connections = FixedQueue(items), min(smtp.connections, len(items))
    interrupted = False
    run: _Run | None = None
    try:
        if connections:
            run = _Run(
                store,
                issue,
                smtp,
                sender,
                source,
                password=password,
                clock=clock,
                progress=progress,
            )
            threads = [
                threading.Thread(target=run.worker, name=f"digest-smtp-{i}", daemon=True)
                for i in range(connections)
            ]
            run.running = len(threads)
            for t in threads:
                t.start()
            # Wait on an Event, not Thread.join(timeout): a KeyboardInterrupt landing inside
            # join() can mark a still-running thread as finished (CPython 3.11), and we
            # would report while a message is still in flight.
            try:
                while not run.all_done.wait(0.1):
                    if stop is not None and stop.is_set() and not run.stop.is_set():
                        interrupted = True
                        run.stop.set()
                        log.warning("stop requested: finishing the messages already in flight")
            except KeyboardInterrupt:
                interrupted = True
                run.stop.set()
                log.warning("interrupted: finishing the messages already in flight")
                run.all_done.wait()
            for t in threads:
                t.join()
    finally:
        source.close()
    if run is not None and run.crash is not None:
        raise run.crash
    return SendReport.from_counts(
        issue.id,
        store.ledger.delivery_counts(issue.id),
        sent_now=run.sent if run else 0,
        error=run.fatal if run else None,
        interrupted=interrupted,
        gave_up=tuple(run.gave_up) if run else (),
    )


# Pending deliveries of an older issue are left alone: a day-old newsletter arriving
# late is worse than none (`digest send --date` or `digest worker --date` still can).
OPEN_FOR = timedelta(hours=20)


def open_issue(store: Store, *, now: datetime) -> StoredIssue | None:
    """Return the latest issue if it is recent enough to still be delivered."""
    issue = store.last_issue()
    return issue if issue is not None and now - issue.created_at <= OPEN_FOR else None


def send_test(
    config: Config, issue: StoredIssue | RenderedIssue, address: str, *, now: datetime
) -> str:
    """Send one copy of an issue to `address` without touching the ledger; return its Message-ID."""
    smtp = config.require_smtp()
    rendered = issue.rendered() if isinstance(issue, StoredIssue) else issue
    template = build_template(rendered, smtp=smtp, site=config.site)
    sender = Sender(template, smtp, lambda: now)
    client = SmtpClient(smtp, password=smtp_password(smtp), local_hostname=socket.getfqdn())
    message_id, data = sender.message(Subscriber(email=address), TEST_TOKEN)
    last = ""
    try:
        for attempt in range(1, smtp.max_attempts + 1):
            try:
                if not client.connected:
                    client.connect()
                client.transact(sender.envelope_from(TEST_TOKEN), address, data, lambda: True)
                return message_id
            except Temporary as exc:
                last = str(exc)
                time.sleep(_backoff(smtp, attempt))
            except (Rejected, Uncertain, Fatal) as exc:
                raise DeliveryError(f"test copy to {address}: {exc}") from None
    finally:
        client.quit()
    raise DeliveryError(f"test copy to {address} not sent after {smtp.max_attempts} tries: {last}")


@dataclass(frozen=True)
class Planned:
    """What `digest send` would do for one subscriber."""

    subscriber: Subscriber
    action: str  # send | retry | already sent | uncertain | failed | skip


def plan(store: Store, issue: StoredIssue | None) -> Iterator[Planned]:
    """Yield, without writing anything, what a send would do for each subscriber."""
    rows = {d.subscriber_id: d for d in store.ledger.list_deliveries(issue.id)} if issue else {}
    for sub in store.list_subscribers():
        row = rows.get(sub.id) if sub.id is not None else None
        status = row.status if row else None
        if status == "sent":
            yield Planned(sub, "already sent")
        elif status == "sending":
            yield Planned(sub, "uncertain")
        elif status == "failed":
            yield Planned(sub, "failed")
        elif sub.status != "active":
            yield Planned(sub, f"skip ({sub.status})")
        elif status == "pending" and row is not None and row.attempts:
            yield Planned(sub, "retry")
        else:
            yield Planned(sub, "send")
