"""Run the test suite while other processes keep every core busy.

CI shares its 2 cores with whatever else runs; a test that waits a fixed time or
asserts a tight timing breaks there first. This starts one CPU-burning process per
core (niced no lower than the tests), runs pytest with the given arguments, stops
the burners and exits with pytest's status:

    python bench/busy_suite.py [pytest args…]
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BURN = "while True: pass"


def main() -> int:
    cores = os.cpu_count() or 2
    burners = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(cores)]
    start = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *sys.argv[1:]], cwd=ROOT
        )
    finally:
        for proc in burners:
            proc.kill()
            proc.wait()
    took = time.monotonic() - start
    print(f"busy_suite: {cores} burner(s); pytest exit {done.returncode} in {took:.0f} s")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
