"""Local-time delivery: slots across daylight saving, who is due when, and sending to them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from digest.cli import cli
from digest.config.load import load_config
from digest.schedule.due import plan_due, send_due
from digest.schedule.localtime import last_slot, next_slot, parse_hhmm, slot_on
from digest.store import Store, deliveries
from tests import configfile
from tests.helpers import stored_issue
from tests.smtpserver import LocalSMTPServer

ROOT = Path(__file__).resolve().parent.parent
BERLIN = ZoneInfo("Europe/Berlin")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
ISSUE_DATE = "2026-11-24"
COMPOSED = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)  # 07:00 in Berlin
# Each reader's 07:00 on the first local morning after the issue, as UTC.
ZONES = {
    "America/New_York": datetime(2026, 11, 24, 12, 0, tzinfo=UTC),  # EST, -5
    "Europe/Berlin": datetime(2026, 11, 24, 6, 0, tzinfo=UTC),  # CET, +1
    "Asia/Tokyo": datetime(2026, 11, 24, 22, 0, tzinfo=UTC),  # the 25th there, +9
    "Asia/Kolkata": datetime(2026, 11, 25, 1, 30, tzinfo=UTC),  # +5:30
    "Australia/Lord_Howe": datetime(2026, 11, 24, 20, 0, tzinfo=UTC),  # +11 in summer
}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[arg-type,misc]


# -- slots ------------------------------------------------------------------------


def test_spring_forward_gap_sends_at_the_next_valid_minute() -> None:
    # Berlin 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist.
    assert slot_on(date(2026, 3, 29), parse_hhmm("02:30"), BERLIN) == utc(2026, 3, 29, 1, 0)
    # Lord Howe 2026-10-04: 02:00 jumps half an hour to 02:30; 02:15 does not exist.
    assert slot_on(date(2026, 10, 4), parse_hhmm("02:15"), LORD_HOWE) == utc(2026, 10, 3, 15, 30)
    # A normal day is untouched.
    assert slot_on(date(2026, 3, 28), parse_hhmm("02:30"), BERLIN) == utc(2026, 3, 28, 1, 30)


def test_fall_back_night_has_one_slot_the_first_occurrence() -> None:
    # Berlin 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice.
    first = utc(2026, 10, 25, 0, 30)
    assert slot_on(date(2026, 10, 25), parse_hhmm("02:30"), BERLIN) == first
    second = utc(2026, 10, 25, 1, 30)  # the repeated 02:30 is no new slot
    assert last_slot(second, parse_hhmm("02:30"), BERLIN) == first
    assert next_slot(first, parse_hhmm("02:30"), BERLIN) == utc(2026, 10, 26, 1, 30)
    # Lord Howe 2026-04-05: 02:00 (+11) falls back to 01:30 (+10:30); 01:45 happens twice.
    assert slot_on(date(2026, 4, 5), parse_hhmm("01:45"), LORD_HOWE) == utc(2026, 4, 4, 14, 45)


@pytest.mark.parametrize("zone", sorted(ZONES))
def test_slots_land_on_local_seven_oclock(zone: str) -> None:
    tz = ZoneInfo(zone)
    slot = ZONES[zone]
    assert slot.astimezone(tz).strftime("%H:%M") == "07:00"
    assert last_slot(slot, parse_hhmm("07:00"), tz) == slot
    assert last_slot(slot - timedelta(minutes=1), parse_hhmm("07:00"), tz) < slot - timedelta(
        hours=23
    )


# -- who is due when ------------------------------------------------------------------


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Path, Store]]:
    """A Berlin site with one issue composed at its 07:00, and one reader per zone at 07:00."""
    config = configfile.write_config(tmp_path, smtp_port=2525)
    text = config.read_text(encoding="utf-8").replace(
        'timezone = "UTC"', 'timezone = "Europe/Berlin"'
    )
    config.write_text(text, encoding="utf-8")
    store = Store.open(f"sqlite:///{tmp_path / 'digest.db'}")
    for zone in ZONES:
        sub, _ = store.add_subscriber(f"{zone.split('/')[1].lower()}@example.org", now=COMPOSED)
        assert sub.id is not None
        store.set_preferences(sub.id, now=COMPOSED, timezone=zone, send_at="07:00")
    store.add_subscriber("default@example.org", now=COMPOSED)  # on the site's schedule
    store.start_opt_in(
        "pending@example.org", "", now=COMPOSED, resend=timedelta(0), valid=timedelta(hours=48)
    )
    issue_in(store)
    yield config, store
    store.close()


def issue_in(store: Store, date: str = ISSUE_DATE, created_at: datetime = COMPOSED) -> int:
    return stored_issue(store, date=date, created_at=created_at).id


def dry_run(config: Path, now: datetime) -> dict[str, dict[str, str | None]]:
    res = CliRunner().invoke(
        cli,
        ["--config", str(config), "send", "--due", "--dry-run", "--now", now.isoformat(), "--json"],
    )
    assert res.exit_code == 0, res.output
    return {row["email"]: row for row in json.loads(res.output)}


@pytest.mark.parametrize("zone", sorted(ZONES))
def test_each_reader_is_due_exactly_at_their_local_time(
    world: tuple[Path, Store], zone: str
) -> None:
    config, _store = world
    email = f"{zone.split('/')[1].lower()}@example.org"
    slot = ZONES[zone]
    before = dry_run(config, slot - timedelta(minutes=1))
    assert before[email]["action"] == "skip", before[email]
    at = dry_run(config, slot)
    assert at[email] == {
        "email": email,
        "issue": ISSUE_DATE,
        "action": "send",
        "reason": at[email]["reason"],
    }
    assert "has come" in str(at[email]["reason"])
    # Nobody else is due at that minute (the Berlin reader shares it with the default one).
    others = {e for e, row in at.items() if row["action"] == "send"} - {email}
    assert others <= {"default@example.org"}
    assert at["pending@example.org"]["action"] == "skip"
    assert at["pending@example.org"]["reason"] == "waiting for confirmation"
    # Still due a little later (a late daemon), not any more an hour later.
    assert dry_run(config, slot + timedelta(minutes=30))[email]["action"] == "send"
    assert dry_run(config, slot + timedelta(hours=1))[email]["action"] == "skip"


def test_the_issue_a_reader_gets_is_the_latest_released_before_their_time(
    world: tuple[Path, Store],
) -> None:
    config_path, store = world
    config = load_config(config_path)
    # Tokyo's 07:00 on the 25th comes before Berlin composes the 25th's issue.
    tokyo = ZONES["Asia/Tokyo"]
    issue_in(store, "2026-11-25", utc(2026, 11, 25, 6, 0))
    plan = {d.subscriber.email: d for d in plan_due(config, store, now=tokyo)}
    assert plan["tokyo@example.org"].issue == ISSUE_DATE
    # The next morning there they get the 25th's issue.
    plan = {d.subscriber.email: d for d in plan_due(config, store, now=tokyo + timedelta(days=1))}
    assert plan["tokyo@example.org"].issue == "2026-11-25"
    assert plan["tokyo@example.org"].action == "send"
    # An issue composed early (by hand) is released when composed.
    issue_in(store, "2026-11-26", utc(2026, 11, 25, 21, 0))
    plan = {d.subscriber.email: d for d in plan_due(config, store, now=tokyo + timedelta(days=1))}
    assert plan["tokyo@example.org"].issue == "2026-11-26"


def test_today_is_listed_before_it_is_composed_and_never_twice(
    world: tuple[Path, Store],
) -> None:
    config_path, store = world
    config = load_config(config_path)
    ny = ZONES["America/New_York"] + timedelta(days=1)  # 12:00Z on the 25th
    plan = {d.subscriber.email: d for d in plan_due(config, store, now=ny)}
    # The 25th's issue is scheduled at 06:00Z and not stored yet: a send composes it first.
    assert plan["new_york@example.org"].issue == "2026-11-25"
    assert plan["new_york@example.org"].issue_id is None
    assert "composed first" in plan["new_york@example.org"].reason
    # Once a reader has an issue it is never theirs again.
    issue_id = issue_in(store, "2026-11-25", utc(2026, 11, 25, 6, 0))
    sub = store.get_subscriber(email="new_york@example.org")
    assert sub is not None and sub.id is not None
    store.ledger.ensure_deliveries(issue_id, now=ny, only=[sub.id])
    with store.db.begin() as conn:
        conn.execute(sa.update(deliveries).values(status="sent"))
    plan = {d.subscriber.email: d for d in plan_due(config, store, now=ny)}
    assert plan["new_york@example.org"].action == "skip"
    assert plan["new_york@example.org"].reason == "already has the 2026-11-25 issue"


def test_fall_back_night_sends_once_and_the_gap_at_the_next_minute(tmp_path: Path) -> None:
    config_path = configfile.write_config(tmp_path, smtp_port=2525)
    config = load_config(config_path)
    store = Store.open(config.store.url)
    sub, _ = store.add_subscriber("night@example.org", now=utc(2026, 3, 1, 0, 0))
    assert sub.id is not None
    store.set_preferences(sub.id, now=utc(2026, 3, 1), timezone="Europe/Berlin", send_at="02:30")
    issue_in(store, "2026-03-28", utc(2026, 3, 28, 7, 0))

    def action(now: datetime) -> str:
        (due,) = plan_due(config, store, now=now)
        return due.action

    assert action(utc(2026, 3, 29, 0, 59)) == "skip"  # 01:59 CET, before the gap
    assert action(utc(2026, 3, 29, 1, 0)) == "send"  # 03:00 CEST, the next valid minute
    issue_id = issue_in(store, "2026-10-24", utc(2026, 10, 24, 7, 0))
    assert action(utc(2026, 10, 25, 0, 29)) == "skip"
    assert action(utc(2026, 10, 25, 0, 30)) == "send"  # the first 02:30 (CEST)
    store.ledger.ensure_deliveries(issue_id, now=utc(2026, 10, 25, 0, 30), only=[sub.id])
    with store.db.begin() as conn:
        conn.execute(sa.update(deliveries).values(status="sent"))
    assert action(utc(2026, 10, 25, 1, 30)) == "skip"  # the second 02:30 (CET): once only
    store.close()


def test_send_due_sends_each_zone_at_its_time_and_once(
    world: tuple[Path, Store], tmp_path: Path
) -> None:
    config_path, store = world
    with LocalSMTPServer() as smtp:
        text = config_path.read_text(encoding="utf-8").replace("port = 2525", f"port = {smtp.port}")
        config_path.write_text(text, encoding="utf-8")
        config = load_config(config_path)
        moments = sorted(ZONES.values())
        for moment in moments:
            for now in (moment - timedelta(minutes=1), moment, moment + timedelta(minutes=2)):
                send_due(config, store, now=now, compose=False)
        got = Counter(smtp.handler.recipients())
    expected = {f"{z.split('/')[1].lower()}@example.org" for z in ZONES} | {"default@example.org"}
    assert set(got) == expected and set(got.values()) == {1}
    assert "pending@example.org" not in got


# -- kill -9 in the middle of a time-zone batch -------------------------------------------


def _pids_with(marker: str) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    out.append(int(entry.name))
            except OSError:
                continue
    return out


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_kill_9_mid_zone_batch_then_resume_loses_and_duplicates_nothing(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    url = (
        request.getfixturevalue("pg_url")
        if backend == "postgresql"
        else f"sqlite:///{tmp_path / 'digest.db'}"
    )
    store = Store.open(url)
    ny = [f"ny{i:02d}@example.org" for i in range(40)]
    tokyo = [f"tokyo{i}@example.org" for i in range(10)]
    store.import_subscribers([(e, "", "active") for e in ny + tokyo], now=COMPOSED)
    store.import_preferences(
        [(e, "America/New_York", "07:00", ()) for e in ny]
        + [(e, "Asia/Tokyo", "07:00", ()) for e in tokyo],
        now=COMPOSED,
    )
    issue_id = issue_in(store)
    with LocalSMTPServer() as smtp:
        config = configfile.write_config(
            tmp_path,
            store_url=url,
            smtp_port=smtp.port,
            smtp={"connections": 2, "backoff": 0.05, "timeout": 5.0},
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT)}

        def send_at(now: datetime) -> list[str]:
            return [
                sys.executable, "-m", "digest", "--config", str(config),
                "send", "--due", "--now", now.isoformat(),
            ]  # fmt: skip

        smtp.handler.delay = 0.01
        proc = subprocess.Popen(send_at(ZONES["America/New_York"]), cwd=tmp_path, env=env)
        smtp.handler.kill_at = (15, proc.pid)
        try:
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == -signal.SIGKILL
        seen = len(smtp.messages)
        assert 15 <= seen < 40
        deadline = time.monotonic() + 10
        while _pids_with(str(config)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _pids_with(str(config)) == []
        assert len(smtp.messages) == seen
        if backend == "postgresql":
            # The killed sender's leases would run out after two minutes; end them now.
            with store.db.begin() as conn:
                conn.execute(sa.update(deliveries).values(claimed_until=COMPOSED))
        smtp.handler.kill_at = None
        resume = subprocess.run(
            send_at(ZONES["America/New_York"] + timedelta(minutes=3)),
            cwd=tmp_path,
            env=env,
            capture_output=True,
            timeout=120,
        )
        out = resume.stdout.decode() + resume.stderr.decode()
        assert resume.returncode in (0, 4), out  # 4: the killed message is flagged uncertain
        got = Counter(smtp.handler.recipients())
        assert set(got.values()) == {1}, "someone got two copies"
        counts = store.ledger.delivery_counts(issue_id)
        # Every New York reader has their copy or is flagged uncertain; Tokyo waits.
        assert counts.get("sent", 0) + counts.get("sending", 0) == 40
        assert not counts.get("pending")
        assert set(got) <= set(ny)
        # A reader without a copy is one of those flagged uncertain (the crash window).
        uncertain = {d.email for d in store.ledger.list_deliveries(issue_id, "sending")}
        assert set(ny) - set(got) <= uncertain
        assert counts.get("sent", 0) <= len(got) <= 40
        tokyo_run = subprocess.run(
            send_at(ZONES["Asia/Tokyo"]), cwd=tmp_path, env=env, capture_output=True, timeout=120
        )
        assert tokyo_run.returncode in (0, 4), tokyo_run.stderr.decode()
        got = Counter(smtp.handler.recipients())
    assert set(got.values()) == {1}
    assert set(tokyo) <= set(got)
    store.close()


def test_status_shows_the_next_send_per_time_zone_group(world: tuple[Path, Store]) -> None:
    config, _store = world
    res = CliRunner().invoke(cli, ["--config", str(config), "status"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    start = lines.index("local-time sends (next per time zone and delivery time):")
    groups = lines[start + 1 : start + 6]
    for zone in ZONES:
        if zone != "Europe/Berlin":
            (line,) = [g for g in groups if f" {zone} (" in g]
            assert line.endswith("1 reader(s) waiting") and " 07:00 " in line
    # The Berlin reader and the default reader share one group.
    assert any("Europe/Berlin" in g and g.endswith("2 reader(s) waiting") for g in groups)
