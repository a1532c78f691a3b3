"""Score the summarizer's methods against reference summaries, beside Lead-3 (not a test).

    python bench/eval_summarizer.py FILE.jsonl [FILE.jsonl ...] [--methods position,lexrank]
        [--sentences 3] [--half a|b] [--source dailymail] [--by-source] [--bootstrap 1000]
        [--ablate] [--language english] [--max-words 60]

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
the order of the file): tune on one half, report on the other. `--source P` keeps the
articles whose `source` field starts with P (e.g. "dailymail", "cnn"); `--by-source` prints
one table per source family (the part of `source` before "/").

`--bootstrap N` adds the 95% confidence interval of each method's R-1 difference to Lead-N
(paired bootstrap over articles, N resamples, fixed seed): a gain whose interval holds 0 is
not one. `--ablate` also scores the default method with each of its rules switched off in
turn, so every rule's effect on each set can be read off (ΔR-1 against the full method).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rouge_score import rouge_scorer  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from digest.summarize import METHODS, _language, summarize  # noqa: E402
from digest.summarize.position import RULES, PositionSummarizer  # noqa: E402
from digest.summarize.tokenize import split_paragraphs, split_sentences  # noqa: E402

LEAD3 = "Lead-N"
Summarizer = Callable[[dict[str, str]], Sequence[str]]


@dataclass(frozen=True)
class Row:
    name: str
    rouge1: float
    rouge2: float
    rouge_lsum: float
    words: float
    longest: int
    ms: float
    per_article: tuple[float, ...] = field(default=(), repr=False)  # R-1 of each article


def load(path: Path, half: str | None, source: str | None = None) -> list[dict[str, str]]:
    """Return the articles of a jsonl file, optionally one fixed half or one source of them."""
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
            origin = str(obj.get("source") or "")
            if source is not None and not origin.startswith(source):
                continue
            title = obj.get("title")
            rows.append(
                {
                    "id": ident,
                    "text": obj["text"],
                    "reference": obj["reference"],
                    "title": title if isinstance(title, str) else "",
                    "family": origin.split("/")[0] or path.stem,
                }
            )
    return rows


def in_half(ident: str) -> str:
    """Return "a" or "b": a fixed half of the data set that ignores file order."""
    return "ab"[hashlib.sha1(ident.encode("utf-8")).digest()[0] % 2]


def evaluate(name: str, articles: list[dict[str, str]], run: Summarizer) -> Row:
    """Summarize every article with `run` and return its mean scores and time."""
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeLsum"], use_stemmer=True)
    run(articles[0])  # warm caches (tokenizer models, stemmer) outside the timing
    r1, r2, rl, words, longest, seconds = [], [], [], [], 0, 0.0
    for art in articles:
        started = time.perf_counter()
        summary = run(art)
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
        tuple(100 * x for x in r1),
    )


def bootstrap(row: Row, base: Row, resamples: int) -> tuple[float, float]:
    """Return the 95% interval of row's mean R-1 minus base's (paired, over articles)."""
    diffs = [a - b for a, b in zip(row.per_article, base.per_article, strict=True)]
    rng = random.Random(0)
    n = len(diffs)
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    return means[int(0.025 * resamples)], means[min(int(0.975 * resamples), resamples - 1)]


def ablated(rule: str, n: int, language: str, max_words: int) -> Summarizer:
    """Return the default method with one rule switched off."""
    ranker: PositionSummarizer = copy.copy(_language(language).ranker("position"))
    ranker.rules = ranker.rules - {rule}

    def run(art: dict[str, str]) -> Sequence[str]:
        texts = [s for p in split_paragraphs(art["text"]) for s in split_sentences(p, language)]
        decisions = ranker.decide(texts, n, title=art["title"] or None, max_words=max_words)
        return [d.text for d in decisions if d.chosen]

    return run


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, score each file and print one table per file (or source)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE.jsonl")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated")
    parser.add_argument("--sentences", "-n", type=int, default=3)
    parser.add_argument("--half", choices=("a", "b"), default=None)
    parser.add_argument("--source", default=None, help="keep sources starting with this")
    parser.add_argument("--by-source", action="store_true", help="one table per source family")
    parser.add_argument("--bootstrap", type=int, default=0, metavar="N", help="resamples")
    parser.add_argument("--ablate", action="store_true", help="switch each rule off in turn")
    parser.add_argument("--language", default="english")
    parser.add_argument("--max-words", type=int, default=60)
    args = parser.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)}; use some of {', '.join(METHODS)}")
    n = args.sentences

    def lead(art: dict[str, str]) -> Sequence[str]:
        return split_sentences(art["text"], args.language)[:n]

    def method_runner(method: str) -> Summarizer:
        def run(art: dict[str, str]) -> Sequence[str]:
            return summarize(
                art["text"],
                sentences=n,
                method=method,
                language=args.language,
                max_words=args.max_words,
                title=art["title"] or None,
            )

        return run

    for path in args.files:
        articles = load(path, args.half, args.source)
        groups: dict[str, list[dict[str, str]]] = {path.name: articles}
        if args.by_source:
            groups = {}
            for art in articles:
                groups.setdefault(f"{path.name} [{art['family']}]", []).append(art)
        for label, group in groups.items():
            if not group:
                print(f"{label}: no articles")
                continue
            report(label, group, n, args, lead, method_runner, methods)
    return 0


def report(
    label: str,
    articles: list[dict[str, str]],
    n: int,
    args: argparse.Namespace,
    lead: Summarizer,
    method_runner: Callable[[str], Summarizer],
    methods: list[str],
) -> None:
    """Print one table: Lead-N, each method, and (with --ablate) each rule switched off."""
    part = f", half {args.half}" if args.half else ""
    print(f"\n{label}: {len(articles)} articles{part}, {n} sentences")
    ci = "  95% CI ΔR-1" if args.bootstrap else ""
    print(f"{'method':<24} {'R-1':>6} {'R-2':>6} {'R-Lsum':>6} {'ΔR-1':>6}", end=" ")
    print(f"{'words':>6} {'max':>4} {'ms':>6}{ci}")
    base = evaluate(LEAD3.replace("N", str(n)), articles, lead)
    rows = [base] + [evaluate(m, articles, method_runner(m)) for m in methods]
    if args.ablate:
        rows += [
            evaluate(f"position -{rule}", articles, ablated(rule, n, args.language, args.max_words))
            for rule in RULES
        ]
    for row in rows:
        line = (
            f"{row.name:<24} {row.rouge1:6.2f} {row.rouge2:6.2f} {row.rouge_lsum:6.2f} "
            f"{row.rouge1 - base.rouge1:+6.2f} {row.words:6.1f} {row.longest:4d} {row.ms:6.2f}"
        )
        if args.bootstrap and row is not base:
            low, high = bootstrap(row, base, args.bootstrap)
            line += f"  [{low:+.2f}, {high:+.2f}]"
        print(line, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
