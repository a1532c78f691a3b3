"""Collect a local 40-feed world again and again, looking for native crashes.

    python bench/soak_collect.py [--runs 50] [--feeds 40] [--items 10] [--pages 125]
                                 [--latency 0.2] [--command collect|preview]

Each run is `python -m digest collect` (or `preview`) with PYTHONFAULTHANDLER=1, a subprocess
with a fresh store, against the world of bench/bench_world.py (real article pages on
127.0.0.1, every answer after LATENCY seconds). A run that dies on a signal, prints
"Fatal Python error", exits non-zero or stores a different number of articles than the
first run is reported. Prints wall time and peak memory per run, then a summary.
"""

from __future__ import annotations

import argparse
import re
import signal
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_world import run_digest, start_world  # noqa: E402

_NEW = re.compile(r"(\d+) new article")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--feeds", type=int, default=40)
    ap.add_argument("--items", type=int, default=10)
    ap.add_argument("--pages", type=int, default=125)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--command", choices=("collect", "preview"), default="collect")
    args = ap.parse_args()
    problems: list[str] = []
    walls: list[float] = []
    peaks: list[float] = []
    expected: str | None = None
    with tempfile.TemporaryDirectory() as tmp:
        world = start_world(
            Path(tmp),
            feeds=args.feeds,
            items=args.items,
            pages=args.pages,
            latency=args.latency,
        )
        try:
            for i in range(1, args.runs + 1):
                run_dir = Path(tmp) / f"run{i}"
                run_dir.mkdir()
                config = run_dir / "config.toml"  # its relative store path: a fresh store
                config.write_text(world.config.read_text(encoding="utf-8"), encoding="utf-8")
                cmd = ["--config", str(config), args.command]
                if args.command == "preview":
                    cmd += ["--out", "p.html"]
                run = run_digest(cmd, run_dir, env={"PYTHONFAULTHANDLER": "1"})
                found = _NEW.findall(run.stdout)
                stored = found[-1] if found else "?"
                verdict = "ok"
                if run.returncode < 0:
                    verdict = f"DIED on {signal.Signals(-run.returncode).name}"
                elif "Fatal Python error" in run.stderr:
                    verdict = "FATAL ERROR printed"
                elif run.returncode != 0:
                    verdict = f"exit {run.returncode}"
                elif expected is None:
                    expected = stored
                elif stored != expected:
                    verdict = f"stored {stored} articles, first run {expected}"
                crashed = "extraction crashed" in run.stdout + run.stderr
                if crashed and verdict == "ok":
                    verdict = "ok, but an extraction worker crashed (page used feed text)"
                if verdict != "ok":
                    problems.append(f"run {i}: {verdict}")
                    tail = [ln for ln in run.stderr.splitlines() if ln.strip()][-15:]
                    print("    " + "\n    ".join(tail))
                walls.append(run.wall)
                peaks.append(run.peak_tree_pss_mb)
                print(
                    f"run {i:3}: {verdict:<10} {run.wall:6.2f} s  {stored} articles  "
                    f"peak RSS {run.peak_rss_mb:4.0f} MB, with workers "
                    f"RSS {run.peak_tree_mb:4.0f} MB PSS {run.peak_tree_pss_mb:4.0f} MB",
                    flush=True,
                )
        finally:
            world.stop()
    print(
        f"\n{args.runs} runs of `digest {args.command}` ({args.feeds} feeds x {args.items} items, "
        f"{args.pages} pages, {args.latency * 1000:.0f} ms latency): {len(problems)} problem(s)"
    )
    print(
        f"wall: median {statistics.median(walls):.2f} s, max {max(walls):.2f} s; "
        f"peak PSS with workers: median {statistics.median(peaks):.0f} MB, max {max(peaks):.0f} MB"
    )
    for p in problems:
        print("  " + p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
