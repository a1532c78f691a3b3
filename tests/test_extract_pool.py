"""Extraction in worker processes: a worker that dies costs one page, never the run."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from digest.collect.pool import ABORT_URL_ENV, CRASHED, ExtractPool
from digest.config.load import load_config
from digest.models import Page
from digest.store import Store
from tests.httpserver import LocalHTTPServer, Response

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"
NOW = datetime.now(tz=UTC)
FEED_TEXT = (
    "Feed text of the harbour story: the committee approved the new harbour wall on Monday "
    "after a long debate, and construction starts in the spring with money from the port "
    "authority and the regional government, officials said in a statement on Monday night."
)


def article(title: str, n: int = 5) -> str:
    body = "".join(
        f"<p>Paragraph {i} of {title}: the council met on Tuesday and agreed, after hours of "
        "debate, to spend more on buses, trams and cycle lanes over the next five years.</p>"
        for i in range(n)
    )
    return f"<html><head><title>{title}</title></head><body><article>{body}</article></body></html>"


def wait_for(cond: object, timeout: float = 60.0) -> None:
    ends = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < ends, "condition not reached in time"
        time.sleep(0.02)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSEGV])
def test_worker_killed_while_extracting_is_replaced(sig: signal.Signals) -> None:
    """Kill the worker process for real while it holds a page; the pool goes on."""
    # Big enough that extraction is still running when the signal lands.
    big = article("Big page", 6000).encode()
    xiaomi = (DATA / "pages" / "xiaomi.html").read_bytes()

    async def run() -> tuple[Page | str, Page | str, list[int], list[int], int]:
        async with ExtractPool(workers=1) as pool:
            task = asyncio.create_task(pool.extract(big, "https://a.example/big"))
            ends = time.monotonic() + 60
            while not pool.pids():
                assert time.monotonic() < ends
                await asyncio.sleep(0.01)
            before = pool.pids()
            os.kill(before[0], sig)
            crashed = await task
            after_page = await pool.extract(xiaomi, "https://news.example.com/x")
            return crashed, after_page, before, pool.pids(), pool.crashes

    crashed, after_page, before, after, crashes = asyncio.run(run())
    assert crashed == CRASHED
    assert crashes == 1
    assert isinstance(after_page, Page) and "Lei Jun" in after_page.text
    assert after and after != before


def test_pool_extracts_pages_and_reports_extract_errors() -> None:
    async def run() -> list[Page | str]:
        async with ExtractPool(workers=2) as pool:
            pages = [article(f"Story {i}").encode() for i in range(6)]
            jobs = [pool.extract(p, f"https://a/{i}") for i, p in enumerate(pages)]
            jobs.append(pool.extract(b"<html><body></body></html>", "https://a/empty"))
            return list(await asyncio.gather(*jobs))

    results = asyncio.run(run())
    assert all(isinstance(r, Page) and "Paragraph 3 of Story" in r.text for r in results[:6])
    assert results[6] == "no article text found"


def test_collection_survives_a_worker_abort_and_uses_the_feed_text(
    http_server: LocalHTTPServer, tmp_path: Path
) -> None:
    """`digest collect` where one page aborts its worker (SIGABRT): exit 0, feed text kept."""
    s = http_server
    items = []
    for slug, title in (("calm", "Council backs cycle lanes"), ("crash", "Harbour wall approved")):
        s.routes[f"/{slug}"] = Response(article(title))
        items.append(
            f"<item><title>{title}</title><link>{s.url(f'/{slug}')}</link><guid>{slug}</guid>"
            f"<pubDate>{format_datetime(NOW - timedelta(hours=1))}</pubDate>"
            f"<description>{FEED_TEXT if slug == 'crash' else 'Short.'}</description></item>"
        )
    s.routes["/feed"] = Response(
        f"<rss version='2.0'><channel><title>T</title>{''.join(items)}</channel></rss>",
        content_type="application/rss+xml",
    )
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[site]\nname = "T"\nurl = "https://t.example.org"\n\n'
        f'[[sources]]\nname = "Local"\nurl = "{s.url("/feed")}"\n\n'
        '[store]\nurl = "sqlite:///state.db"\n',
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), ABORT_URL_ENV: s.url("/crash")}
    res = subprocess.run(
        [sys.executable, "-m", "digest", "--config", str(cfg), "collect"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr + res.stdout
    out = res.stdout + res.stderr
    assert "Fatal Python error" not in out
    assert out.count(CRASHED) == 1, out
    store = Store.open(load_config(cfg).store.url)
    texts = {a.url: a.text for a in store.unissued_articles(NOW - timedelta(days=1))}
    assert texts[s.url("/crash")] == FEED_TEXT
    assert "Paragraph 3 of Council backs cycle lanes" in texts[s.url("/calm")]


def _exited(pid: int) -> bool:
    """True when `pid` ran to its end: no such process, or a zombie its parent (the
    forkserver) has not reaped yet."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def test_renewed_workers_are_fresh_processes_and_the_old_ones_are_gone() -> None:
    """After the pages: new workers from the forkserver, the old ones (and their memory)
    gone before the new ones start; work goes on in them."""

    async def run() -> tuple[list[int], list[int], bool, Page | str, int | None]:
        async with ExtractPool(workers=2) as pool:
            first = await pool.extract(article("Before").encode(), "https://a.example/1")
            assert isinstance(first, Page)
            wait_for(lambda: len(pool.pids()) == 2)
            before = pool.pids()
            await pool.renew()
            wait_for(lambda: len(pool.pids()) == 2)
            after = pool.pids()
            gone = all(_exited(pid) for pid in before)
            page = await pool.extract(article("After").encode(), "https://a.example/2")
            answer = await pool.call(os.getpid)
            return before, after, gone, page, answer

    before, after, gone, page, answer = asyncio.run(run())
    assert not set(before) & set(after) and gone
    assert isinstance(page, Page) and "Paragraph 4 of After" in page.text
    assert answer in after
