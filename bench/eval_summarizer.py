"""Score the summarizer's methods against reference summaries, beside Lead-3 (not a test).

    python bench/eval_summarizer.py FILE.jsonl [FILE.jsonl ...] [--methods position,lexrank]
        [--sentences 3] [--half a|b] [--language english] [--max-words 60]

Each FILE holds one JSON object per line with `id`, `text` and `reference` (the reference
summary, one sentence or highlight per line); other fields are ignored. For every method
it prints ROUGE-1, ROUGE-2 and ROUGE-Lsum F1 x 100 (the `rouge-score` package, Porter
stemming on; for Lsum the chosen sentences are joined by newlines, as the reference lines
are), the mean words per summary, the words of the longest sentence chosen anywhere, and
the mean milliseconds `summarize` took per article (stemmer caches start cold, as in a
fresh `digest` run).

Lead-3 is the first N sentences of the text as the tokenizer splits it, with no filters:
the baseline news summarizers are measured against. `--half a` / `--half b` keep one of
two fixed halves of the articles (by a hash of the id, so the split does not depend on
the order of the file): tune on one half, report on the other.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rouge_score import rouge_scorer  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from digest.summarize import METHODS, summarize  # noqa: E402
from digest.summarize.tokenize import split_sentences  # noqa: E402

LEAD3 = "Lead-N"
Summarizer = Callable[[str], Sequence[str]]


@dataclass(frozen=True)
class Row:
    name: str
    rouge1: float
    rouge2: float
    rouge_lsum: float
    words: float
    longest: int
    ms: float


def load(path: Path, half: str | None) -> list[dict[str, str]]:
    """Return the articles of a jsonl file, optionally one fixed half of them."""
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            obj = json.loads(line)
            if not isinstance(obj.get("text"), str) or not isinstance(obj.get("reference"), str):
                raise SystemExit(f"{path}:{number}: needs string fields text and reference")
            ident = str(obj.get("id", number))
            if half is not None and in_half(ident) != half:
                continue
            rows.append({"id": ident, "text": obj["text"], "reference": obj["reference"]})
    return rows


def in_half(ident: str) -> str:
    """Return "a" or "b": a fixed half of the data set that ignores file order."""
    return "ab"[hashlib.sha1(ident.encode("utf-8")).digest()[0] % 2]


def evaluate(name: str, articles: list[dict[str, str]], run: Summarizer) -> Row:
    """Summarize every article with `run` and return its mean scores and time."""
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeLsum"], use_stemmer=True)
    run(articles[0]["text"])  # warm caches (tokenizer models, stemmer) outside the timing
    r1, r2, rl, words, longest, seconds = [], [], [], [], 0, 0.0
    for art in articles:
        started = time.perf_counter()
        summary = run(art["text"])
        seconds += time.perf_counter() - started
        scores = scorer.score(art["reference"], "\n".join(summary))
        r1.append(scores["rouge1"].fmeasure)
        r2.append(scores["rouge2"].fmeasure)
        rl.append(scores["rougeLsum"].fmeasure)
        words.append(sum(len(s.split()) for s in summary))
        longest = max([longest, *(len(s.split()) for s in summary)])
    return Row(
        name,
        100 * statistics.fmean(r1),
        100 * statistics.fmean(r2),
        100 * statistics.fmean(rl),
        statistics.fmean(words),
        longest,
        1000 * seconds / len(articles),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, score each file and print one table per file."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE.jsonl")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated")
    parser.add_argument("--sentences", "-n", type=int, default=3)
    parser.add_argument("--half", choices=("a", "b"), default=None)
    parser.add_argument("--language", default="english")
    parser.add_argument("--max-words", type=int, default=60)
    args = parser.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)}; use some of {', '.join(METHODS)}")
    n = args.sentences

    def lead(text: str) -> Sequence[str]:
        return split_sentences(text, args.language)[:n]

    def method_runner(method: str) -> Summarizer:
        def run(text: str) -> Sequence[str]:
            return summarize(
                text,
                sentences=n,
                method=method,
                language=args.language,
                max_words=args.max_words,
            )

        return run

    for path in args.files:
        articles = load(path, args.half)
        if not articles:
            print(f"{path}: no articles")
            continue
        part = f", half {args.half}" if args.half else ""
        print(f"\n{path.name}: {len(articles)} articles{part}, {n} sentences")
        print(f"{'method':<12} {'R-1':>6} {'R-2':>6} {'R-Lsum':>6} {'ΔR-1':>6}", end=" ")
        print(f"{'words':>6} {'max':>4} {'ms':>6}")
        base = evaluate(LEAD3.replace("N", str(n)), articles, lead)
        rows = [base] + [evaluate(m, articles, method_runner(m)) for m in methods]
        for row in rows:
            print(
                f"{row.name:<12} {row.rouge1:6.2f} {row.rouge2:6.2f} {row.rouge_lsum:6.2f} "
                f"{row.rouge1 - base.rouge1:+6.2f} {row.words:6.1f} {row.longest:4d} {row.ms:6.2f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
