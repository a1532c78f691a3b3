"""Stress lxml parsing from many threads: the shared-parser crash before, none after.

    python bench/stress_parser.py [--threads 16] [--seconds 60] [--modes shared,own,pool]

Each mode runs in a child process with faulthandler on, so a native crash is seen as the
child dying on a signal (or printing "Fatal Python error"), and reported:

- shared: what `digest` did before issue 21: many threads parse real pages with
  trafilatura's module-wide parser (`trafilatura.utils.load_html`, `HTML_PARSER`) and
  extract them. lxml does not support one parser used by several threads at once.
- own: threads parse with `digest.collect.extract`'s per-thread parser and run our
  `extract_page` (fast mode uses no shared parser).
- pool: what `digest` does now: `ExtractPool` worker processes, fed from many tasks.

Pages: ../shared/eval/extraction-dev/pages (or --pages DIR with *.html / *.html.gz).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import faulthandler
import gzip
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_PAGES = ROOT.parent / "shared" / "eval" / "extraction-dev" / "pages"


def load_pages(folder: Path) -> list[bytes]:
    """Return every page of `folder` (gunzipped)."""
    pages = []
    for p in sorted(folder.iterdir()):
        if p.name.endswith(".html.gz"):
            pages.append(gzip.decompress(p.read_bytes()))
        elif p.name.endswith(".html"):
            pages.append(p.read_bytes())
    if not pages:
        sys.exit(f"no pages in {folder}")
    return pages


def run_threads(mode: str, pages: list[bytes], threads: int, seconds: float) -> int:
    """Parse and extract `pages` from `threads` threads until `seconds` pass; return the count."""
    import trafilatura
    from trafilatura.utils import load_html

    from digest.collect.extract import _parse, extract_page
    from digest.errors import ExtractError

    ends = time.monotonic() + seconds
    done = [0] * threads

    def shared(i: int) -> None:
        k = i
        while time.monotonic() < ends:
            tree = load_html(pages[k % len(pages)])  # the one module-wide parser
            if tree is not None and k % 2 == 0:
                # digest's old extract_page: metadata pass, readability fallback (which
                # parses again with the same parser), tree surgery on a shared dict.
                trafilatura.bare_extraction(
                    tree, with_metadata=True, favor_precision=True, include_comments=False
                )
            k += threads
            done[i] += 1

    def own(i: int) -> None:
        k = i
        while time.monotonic() < ends:
            html = pages[k % len(pages)]
            _parse(html)
            if k % 2 == 0:
                with contextlib.suppress(ExtractError):
                    extract_page(html, "https://stress.invalid/")
            k += threads
            done[i] += 1

    target = shared if mode == "shared" else own
    workers = [threading.Thread(target=target, args=(i,)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return sum(done)


def run_pool(pages: list[bytes], tasks: int, seconds: float) -> int:
    """Feed `ExtractPool` from `tasks` concurrent tasks until `seconds` pass."""
    from digest.collect.pool import CRASHED, ExtractPool

    async def main() -> int:
        ends = time.monotonic() + seconds
        count = 0
        async with ExtractPool() as pool:

            async def feeder(i: int) -> None:
                nonlocal count
                k = i
                while time.monotonic() < ends:
                    res = await pool.extract(pages[k % len(pages)], "https://stress.invalid/")
                    if res == CRASHED:
                        raise SystemExit("a worker crashed")
                    k += tasks
                    count += 1

            await asyncio.gather(*(feeder(i) for i in range(tasks)))
        return count

    return asyncio.run(main())


def child(mode: str, folder: Path, threads: int, seconds: float) -> None:
    """Run one mode in this process and print how many pages it got through."""
    faulthandler.enable()
    pages = load_pages(folder)
    t0 = time.monotonic()
    if mode == "pool":
        n = run_pool(pages, threads, seconds)
    else:
        n = run_threads(mode, pages, threads, seconds)
    print(f"{n} pages in {time.monotonic() - t0:.0f} s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--modes", default="shared,own,pool")
    ap.add_argument("--pages", type=Path, default=DEFAULT_PAGES)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.pages, args.threads, args.seconds)
        return
    for mode in args.modes.split(","):
        t0 = time.monotonic()
        res = subprocess.run(
            [sys.executable, "-X", "faulthandler", __file__, "--child", mode,
             "--threads", str(args.threads), "--seconds", str(args.seconds),
             "--pages", str(args.pages)],
            capture_output=True, text=True, env={**os.environ, "PYTHONFAULTHANDLER": "1"},
        )  # fmt: skip
        took = time.monotonic() - t0
        fatal = "Fatal Python error" in res.stderr
        if res.returncode < 0:
            outcome = f"CRASHED on {signal.Signals(-res.returncode).name}"
        elif res.returncode != 0 or fatal:
            outcome = f"FAILED (exit {res.returncode}{', fatal error' if fatal else ''})"
        else:
            outcome = "ok"
        got = res.stdout.strip()
        print(f"{mode:7} {args.threads} threads/tasks, {took:5.1f} s: {outcome}; {got}")
        if outcome != "ok":
            tail = [ln for ln in res.stderr.splitlines() if ln.strip()][-12:]
            print("    " + "\n    ".join(tail))


if __name__ == "__main__":
    main()
