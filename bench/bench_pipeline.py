"""Benchmark the pipeline's hot paths and print the figures (not a test).

    python bench/bench_pipeline.py [--feeds 40] [--items 10] [--pages 125] [--latency 0.2]
                                   [--straggler 3.0]

1. The whole `digest preview` (a subprocess, fresh store) on FEEDS x ITEMS items over
   PAGES real article pages (bench/bench_world.py) from a local HTTP server answering each
   request after LATENCY seconds, vs a bare fetch of the same URLs with 64 requests in
   parallel, measured in the same run (goal: ratio <= 3.0x); peak memory of the preview.
   Then the same world with one straggler: the first feed answers after STRAGGLER
   seconds (pages of the other feeds need not wait for it).
2. Summarizer: ms per article (goal <= 15 ms) for the configured default method.
3. Render + inline of an issue with 30 roundup items (goal <= 100 ms).
4. Peak memory (max RSS) of the process.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_world import bare_fetch, run_digest, start_world  # noqa: E402

from digest.config import SummaryConfig  # noqa: E402
from digest.models import Article, Issue, Story  # noqa: E402
from digest.render import make_environment, render_issue  # noqa: E402
from digest.summarize import summarize  # noqa: E402

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


def bench_preview(
    feeds: int, items: int, pages: int, latency: float, straggler: float = 0.0
) -> None:
    """Time the whole `digest preview` (fresh store) against a bare 64-way parallel fetch."""
    with tempfile.TemporaryDirectory() as tmp:
        world = start_world(
            Path(tmp),
            feeds=feeds,
            items=items,
            pages=pages,
            latency=latency,
            straggler=straggler,
        )
        try:
            bare_before = bare_fetch(world.urls, 64)
            args = ["--config", str(world.config), "preview", "--out", "p.html"]
            run = run_digest(args, Path(tmp))
            bare_after = bare_fetch(world.urls, 64)
        finally:
            world.stop()
    if run.returncode != 0:
        print(run.stdout[-2000:], run.stderr[-2000:])
        raise SystemExit(f"digest preview failed (exit {run.returncode})")
    bare = (bare_before + bare_after) / 2
    print(
        f"digest preview: {feeds} feeds x {items} items, {pages} pages, {len(world.urls)} URLs, "
        f"{latency * 1000:.0f} ms latency, fresh store"
        + (f"; one feed answers after {straggler:.1f} s" if straggler else "")
    )
    print(
        f"  bare fetch, 64 in parallel  {bare:6.2f} s  "
        f"(before {bare_before:.2f}, after {bare_after:.2f})"
    )
    print(
        f"  digest preview (whole)      {run.wall:6.2f} s  "
        f"({run.cpu:.1f} s CPU in all its processes; load average now "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )
    goal = "" if straggler else "  (goal <= 3.0x)"
    print(f"  ratio                       {run.wall / bare:6.2f}x{goal}")
    print(
        f"  peak RSS: digest {run.peak_rss_mb:.0f} MB; with extraction workers and "
        f"forkserver: RSS summed {run.peak_tree_mb:.0f} MB, PSS summed "
        f"{run.peak_tree_pss_mb:.0f} MB (goal <= 300 MB)"
    )


def bench_summarize(n: int = 200) -> None:
    method = SummaryConfig().method
    # Each text different: summaries remember an article's sentences (lead, then one line).
    texts = [f"{article_text(i)}\n\nThis was report number {i} of the series." for i in range(n)]
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
    ap.add_argument("--pages", type=int, default=125)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument(
        "--straggler",
        type=float,
        default=3.0,
        help="then again with one feed answering this late (seconds; 0: skip)",
    )
    args = ap.parse_args()
    bench_preview(args.feeds, args.items, args.pages, args.latency)
    if args.straggler:
        bench_preview(args.feeds, args.items, args.pages, args.latency, args.straggler)
    bench_summarize()
    bench_render()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (max RSS): {peak:.0f} MB")


if __name__ == "__main__":
    main()
