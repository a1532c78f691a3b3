"""Score article extraction on the dev set and print the figures (not a test).

    python bench/eval_extract.py [--data ../shared/eval/extraction-dev] [--split all|tune|heldout]
                                 [--ablate] [--worst 5]

Token F1 per page (lower-cased \\w+ tokens, multiset overlap) against the hand-marked
article body, for `digest extract` (ours) and for trafilatura alone
(`extract(favor_precision=True, include_comments=False)`). Prints mean/median F1, empty
pages and CPU ms/page (median, one process, after a warm-up).

The pages are split in two halves by a hash of their id: rules were chosen looking at
`tune`; `heldout` is the half to quote as the unbiased figure. `--ablate` scores ours with
each clean-up rule switched off in turn: a rule whose removal raises F1 does not earn
its place.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from digest.collect import extract as ours  # noqa: E402
from digest.errors import ExtractError  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "eval" / "extraction-dev"
_TOKEN = re.compile(r"\w+", re.UNICODE)


def tokens(text: str) -> Counter[str]:
    """Return the multiset of lower-cased word tokens."""
    return Counter(_TOKEN.findall(text.lower()))


def f1(got: str, truth: str) -> float:
    """Return token F1 of `got` against `truth` (0 when either is empty)."""
    a, b = tokens(got), tokens(truth)
    overlap = sum((a & b).values())
    if not overlap:
        return 0.0
    p, r = overlap / sum(a.values()), overlap / sum(b.values())
    return 2 * p * r / (p + r)


def half(page_id: str) -> str:
    """Return 'tune' or 'heldout' for a page, fixed by a hash of its id."""
    return "tune" if hashlib.sha256(page_id.encode()).digest()[0] % 2 == 0 else "heldout"


def load(data: Path, split: str) -> list[tuple[str, str, bytes, str]]:
    """Return (id, url, html bytes, truth body) for the pages of `split`."""
    out = []
    for line in (data / "truth.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if split != "all" and half(row["id"]) != split:
            continue
        html = gzip.decompress((data / "pages" / f"{row['id']}.html.gz").read_bytes())
        out.append((row["id"], row["url"], html, row["body"]))
    return out


def ours_text(html: bytes, url: str, rules: frozenset[str] = ours.RULES) -> str:
    """Return our article text ('' when extraction finds nothing)."""
    try:
        return ours.extract_page(html, url, rules=rules).text
    except ExtractError:
        return ""


def trafilatura_text(html: bytes, url: str) -> str:
    """Return trafilatura's precision-mode text ('' when it finds nothing)."""
    import trafilatura

    return trafilatura.extract(html, url=url, favor_precision=True, include_comments=False) or ""


def score(
    name: str, fn: Callable[[bytes, str], str], pages: list[tuple[str, str, bytes, str]]
) -> tuple[list[float], list[str]]:
    """Run `fn` on every page; print its line of the table; return F1s and texts."""
    fn(pages[0][2], pages[0][1])  # warm-up: imports and caches
    scores, texts, cpu = [], [], []
    for _, url, html, truth in pages:
        t0 = time.process_time()
        text = fn(html, url)
        cpu.append((time.process_time() - t0) * 1000)
        texts.append(text)
        scores.append(f1(text, truth))
    empties = sum(1 for t in texts if not t.strip())
    print(
        f"| {name:<28} | {statistics.mean(scores):.3f} | {statistics.median(scores):.3f} "
        f"| {empties} | {statistics.median(cpu):5.1f} |"
    )
    return scores, texts


def paired_ci(a: list[float], b: list[float], n: int = 2000) -> tuple[float, float]:
    """Return a 95% bootstrap interval for mean(a) - mean(b) over the same pages."""
    rng = random.Random(0)
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    means = sorted(statistics.mean(rng.choices(diffs, k=len(diffs))) for _ in range(n))
    return means[int(n * 0.025)], means[int(n * 0.975)]


def ablate(pages: list[tuple[str, str, bytes, str]]) -> None:
    """Print mean F1 of ours with each clean-up rule switched off in turn."""
    base = statistics.mean(f1(ours_text(h, u), t) for _, u, h, t in pages)
    print(f"\nablation (mean F1 with all rules: {base:.4f})")
    print("| rule switched off | mean F1 | change |\n|---|---|---|")
    for rule in sorted(ours.RULES):
        rules = ours.RULES - {rule}
        m = statistics.mean(f1(ours_text(h, u, rules), t) for _, u, h, t in pages)
        print(f"| {rule:<18} | {m:.4f} | {m - base:+.4f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--split", choices=("all", "tune", "heldout"), default="all")
    ap.add_argument("--ablate", action="store_true")
    ap.add_argument("--worst", type=int, default=0, help="list our N worst pages")
    args = ap.parse_args()
    pages = load(args.data, args.split)
    print(f"{len(pages)} pages ({args.split})")
    print("| extractor | mean F1 | median F1 | empty | CPU ms/page (median) |")
    print("|---|---|---|---|---|")
    mine, texts = score("digest extract", ours_text, pages)
    theirs, _ = score("trafilatura favor_precision", trafilatura_text, pages)
    lo, hi = paired_ci(mine, theirs)
    diff = statistics.mean(mine) - statistics.mean(theirs)
    print(
        f"difference of means (ours - trafilatura): {diff:+.4f}"
        f"  (95% paired bootstrap CI {lo:+.4f} .. {hi:+.4f})"
    )
    if args.ablate:
        ablate(pages)
    if args.worst:
        ranked = sorted(range(len(pages)), key=lambda i: mine[i])[: args.worst]
        for i in ranked:
            print(f"  {pages[i][0]} ours {mine[i]:.3f} trafilatura {theirs[i]:.3f} {pages[i][1]}")


if __name__ == "__main__":
    main()
