"""A local news world for benchmarks: FEEDS feeds x ITEMS items over ~125 real article pages.

Served by one HTTP server on 127.0.0.1 that answers every request after LATENCY seconds.
Pages are the real captured pages of ../shared/eval/extraction-dev (bench scripts may read
it), each served under several titles when more pages than captures are asked for; without
that folder they are generated from the test sentences.
"""

from __future__ import annotations

import asyncio
import gzip
import html
import multiprocessing
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from multiprocessing.connection import Connection
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.httpserver import LocalHTTPServer, Response  # noqa: E402

DEV_PAGES = ROOT.parent / "shared" / "eval" / "extraction-dev" / "pages"
# http.server's keep-alive handling stalls some reused connections for seconds on this
# machine; without keep-alive the bare fetch is 4x faster, so that is the fair baseline.
_CLOSE = {"Connection": "close"}
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.I | re.S)


@dataclass
class World:
    """The running world: its server process, every URL (feeds first) and a config file."""

    server: multiprocessing.process.BaseProcess
    urls: list[str]
    config: Path
    pages: int

    def stop(self) -> None:
        """Stop the server process."""
        self.server.terminate()
        self.server.join()


def _serve(server: LocalHTTPServer, conn: Connection) -> None:
    server.start()
    conn.send(server.port)
    conn.recv()  # serve until the parent goes away or says so


def _pages(n: int) -> list[tuple[str, bytes]]:
    """Return n (title, html) pages: real captures first, then retitled copies of them."""
    base: list[tuple[str, bytes]] = []
    if DEV_PAGES.is_dir():
        for p in sorted(DEV_PAGES.glob("*.html.gz")):
            body = gzip.decompress(p.read_bytes())
            m = _TITLE.search(body)
            raw = m.group(1).decode("utf-8", "replace") if m else p.stem
            title = html.unescape(re.sub(r"\s+", " ", raw)).strip()[:120] or p.stem
            base.append((title, body))
    if not base:
        sentence = "The council met on Tuesday and agreed to spend more on buses and trams."
        for i in range(20):
            paras = "".join(f"<p>{sentence} Paragraph {k} of story {i}.</p>" for k in range(8))
            body = f"<html><head><title>Story {i}</title></head><body><article>{paras}"
            base.append((f"Story {i}", (body + "</article></body></html>").encode()))
    out = []
    for i in range(n):
        title, body = base[i % len(base)]
        if i >= len(base):
            title = f"{title} (part {i // len(base) + 1})"
        out.append((title, body))
    return out


def start_world(
    folder: Path,
    *,
    feeds: int = 40,
    items: int = 10,
    pages: int = 125,
    latency: float = 0.2,
    straggler: float = 0.0,
) -> World:
    """Start the server, write `folder`/config.toml (fresh store in `folder`), return the world.

    With `straggler` (seconds), the first feed answers that late, as one slow site does
    on a real day; its pages answer after `latency` like the rest.

    The server runs in a process of its own: sharing the GIL with a client measured
    against it (64 server threads waking at once) would slow that client down.
    """
    server = LocalHTTPServer()
    now = datetime.now(tz=UTC)
    page_urls = []
    for i, (_title, body) in enumerate(_pages(pages)):
        path = f"/article/{i}.html"
        server.routes[path] = Response(body, delay=latency, headers=_CLOSE)
        page_urls.append(server.url(path))
    titles = [t for t, _ in _pages(pages)]
    feed_urls = []
    for f in range(feeds):
        entries = []
        for j in range(items):
            k = (f * items + j) % pages
            when = format_datetime(now - timedelta(minutes=3 * j + f))
            entries.append(
                f"<item><title>{html.escape(titles[k])}</title><link>{page_urls[k]}</link>"
                f"<guid>g-{f}-{j}</guid><pubDate>{when}</pubDate>"
                f"<description>Feed summary of story {k}.</description></item>"
            )
        path = f"/feed/{f}.xml"
        server.routes[path] = Response(
            '<?xml version="1.0"?><rss version="2.0"><channel><title>Feed</title>'
            f"<link>{server.base}/</link>{''.join(entries)}</channel></rss>",
            content_type="application/rss+xml",
            delay=straggler if f == 0 and straggler else latency,
            headers=_CLOSE,
        )
        feed_urls.append(server.url(path))
    sources = "".join(
        f'[[sources]]\nname = "Feed {f}"\nurl = "{u}"\n\n' for f, u in enumerate(feed_urls)
    )
    parent, child = multiprocessing.get_context("fork").Pipe()
    proc = multiprocessing.get_context("fork").Process(target=_serve, args=(server, child))
    proc.start()
    if parent.recv() != server.port:
        raise RuntimeError("world server did not start")
    config = folder / "config.toml"
    config.write_text(
        '[site]\nname = "Bench"\nurl = "https://bench.example.org"\ntimezone = "UTC"\n\n'
        f'{sources}[store]\nurl = "sqlite:///bench.db"\n\n'
        "[compose]\nmax_roundup = 30\n",
        encoding="utf-8",
    )
    return World(proc, feed_urls + page_urls, config, pages)


async def _bare(urls: list[str], parallel: int) -> float:
    sem = asyncio.Semaphore(parallel)
    limits = httpx.Limits(max_connections=parallel, max_keepalive_connections=parallel)
    async with httpx.AsyncClient(limits=limits) as client:

        async def one(url: str) -> None:
            async with sem:
                r = await client.get(url)
                r.raise_for_status()

        t0 = time.perf_counter()
        await asyncio.gather(*(one(u) for u in urls))
        return time.perf_counter() - t0


def bare_fetch(urls: list[str], parallel: int = 64) -> float:
    """Return the wall time of fetching `urls` with `parallel` requests at once (httpx)."""
    return asyncio.run(_bare(urls, parallel))


def _tree_rss(root: int, cpu: dict[int, float] | None = None) -> tuple[int, int]:
    """Return the summed RSS and PSS (kB) of `root` and all its descendants.

    PSS counts a page shared by n processes as 1/n in each: forked workers share most of
    the forkserver's memory, which a plain RSS sum counts once per process. `cpu` gets
    each process's CPU seconds so far (user + system).
    """
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    stats: dict[int, float] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        children.setdefault(int(fields[1]), []).append(int(d))
        if cpu is not None:
            stats[int(d)] = (int(fields[11]) + int(fields[12])) / tick
    rss, pss, todo = 0, 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        if cpu is not None and pid in stats:
            cpu[pid] = stats[pid]
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            continue
    return rss, pss


@dataclass
class Run:
    """One `digest` subprocess: exit code, wall time, output, peak memory."""

    returncode: int
    wall: float
    stdout: str
    stderr: str
    peak_rss_mb: float  # the digest process itself
    peak_tree_mb: float  # digest + extraction workers + forkserver, RSS summed
    peak_tree_pss_mb: float  # the same, proportional set size (shared pages split)
    cpu: float  # CPU seconds of the whole tree (last sample of each process)


def run_digest(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> Run:
    """Run `python -m digest ARGS` in `cwd`, sampling its process tree's memory."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "digest", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peaks = [0, 0, 0]
    cpu: dict[int, float] = {}

    def sample() -> None:
        while proc.poll() is None:
            try:
                own = Path(f"/proc/{proc.pid}/status").read_text()
                rss = next(int(x.split()[1]) for x in own.splitlines() if x.startswith("VmRSS"))
                peaks[0] = max(peaks[0], rss)
            except (OSError, StopIteration):
                pass
            rss, pss = _tree_rss(proc.pid, cpu)
            peaks[1] = max(peaks[1], rss)
            peaks[2] = max(peaks[2], pss)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    sampler.join()
    mb = [p / 1024 for p in peaks]
    return Run(proc.returncode, wall, out, err, mb[0], mb[1], mb[2], sum(cpu.values()))
