"""The daily send on APScheduler: when to collect and send, and the long-running daemon.

`run_daemon` (behind `digest run`) holds a database lock so only one daemon works on a
store (on PostgreSQL others may wait as standbys, see digest.store.locks: an APScheduler 3
job store must never be shared by two schedulers), and runs an APScheduler
`BackgroundScheduler` whose jobs live in the same database (table `apscheduler_jobs`),
so after a restart or a takeover it knows when the next send is due and whether one
was missed while no daemon ran:

    collect   every [schedule].collect_every_minutes: store new articles, then retry
              deliveries of the latest issue that are still pending
    send      at [schedule].send_at on [schedule].days in [site].timezone: create
              today's issue and deliver it through the ledger to the readers on the
              site's default schedule (and anyone else whose time it is)
    due       every minute: send each reader whose own local delivery time has come
              their issue (see digest.schedule.due for which issue that is)

Nothing is ever sent twice: an issue is unique per date and each delivery is a
compare-and-set in the ledger, so a restart, a misfire catch-up, a second send time
on the same day or a `digest send` from cron only finish what is still pending.

Job functions are module-level and take only the config path, so the persistent job
store can pickle them; they find the running daemon's config and store through it.

Daylight saving: APScheduler's CronTrigger (3.11) fires twice on the fall-back night
for a time in the repeated hour, once per occurrence; `DailyTrigger` skips the second.
A time the clock skips on the spring-forward night fires once, with the offset from
before the jump (PEP 495's fold=0), i.e. one hour later by the new clock (02:30 ->
03:30). Fire times are returned in UTC: APScheduler compares them with "now", and two
datetimes sharing one tzinfo compare by wall time, which is wrong across a fall-back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from apscheduler.util import obj_to_ref

from digest import pipeline
from digest.config import Config
from digest.config.load import load_config
from digest.errors import DigestError, LockLostError
from digest.schedule.daily import (
    collect_now,
    retry_pending,
    send_today,
)
from digest.schedule.due import send_due
from digest.store import Store, locks
from digest.store.locks import DaemonLock

log = logging.getLogger(__name__)

COLLECT_JOB = "digest-collect"
SEND_JOB = "digest-send"
DUE_JOB = "digest-due"
DUE_EVERY = 60.0  # seconds between looks for readers whose local time has come
JOBS_TABLE = "apscheduler_jobs"
RUN_LOCK = "digest-run"
LOCK_STALE_AFTER = 60.0  # seconds without a heartbeat before another daemon may take over
HEARTBEAT_EVERY = 10.0


def _utcnow() -> datetime:
    return datetime.now(tz=UTC)


# -- triggers -----------------------------------------------------------------


def _repeated(t: datetime) -> bool:
    """Return True for the second occurrence of a wall time the clock went through twice."""
    return t.fold == 1 and t.replace(fold=0).utcoffset() != t.utcoffset()


class DailyTrigger(BaseTrigger):  # type: ignore[misc]
    """Fire at wall-clock times on some weekdays in a time zone, each at most once a day."""

    def __init__(self, times: Sequence[str], days: str, timezone: str) -> None:
        self.times = tuple(times)
        self.days = days
        self.timezone = timezone
        self._build()

    def _build(self) -> None:
        tz = ZoneInfo(self.timezone)
        self._crons = []
        for text in self.times:
            h, m, *s = (int(x) for x in text.split(":"))
            self._crons.append(
                CronTrigger(
                    day_of_week=self.days, hour=h, minute=m, second=s[0] if s else 0, timezone=tz
                )
            )

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        """Return the next fire time (in UTC) after the previous one, or from `now`."""
        found = [t for c in self._crons if (t := self._next(c, previous_fire_time, now))]
        return min(found) if found else None

    @staticmethod
    def _next(cron: Any, previous: datetime | None, now: datetime) -> datetime | None:
        while True:
            t: datetime | None = cron.get_next_fire_time(previous, now)
            if t is None:
                return None
            if not _repeated(t):
                return t.astimezone(UTC)
            previous = now = t  # the repeat of a time already fired: look past it

    def __getstate__(self) -> dict[str, Any]:
        return {"version": 1, "times": list(self.times), "days": self.days, "tz": self.timezone}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.times = tuple(state["times"])
        self.days = state["days"]
        self.timezone = state["tz"]
        self._build()

    def __str__(self) -> str:
        return f"daily[{','.join(self.times)} on {self.days} in {self.timezone}]"

    def __repr__(self) -> str:
        return f"<DailyTrigger {self}>"


def send_trigger(config: Config) -> DailyTrigger:
    """Return the trigger of the daily send."""
    s = config.schedule
    return DailyTrigger(s.send_at, s.days, config.site.timezone)


def collect_trigger(config: Config) -> IntervalTrigger:
    """Return the trigger of the collection job (elapsed time, so DST does not matter)."""
    return IntervalTrigger(seconds=config.schedule.collect_every_minutes * 60, timezone=UTC)


def grace_seconds(config: Config) -> int:
    """Return the misfire grace period in whole seconds (APScheduler wants at least 1)."""
    return max(1, round(config.schedule.misfire_grace_minutes * 60))


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{round(seconds, 1):g} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"


def due_send(config: Config, store: Store, *, now: datetime) -> datetime | None:
    """Return the latest send time within the grace period whose issue was never created."""
    trigger = send_trigger(config)
    t = trigger.get_next_fire_time(None, now - timedelta(seconds=grace_seconds(config)))
    if t is None or t > now:
        return None
    while (later := trigger.get_next_fire_time(t, t)) is not None and later <= now:
        t = later
    date = pipeline.today(config, t)
    return t if store.issue_for_date(date) is None else None


# -- the jobs (module level, pickled by reference with the config path) --------


@dataclass
class _Runtime:
    config: Config
    store: Store
    stop: threading.Event
    busy: threading.Lock = field(default_factory=threading.Lock)  # one job at a time


_RUNTIMES: dict[str, _Runtime] = {}
_RUNTIMES_LOCK = threading.Lock()


def _runtime(config_path: str) -> _Runtime:
    with _RUNTIMES_LOCK:
        rt = _RUNTIMES.get(config_path)
        if rt is None:  # a job run by a scheduler built by hand, outside run_daemon
            config = load_config(config_path)
            rt = _Runtime(config, Store.open(config.store.url), threading.Event())
            _RUNTIMES[config_path] = rt
        return rt


def collect_job(config_path: str) -> None:
    """Scheduled: collect new articles, then retry the latest issue's pending deliveries."""
    rt = _runtime(config_path)
    # A send collects by itself; two writers adding the same articles would only race.
    if rt.stop.is_set() or not rt.busy.acquire(blocking=False):
        log.debug("collection skipped: stopping, or a send is running")
        return
    try:
        now = _utcnow()
        collect_now(rt.config, rt.store, now=now)
        if not rt.stop.is_set():
            retry_pending(rt.config, rt.store, now=now, stop=rt.stop)
    except DigestError as exc:
        log.error("collection failed: %s", exc)
    finally:
        rt.busy.release()


def due_job(config_path: str) -> None:
    """Scheduled every minute: send each reader whose own local time has come their issue."""
    rt = _runtime(config_path)
    if rt.stop.is_set() or not rt.busy.acquire(blocking=False):
        log.debug("due check skipped: stopping, or another job is running")
        return
    try:
        send_due(rt.config, rt.store, now=_utcnow(), compose=False, stop=rt.stop)
    except DigestError as exc:
        log.error("local-time send failed: %s", exc)
    finally:
        rt.busy.release()


def send_job(config_path: str) -> None:
    """Scheduled: create today's issue and deliver it through the ledger."""
    rt = _runtime(config_path)
    with rt.busy:
        if rt.stop.is_set():  # a restart within the grace period sends it (see due_send)
            log.warning("send not started: stopping")
            return

        def waiting(holder: locks.LockInfo) -> None:
            log.info(
                "a `digest send` is running (%s); the scheduled send waits for it",
                locks.describe(holder, now=_utcnow()),
            )

        try:
            # A `digest send` from cron or by hand may be running: let it finish first.
            with locks.hold(rt.store, locks.SEND_LOCK, on_wait=waiting, stop=rt.stop):
                send_today(rt.config, rt.store, now=_utcnow(), stop=rt.stop)
        except DigestError as exc:
            log.error("send failed: %s", exc)


# -- the scheduler ----------------------------------------------------------------


class _Scheduler(BackgroundScheduler):  # type: ignore[misc]
    """A BackgroundScheduler that never looks at due jobs unless it is running.

    APScheduler's loop runs once more when shut down (or shut down while paused): a job
    due then is "submitted" to the closed executor and its next run time advanced, so
    a missed send would be lost without ever running.
    """

    def _process_jobs(self) -> float | None:
        if self.state != STATE_RUNNING:
            return None
        wait: float | None = super()._process_jobs()
        return wait


def build_scheduler(store: Store) -> Any:
    """Return a BackgroundScheduler keeping its jobs in the store's database."""
    return _Scheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=store.db.engine, tablename=JOBS_TABLE)},
        executors={"default": ThreadPoolExecutor(max_workers=2)},
        job_defaults={"coalesce": True, "max_instances": 1},
        timezone=UTC,
    )


def _job_specs(config: Config) -> dict[str, dict[str, Any]]:
    every = config.schedule.collect_every_minutes * 60
    return {
        COLLECT_JOB: {
            "func": collect_job,
            "trigger": collect_trigger(config),
            "name": "collect",
            "misfire_grace_time": max(1, round(every)),
        },
        SEND_JOB: {
            "func": send_job,
            "trigger": send_trigger(config),
            "name": "send",
            "misfire_grace_time": grace_seconds(config),
        },
        DUE_JOB: {
            "func": due_job,
            "trigger": IntervalTrigger(seconds=DUE_EVERY, timezone=UTC),
            "name": "local-time send",
            "misfire_grace_time": round(DUE_EVERY),
        },
    }


def sync_jobs(scheduler: Any, config: Config) -> None:
    """Make the stored jobs match the config, keeping unchanged ones (and their missed runs)."""
    specs = _job_specs(config)
    args = (str(config.path),)
    for job in scheduler.get_jobs():
        if job.id not in specs:
            scheduler.remove_job(job.id)
    for job_id, spec in specs.items():
        job = scheduler.get_job(job_id)
        wanted = (obj_to_ref(spec["func"]), str(spec["trigger"]), args, spec["misfire_grace_time"])
        if job is not None and job.next_run_time is not None:
            have = (job.func_ref, str(job.trigger), tuple(job.args), job.misfire_grace_time)
            if have == wanted:
                continue
        scheduler.add_job(
            id=job_id,
            args=args,
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            **spec,
        )
        log.debug("job %s scheduled: %s", job_id, spec["trigger"])


def next_run_times(store: Store) -> dict[str, datetime]:
    """Return the next run time of each job in the store's job table (UTC)."""
    return store.job_run_times(JOBS_TABLE)


def local(config: Config, t: datetime) -> str:
    """Return 'YYYY-MM-DD HH:MM' in the site's time zone."""
    return f"{t.astimezone(config.site.tz):%Y-%m-%d %H:%M}"


def run_daemon(
    config: Config,
    store: Store,
    *,
    stop: threading.Event | None = None,
    ready: Callable[[], None] | None = None,
    lock_stale_after: float = LOCK_STALE_AFTER,
    heartbeat_every: float = HEARTBEAT_EVERY,
    standby: bool = False,
) -> None:
    """Collect and send on schedule until `stop` is set or KeyboardInterrupt (SIGTERM).

    Raises LockHeldError at once when another daemon works on the same store, unless
    `standby` (PostgreSQL): then wait for it to go and take over. On a stop, the
    delivery in flight is finished and recorded before returning.
    """
    stop = stop or threading.Event()
    lock = DaemonLock(
        store,
        RUN_LOCK,
        stale_after=lock_stale_after,
        heartbeat_every=heartbeat_every,
        on_lost=stop.set,
    )
    try:
        if lock.acquire(standby=standby, stop=stop) is None:
            log.info("digest run stopped (it was standing by)")
            return
    except KeyboardInterrupt:
        lock.release()
        log.info("digest run stopped (it was standing by)")
        return
    key = str(config.path)
    with _RUNTIMES_LOCK:
        _RUNTIMES[key] = _Runtime(config, store, stop)

    def on_event(event: Any) -> None:
        if event.code == EVENT_JOB_MISSED and event.job_id == SEND_JOB:
            late = _utcnow() - event.scheduled_run_time
            log.warning(
                "the send due at %s was missed by %s, more than the %s grace period; "
                "skipped (`digest send` sends today's issue now)",
                local(config, event.scheduled_run_time),
                _duration(late.total_seconds()),
                _duration(grace_seconds(config)),
            )
        elif event.code == EVENT_JOB_MAX_INSTANCES and event.job_id == SEND_JOB:
            log.warning("a send is still running; this run of the send job is skipped")

    scheduler = build_scheduler(store)
    scheduler.add_listener(on_event, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
    try:
        scheduler.start(paused=True)
        try:
            now = _utcnow()
            sync_jobs(scheduler, config)
            missed = due_send(config, store, now=now)
            send = scheduler.get_job(SEND_JOB)
            if missed is not None and send.next_run_time > now:
                log.info("the send due at %s has not gone out; sending now", local(config, missed))
                scheduler.modify_job(SEND_JOB, next_run_time=missed)
            # Collect at once: shows the daemon works, and finishes deliveries a stop left.
            scheduler.modify_job(COLLECT_JOB, next_run_time=now)
            scheduler.resume()
            log.info(
                "digest run started: next send %s (%s), collecting every %s",
                local(config, scheduler.get_job(SEND_JOB).next_run_time),
                config.site.timezone,
                _duration(config.schedule.collect_every_minutes * 60),
            )
            if ready is not None:
                ready()
            while not stop.is_set():
                time.sleep(0.2)
        except KeyboardInterrupt:
            log.info("stopping: finishing the delivery in flight")
        finally:
            stop.set()
            if scheduler.running:
                scheduler.shutdown(wait=True)
    finally:
        with _RUNTIMES_LOCK:
            _RUNTIMES.pop(key, None)
        lock.release()
    if lock.lost.is_set():
        raise LockLostError(
            "another `digest run` took over this store (this one looked dead to it); "
            "check that only one daemon is configured"
        )
    log.info("digest run stopped")
