"""Benchmark `digest worker`: 50,000 subscribers, 1, 2 and 4 workers, PostgreSQL, an SMTP sink.

    python bench/bench_workers.py                       # throwaway local PostgreSQL server
    python bench/bench_workers.py -n 5000 --workers 1 2 --url postgresql+psycopg://me@db/bench

Each round starts from a fresh database holding N subscribers and one issue, starts
W `digest worker` processes ([smtp].connections each) against a minimal asyncio
SMTP sink in its own process, and waits until they exit. It prints messages/second (wall clock
from launch, and steady: first to last "sent" in the ledger), the CPU time that the
workers, PostgreSQL and the sink each spent per message, and from those where the
bottleneck is: the cores, or the waits on SMTP replies and commits. The CPU figures
include each worker's start-up (about 2 s), so use large N. With --url the
database named must be empty and is reused (its tables are dropped between rounds).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from bench_send import issue_content, start_sink  # noqa: E402  (beside this file)

from digest.store import Store  # noqa: E402
from digest.store.schema import metadata  # noqa: E402
from tests import configfile  # noqa: E402

NOW = datetime.now(tz=UTC)
DATE = NOW.strftime("%Y-%m-%d")
TICK = os.sysconf("SC_CLK_TCK")


def sink(port: int) -> None:
    """Serve a minimal SMTP sink: accept and count every message, keep nothing.

    Far cheaper per message than aiosmtpd, so the sink is not what is measured.
    """
    import asyncio

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 sink ESMTP\r\n")
        while line := await reader.readline():
            verb = line[:4].upper()
            if verb == b"DATA":
                writer.write(b"354 go on\r\n")
                await reader.readuntil(b"\r\n.\r\n")
                writer.write(b"250 OK queued\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                break
            elif verb == b"EHLO":
                writer.write(b"250-sink\r\n250 8BITMIME\r\n")
            else:
                writer.write(b"250 OK\r\n")
            await writer.drain()
        writer.close()

    async def serve() -> None:
        server = await asyncio.start_server(session, "127.0.0.1", port, limit=2**22)
        print("ready", flush=True)
        async with server:
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

    asyncio.run(serve())


def cpu_seconds(pids: list[int]) -> float:
    """Return the CPU seconds used so far by these processes and their reaped children.

    The reaped children count: PostgreSQL's backends end with the workers' sessions.
    """
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return total / TICK


def postgres_pids(data_dir: Path | None) -> list[int]:
    """Return the pids of the local PostgreSQL server and its backends (empty if remote)."""
    if data_dir is None:
        return []
    master = int((data_dir / "postmaster.pid").read_text().split()[0])
    pids = [master]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == master:
                pids.append(int(entry.name))
    return pids


def write_config(tmp: Path, url: str, port: int, connections: int) -> Path:
    return configfile.write_config(
        tmp, store_url=url, smtp_port=port, smtp={"connections": connections}
    )


def prepare(url: str, n: int) -> None:
    """Empty the database, then add N subscribers and one issue."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        metadata.drop_all(conn)
        conn.exec_driver_sql("DROP TABLE IF EXISTS apscheduler_jobs")
    engine.dispose()
    store = Store.open(url)
    store.import_subscribers(
        [(f"reader{i}@example.org", f"Reader {i}", "active") for i in range(n)], now=NOW
    )
    html, text = issue_content()
    store.create_issue(
        date=DATE,
        created_at=NOW,
        subject="The Daily Digest — Council approves transport budget",
        html=html,
        text=text,
        preheader="",
        article_ids=[],
    )
    store.close()


def steady_rate(url: str) -> float:
    """Return messages/second between the first and the last delivery marked sent."""
    store = Store.open(url)
    issue = store.issue_for_date(DATE)
    assert issue is not None
    sent = store.ledger.list_deliveries(issue.id, "sent")
    times = sorted(d.updated_at for d in sent if d.updated_at is not None)
    store.close()
    span = (times[-1] - times[0]).total_seconds()
    return (len(times) - 1) / span if span > 0 else float("nan")


def round_(
    args: argparse.Namespace, url: str, config: Path, workers: int, sink: int, pg: list[int]
) -> None:
    n = args.subscribers
    prepare(url, n)
    cmd = [sys.executable, "-m", "digest", "--config", str(config), "worker", "--date", DATE]
    cpu_sink, cpu_pg = cpu_seconds([sink]), cpu_seconds(pg)
    before = os.times()
    start = time.perf_counter()
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL) for _ in range(workers)]
    codes = [p.wait() for p in procs]
    elapsed = time.perf_counter() - start
    after = os.times()
    if any(codes):
        raise SystemExit(f"a worker failed: exit codes {codes}")
    per_k = 1000 / n
    used_workers = (after.children_user + after.children_system) - (
        before.children_user + before.children_system
    )
    used_sink = cpu_seconds([sink]) - cpu_sink
    used_pg = cpu_seconds(pg) - cpu_pg if pg else 0.0
    print(
        f"{workers} worker(s) x {args.connections} connections: "
        f"{n / elapsed:6.0f} msg/s from launch, {steady_rate(url):6.0f} msg/s steady; "
        f"CPU ms per message: workers {used_workers * per_k:.2f}, "
        f"postgres {used_pg * per_k:.2f}, sink {used_sink * per_k:.2f}",
        flush=True,
    )
    print(f"  bottleneck: {bottleneck(used_workers, used_pg, used_sink, n, elapsed)}", flush=True)


def bottleneck(workers: float, pg: float, sink: float, n: int, elapsed: float) -> str:
    """Say whether the cores or the waits limit the rate, and who uses the CPU."""
    cores = os.cpu_count() or 1
    total = workers + pg + sink
    busy = total / elapsed
    ceiling = cores * n / total  # messages/second with every core busy at this cost
    top, share = max(
        (
            ("the workers (rendering, SMTP, ledger writes)", workers),
            ("PostgreSQL", pg),
            ("the SMTP sink", sink),
        ),
        key=lambda item: item[1],
    )
    where = f"{top} use the most CPU ({share / total:.0%})"
    if busy >= 0.8 * cores:
        return (
            f"CPU: {busy:.1f} of {cores} cores busy, so this machine tops out near "
            f"{ceiling:.0f} msg/s; {where}; more workers help only on more cores or machines"
        )
    return (
        f"waiting: only {busy:.1f} of {cores} cores busy; each connection waits on SMTP "
        f"replies and PostgreSQL commits, so more connections or workers still add "
        f"throughput, up to about {ceiling:.0f} msg/s on this machine; {where}"
    )


def main() -> None:
    """Run the benchmark rounds and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--subscribers", type=int, default=50_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--connections", type=int, default=2, help="per worker")
    parser.add_argument("--url", default=None, help="an empty PostgreSQL database to use")
    parser.add_argument("--sink", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        sink(args.sink)
        return

    sink_proc, port = start_sink(__file__)
    assert sink_proc.stdin is not None
    server = None
    try:
        url = args.url
        if url is None:
            from tests.pgserver import LocalPostgres

            server = LocalPostgres().start()
            url = server.new_database()
        size = len(issue_content()[0]) / 1024
        where = "a local throwaway server" if server else url
        print(
            f"subscribers {args.subscribers}, message {size:.0f} KB HTML, "
            f"{os.cpu_count()} cores, PostgreSQL on {where}",
            flush=True,
        )
        with tempfile.TemporaryDirectory() as tmp:
            config = write_config(Path(tmp), url, port, args.connections)
            pg = postgres_pids(server.data if server else None)
            for workers in args.workers:
                round_(args, url, config, workers, sink_proc.pid, pg)
    finally:
        sink_proc.stdin.close()
        sink_proc.wait(timeout=10)
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
