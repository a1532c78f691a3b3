"""Benchmark the pipeline's hot paths and print the figures (not a test).

    python bench/bench_pipeline.py [--feeds 40] [--items 10] [--latency 0.2]

1. Collection of FEEDS x ITEMS (feeds + article pages) from a local HTTP server that
   answers each request after LATENCY seconds, vs a bare concurrent httpx fetch of the
   same URLs with the same concurrency (goal: ratio <= 1.3x).
2. Summarizer: ms per article (goal <= 15 ms) for the configured default method.
3. Render + inline of an issue with 30 roundup items (goal <= 100 ms).
4. Peak memory (max RSS) of the process.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from digest import pipeline  # noqa: E402
from digest.config import SummaryConfig  # noqa: E402
from digest.config.load import load_config  # noqa: E402
from digest.models import Article, Issue, Story  # noqa: E402
from digest.render import make_environment, render_issue  # noqa: E402
from digest.store import Store  # noqa: E402
from digest.summarize import summarize  # noqa: E402
from tests.httpserver import LocalHTTPServer, Response  # noqa: E402

NOW = datetime.now(tz=UTC)

SENTENCES = [
    "The regional government announced on Monday a plan to expand the rail network by 2030.",
    "Officials said the project would cost about 4 billion euros and create 12,000 jobs.",
    "The plan includes three new lines connecting the northern suburbs with the city centre.",
    "Critics argued that the timetable was unrealistic given recent delays on other projects.",
    "The transport minister said construction of the first line would begin next year.",
    "Local businesses welcomed the announcement, citing long commutes for their employees.",
    "Environmental groups said the plan should have included more cycling infrastructure.",
    "A public consultation on the route of the new lines will open in the spring.",
    "The opposition demanded an independent review of the projected costs.",
    "Passenger numbers on the existing network have grown by a fifth over the past decade.",
]


def article_text(i: int) -> str:
    paras = []
    for p in range(8):
        paras.append(" ".join(SENTENCES[(i + p + k) % len(SENTENCES)] for k in range(5)))
    return "\n\n".join(paras)


def page_html(i: int, title: str) -> str:
    body = "".join(f"<p>{p}</p>" for p in article_text(i).split("\n\n"))
    return (
        f"<!doctype html><html><head><title>{title}</title></head><body>"
        f"<nav><a href='/'>Home</a></nav><article><h1>{title}</h1>{body}</article>"
        "<footer>Share · Published by admin</footer></body></html>"
    )


def build_site(server: LocalHTTPServer, feeds: int, items: int, latency: float) -> list[str]:
    urls = []
    for f in range(feeds):
        entries = []
        for i in range(items):
            title = f"Story {f}-{i}: rail network expansion update"
            path = f"/p/{f}/{i}"
            server.routes[path] = Response(page_html(f * items + i, title), delay=latency)
            urls.append(server.url(path))
            when = format_datetime(NOW - timedelta(minutes=5 * i + f))
            entries.append(
                f"<item><title>{title}</title><link>{server.url(path)}</link>"
                f"<guid>g-{f}-{i}</guid><pubDate>{when}</pubDate></item>"
            )
        server.routes[f"/f/{f}"] = Response(
            '<?xml version="1.0"?><rss version="2.0"><channel><title>F</title>'
            f"<link>{server.base}/</link>{''.join(entries)}</channel></rss>",
            content_type="application/rss+xml",
            delay=latency,
        )
        urls.append(server.url(f"/f/{f}"))
    return urls


async def bare_fetch(urls: list[str], concurrency: int) -> float:
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency)) as client:

        async def one(url: str) -> None:
            async with sem:
                r = await client.get(url)
                r.raise_for_status()

        t0 = time.perf_counter()
        await asyncio.gather(*(one(u) for u in urls))
        return time.perf_counter() - t0


def bench_collect(feeds: int, items: int, latency: float) -> None:
    server = LocalHTTPServer().start()
    try:
        urls = build_site(server, feeds, items, latency)
        with tempfile.TemporaryDirectory() as tmp:
            cfg_path = Path(tmp) / "config.toml"
            sources = "".join(
                f'[[sources]]\nname = "Feed {f}"\nurl = "{server.url(f"/f/{f}")}"\n\n'
                for f in range(feeds)
            )
            cfg_path.write_text(
                '[site]\nname = "Bench"\nurl = "https://bench.example.org"\n'
                f'timezone = "UTC"\n\n{sources}[store]\nurl = "sqlite:///bench.db"\n'
                "[collect]\nmax_items_per_source = 100\n",
                encoding="utf-8",
            )
            config = load_config(cfg_path)
            concurrency = config.collect.concurrency
            bare = asyncio.run(bare_fetch(urls, concurrency))
            store = Store.open(config.store.url)
            t0 = time.perf_counter()
            report = pipeline.collect_articles(config, store, now=NOW)
            ours = time.perf_counter() - t0
            store.close()
        print(
            f"collection: {feeds} feeds x {items} items, {len(urls)} URLs, "
            f"{latency * 1000:.0f} ms latency, concurrency {concurrency}"
        )
        print(f"  bare concurrent fetch   {bare:6.2f} s")
        print(f"  digest collect+extract  {ours:6.2f} s  ({report.new_articles} articles stored)")
        print(f"  ratio                   {ours / bare:6.2f}x  (goal <= 1.3x)")
    finally:
        server.stop()


def bench_summarize(n: int = 200) -> None:
    method = SummaryConfig().method
    texts = [article_text(i) for i in range(n)]
    summarize(texts[0], sentences=3, method=method)  # warm caches
    times = []
    for t in texts:
        t0 = time.perf_counter()
        summarize(t, sentences=3, method=method)
        times.append((time.perf_counter() - t0) * 1000)
    words = statistics.mean(len(t.split()) for t in texts)
    print(f"summarizer ({method}, {words:.0f}-word articles, {n} runs)")
    print(
        f"  median {statistics.median(times):5.1f} ms/article, "
        f"p90 {sorted(times)[int(n * 0.9)]:5.1f} ms (goal <= 15 ms)"
    )


def bench_render(runs: int = 20) -> None:
    tz = ZoneInfo("Europe/Berlin")
    stories = []
    for i in range(31):
        art = Article(
            id=i,
            source=f"Source {i % 4}",
            guid=f"g{i}",
            url=f"https://news.example.com/{i}",
            title=f"Story {i}: rail network expansion update",
            text=article_text(i),
            published=NOW - timedelta(minutes=17 * i),
            image="https://news.example.com/i.jpg" if i == 0 else None,
        )
        stories.append(Story(art, tuple(SENTENCES[i % 10 : i % 10 + (3 if i == 0 else 1)])))
    issue = Issue(
        "Bench", "https://news.example.com", "2026-11-25", NOW, stories[0], tuple(stories[1:])
    )
    env = make_environment(None)
    kwargs = {
        "env": env,
        "now": NOW,
        "tz": tz,
        "unsubscribe_url": "https://x.example/u",
        "view_url": "https://x.example/a",
    }
    t0 = time.perf_counter()
    first = render_issue(issue, **kwargs)  # type: ignore[arg-type]
    cold = (time.perf_counter() - t0) * 1000
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        render_issue(issue, **kwargs)  # type: ignore[arg-type]
        times.append((time.perf_counter() - t0) * 1000)
    print(f"render + inline (1 lead + 30 roundup, {len(first.html.encode()) / 1024:.0f} KB HTML)")
    print(
        f"  first {cold:5.1f} ms, then median {statistics.median(times):5.1f} ms per issue "
        "(goal <= 100 ms)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--feeds", type=int, default=40)
    ap.add_argument("--items", type=int, default=10)
    ap.add_argument("--latency", type=float, default=0.2)
    args = ap.parse_args()
    bench_collect(args.feeds, args.items, args.latency)
    bench_summarize()
    bench_render()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (max RSS): {peak:.0f} MB")


if __name__ == "__main__":
    main()
