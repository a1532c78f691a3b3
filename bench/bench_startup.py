"""How fast the CLI starts: `digest --help` and `digest subscribers list` (median of 10).

Goals: --help <= 0.3 s, subscribers list <= 0.5 s on the 2-core machine. Each run is a
fresh interpreter (`python -m digest`), on a config with one sample source and an
SQLite store holding 100 subscribers. Run it on a quiet machine:

    python bench/bench_startup.py [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOALS = {"--help": 0.3, "subscribers list": 0.5}


def timed(args: list[str], cwd: Path, runs: int) -> list[float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "digest", *args],
            cwd=cwd,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "config.toml").write_text(
            '[site]\nname = "Bench"\nurl = "https://example.org"\ntimezone = "UTC"\n\n'
            f'[[sources]]\nname = "Sample"\nurl = "{ROOT / "digest/sample/feed.xml"}"\n\n'
            '[store]\nurl = "sqlite:///digest.db"\n',
            encoding="utf-8",
        )
        rows = "".join(f"reader{i}@example.org,Reader {i}\n" for i in range(100))
        (folder / "readers.csv").write_text(rows, encoding="utf-8")
        timed(["subscribers", "import", "readers.csv"], folder, 1)  # creates the store
        baseline = statistics.median(timed_python(folder, runs))
        print(f"python -c pass            median {baseline * 1000:6.0f} ms")
        for label in GOALS:
            med = statistics.median(timed(label.split(), folder, runs))
            verdict = "ok" if med <= GOALS[label] else "OVER"
            goal = GOALS[label]
            print(f"digest {label:18} median {med * 1000:6.0f} ms  (goal {goal:.1f} s) {verdict}")


def timed_python(cwd: Path, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], cwd=cwd, check=True)
        times.append(time.perf_counter() - start)
    return times


if __name__ == "__main__":
    main()
