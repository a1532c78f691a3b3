"""Send times across daylight-saving changes, the [schedule] table, and the job store sync."""

from __future__ import annotations

import pickle
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from digest.config import Config
from digest.config.load import load_config
from digest.errors import ConfigError
from digest.schedule import daemon
from digest.schedule.daemon import DailyTrigger
from digest.store import Store
from tests.helpers import stored_issue

BASE = """
[site]
name = "The Daily Digest"
url = "https://news.example.com"
timezone = "{zone}"

[[sources]]
name = "Example News"
url = "https://news.example.com/feed/"

[store]
url = "sqlite:///digest.db"
"""


def config(tmp_path: Path, schedule_toml: str = "", zone: str = "Europe/Berlin") -> Config:
    path = tmp_path / "config.toml"
    path.write_text(BASE.format(zone=zone) + schedule_toml, encoding="utf-8")
    return load_config(path)


def fire_times(trigger: DailyTrigger, start: datetime, until: datetime) -> list[datetime]:
    """Drive a trigger the way APScheduler does: previous fire time, 'now' just after it."""
    out: list[datetime] = []
    prev: datetime | None = None
    now = start
    while True:
        t = trigger.get_next_fire_time(prev, now)
        assert t is not None
        if t >= until:
            return out
        assert t.tzinfo is not None and t.utcoffset() == timedelta(0)  # always UTC
        out.append(t)
        prev, now = t, t + timedelta(milliseconds=5)


# -- daylight saving ------------------------------------------------------------------

# (zone, spring-forward day, fall-back day, a time in the hour skipped / repeated)
DST = [
    ("Europe/Berlin", date(2026, 3, 29), date(2026, 10, 25), "02:30"),
    ("America/New_York", date(2026, 3, 8), date(2026, 11, 1), "02:30"),
    ("America/New_York", date(2026, 3, 8), date(2026, 11, 1), "01:30"),
]


@pytest.mark.parametrize(("zone", "spring", "fall", "at"), DST)
def test_exactly_one_send_every_day_of_the_year(
    zone: str, spring: date, fall: date, at: str
) -> None:
    tz = ZoneInfo(zone)
    trigger = DailyTrigger([at], "*", zone)
    start = datetime(2026, 1, 1, tzinfo=tz)
    times = fire_times(trigger, start, datetime(2027, 1, 1, tzinfo=tz))
    days = Counter(t.astimezone(tz).date() for t in times)
    assert len(days) == 365 and set(days.values()) == {1}
    assert times == sorted(times)
    walls = {t.astimezone(tz).date(): t.astimezone(tz).strftime("%H:%M") for t in times}
    skipped = at == "02:30"  # 02:30 does not exist on the spring-forward night (both zones)
    assert walls[spring] == ("03:30" if skipped else at)
    assert {w for d, w in walls.items() if d != spring} == {at}
    # Consecutive sends are a day apart, or a day +/- the one hour the clock moved.
    gaps = {(b - a) for a, b in zip(times, times[1:], strict=False)}
    assert gaps <= {timedelta(hours=h) for h in (23, 24, 25)}


@pytest.mark.parametrize(
    ("zone", "day", "at", "utc"),
    [
        ("Europe/Berlin", date(2026, 10, 25), "02:30", "00:30"),  # first 02:30 (CEST)
        ("America/New_York", date(2026, 11, 1), "01:30", "05:30"),  # first 01:30 (EDT)
        ("Europe/Berlin", date(2026, 3, 29), "02:30", "01:30"),  # = 03:30 CEST
        ("America/New_York", date(2026, 3, 8), "02:30", "07:30"),  # = 03:30 EDT
    ],
)
def test_dst_night_fires_once_at_a_known_instant(zone: str, day: date, at: str, utc: str) -> None:
    tz = ZoneInfo(zone)
    trigger = DailyTrigger([at], "*", zone)
    evening = datetime(day.year, day.month, day.day, tzinfo=tz) - timedelta(hours=3)
    times = fire_times(trigger, evening, evening + timedelta(hours=27))
    assert [f"{t:%Y-%m-%d %H:%M}" for t in times] == [f"{day} {utc}"]


def test_start_inside_repeated_hour_does_not_fire_again() -> None:
    """Starting during the repeated hour, after the first 02:30, waits for tomorrow."""
    trigger = DailyTrigger(["02:30"], "*", "Europe/Berlin")
    # 01:15 UTC is 02:15 CET, the second pass through 02:15; 02:30 CEST went by at 00:30.
    after_first = datetime(2026, 10, 25, 1, 15, tzinfo=UTC)
    assert trigger.get_next_fire_time(None, after_first) == datetime(
        2026, 10, 26, 1, 30, tzinfo=UTC
    )
    before_first = datetime(2026, 10, 25, 0, 15, tzinfo=UTC)  # 02:15 CEST
    assert trigger.get_next_fire_time(None, before_first) == datetime(
        2026, 10, 25, 0, 30, tzinfo=UTC
    )


def test_weekdays_and_several_times() -> None:
    tz = ZoneInfo("Europe/Berlin")
    trigger = DailyTrigger(["07:00", "18:30"], "mon-fri", "Europe/Berlin")
    start = datetime(2026, 3, 23, tzinfo=tz)  # a Monday; DST starts on Sunday the 29th
    times = [t.astimezone(tz) for t in fire_times(trigger, start, start + timedelta(days=14))]
    assert len(times) == 20
    assert {t.strftime("%a") for t in times} == {"Mon", "Tue", "Wed", "Thu", "Fri"}
    assert [t.strftime("%H:%M") for t in times[:4]] == ["07:00", "18:30", "07:00", "18:30"]


def test_trigger_pickles_for_the_job_store() -> None:
    trigger = DailyTrigger(["02:30"], "sat,sun", "America/New_York")
    copy = pickle.loads(pickle.dumps(trigger))
    assert str(copy) == str(trigger) == "daily[02:30 on sat,sun in America/New_York]"
    now = datetime(2026, 10, 30, 12, tzinfo=UTC)
    assert copy.get_next_fire_time(None, now) == trigger.get_next_fire_time(None, now)


# -- the [schedule] table -----------------------------------------------------------


def test_schedule_defaults_and_normalization(tmp_path: Path) -> None:
    assert config(tmp_path).schedule.send_at == ("07:00",)
    cfg = config(
        tmp_path,
        '[schedule]\nsend_at = ["18:30", "7:00", "07:00:00"]\ndays = "Mon-Fri, sun"\n'
        'quiet_day = "send"\ncollect_every_minutes = 15\n',
    )
    assert cfg.schedule.send_at == ("07:00", "18:30")
    assert cfg.schedule.days == "mon-fri,sun"
    assert cfg.schedule.quiet_day == "send"
    assert cfg.schedule.collect_every_minutes == 15.0
    days = {
        t.astimezone(cfg.site.tz).strftime("%a")
        for t in fire_times(
            daemon.send_trigger(cfg),
            datetime(2026, 3, 23, tzinfo=UTC),
            datetime(2026, 3, 30, tzinfo=UTC),
        )
    }
    assert days == {"Mon", "Tue", "Wed", "Thu", "Fri", "Sun"}
    one = config(tmp_path, '[schedule]\nsend_at = "06:05"\ndays = "daily"\n').schedule
    assert (one.send_at, one.days) == (("06:05",), "*")


@pytest.mark.parametrize(
    ("toml", "key", "hint"),
    [
        ('send_at = "25:00"', "schedule.send_at", '"HH:MM"'),
        ('send_at = "7"', "schedule.send_at", '"HH:MM"'),
        ("send_at = 7", "schedule.send_at", '["07:00", "18:00"]'),
        ("send_at = []", "schedule.send_at", '["07:00", "18:00"]'),
        ('days = "weekdays"', "schedule.days", "mon-fri"),
        ('days = "fri-mon"', "schedule.days", "fri-sun,mon-mon"),
        ('quiet_day = "maybe"', "schedule.quiet_day", '"skip" or "send"'),
        ("collect_every_minutes = 0", "schedule.collect_every_minutes", "greater than 0"),
        ("misfire_grace_minutes = -1", "schedule.misfire_grace_minutes", "0 or more"),
        ('send_time = "07:00"', "schedule.send_time", 'did you mean "send_at"'),
    ],
)
def test_schedule_errors_name_key_and_fix(tmp_path: Path, toml: str, key: str, hint: str) -> None:
    with pytest.raises(ConfigError) as err:
        config(tmp_path, f"[schedule]\n{toml}\n")
    message = str(err.value)
    assert f": {key}: " in message and hint in message and "\n" not in message


# -- job store ----------------------------------------------------------------------


def paused(store: Store) -> Any:
    scheduler = daemon.build_scheduler(store)
    scheduler.start(paused=True)
    return scheduler


def test_sync_jobs_keeps_unchanged_jobs_and_replaces_changed_ones(
    tmp_path: Path, store: Store
) -> None:
    cfg = config(tmp_path, '[schedule]\nsend_at = "07:00"\n')
    scheduler = paused(store)
    try:
        daemon.sync_jobs(scheduler, cfg)
        scheduler.add_job(daemon.collect_job, "interval", hours=1, id="leftover", args=("x",))
        # As if the daemon was down at 07:00: the stored run time lies in the past.
        missed = datetime.now(tz=UTC) - timedelta(minutes=5)
        scheduler.modify_job(daemon.SEND_JOB, next_run_time=missed)
    finally:
        scheduler.shutdown(wait=False)

    scheduler = paused(store)  # a restart with the same config keeps the missed run
    try:
        daemon.sync_jobs(scheduler, cfg)
        assert {j.id for j in scheduler.get_jobs()} == {
            daemon.COLLECT_JOB,
            daemon.SEND_JOB,
            daemon.DUE_JOB,
        }
        job = scheduler.get_job(daemon.SEND_JOB)
        assert job.next_run_time == missed
        assert job.coalesce is True and job.max_instances == 1
        assert job.misfire_grace_time == 30 * 60
        assert job.args == (str(cfg.path),)
        stored = daemon.next_run_times(store)
        assert abs(stored[daemon.SEND_JOB] - missed) < timedelta(milliseconds=1)

        later = config(tmp_path, '[schedule]\nsend_at = "08:15"\n')  # a changed config wins
        daemon.sync_jobs(scheduler, later)
        job = scheduler.get_job(daemon.SEND_JOB)
        assert job.next_run_time > datetime.now(tz=UTC)
        assert f"{job.next_run_time.astimezone(later.site.tz):%H:%M}" == "08:15"
    finally:
        scheduler.shutdown(wait=False)


def test_due_send_finds_a_send_missed_within_grace(tmp_path: Path, store: Store) -> None:
    cfg = config(tmp_path, '[schedule]\nsend_at = "07:00"\nmisfire_grace_minutes = 30\n')
    seven = datetime(2026, 3, 30, 5, 0, tzinfo=UTC)  # 07:00 CEST
    assert daemon.due_send(cfg, store, now=seven + timedelta(minutes=20)) == seven
    assert daemon.due_send(cfg, store, now=seven + timedelta(minutes=40)) is None
    assert daemon.due_send(cfg, store, now=seven - timedelta(minutes=1)) is None
    stored_issue(store, date="2026-03-30", created_at=seven)
    assert daemon.due_send(cfg, store, now=seven + timedelta(minutes=20)) is None
