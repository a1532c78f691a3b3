"""Measure story grouping on hand-labelled same-story groups.

    python bench/eval_grouping.py                       # extraction-dev labels (bench/data/)
    python bench/eval_grouping.py --heldout news-dev    # list every merge on unlabelled news

The labelled set is the 80 pages of ../shared/eval/extraction-dev, extracted with
`digest extract`'s extractor, each page's host standing for its source; labels live in
bench/data/grouping-dev.json (evaluation data: never shipped, never read by tests).
It prints pair precision and recall, complete groups (every member in one story),
false merges (stories joining articles of different labelled stories) and merged
hard negatives. `--heldout FILE` runs the grouping on a data set the rule was not
tuned on, as one "day" per chunk of 125 articles from different sources, and prints
every merge for a person to judge (false merges are what matter there).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from itertools import combinations
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digest.collect.extract import extract_page  # noqa: E402
from digest.compose.grouping import Similarity, group_articles  # noqa: E402
from digest.errors import ExtractError  # noqa: E402
from digest.models import Article  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval"
LABELS = ROOT / "bench" / "data" / "grouping-dev.json"


def load_dev() -> list[Article]:
    """Return the extraction-dev pages as articles, one source per host."""
    folder = EVAL / "extraction-dev"
    out = []
    for line in (folder / "truth.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        html = gzip.decompress((folder / "pages" / f"{item['id']}.html.gz").read_bytes())
        try:
            page = extract_page(html, item["url"])
            title, text = page.title or "", page.text
        except ExtractError:
            title, text = "", ""
        host = (urlsplit(item["url"]).hostname or "").removeprefix("www.")
        out.append(
            Article(
                source=host, guid=item["id"], url=item["url"], title=title, text=text,
                language="english",
            )
        )  # fmt: skip
    return out


def pairs_of(groups: list[list[str]]) -> set[tuple[str, str]]:
    """Return every unordered pair of ids that share a group."""
    return {tuple(sorted(p)) for g in groups for p in combinations(g, 2)}  # type: ignore[misc]


def score(predicted: list[list[str]], truth: list[list[str]], negatives: list[list[str]]) -> None:
    """Print pair precision/recall, complete groups and false merges."""
    label = {i: k for k, g in enumerate(truth) for i in g}
    pred_pairs, true_pairs = pairs_of(predicted), pairs_of(truth)
    hit = pred_pairs & true_pairs
    precision = len(hit) / len(pred_pairs) if pred_pairs else 1.0
    recall = len(hit) / len(true_pairs) if true_pairs else 1.0
    story_of = {i: k for k, g in enumerate(predicted) for i in g}
    complete = sum(1 for g in truth if len({story_of[i] for i in g}) == 1)
    false_stories = [g for g in predicted if len({label.get(i, f"single:{i}") for i in g}) > 1]
    wrong_pairs = pred_pairs - true_pairs
    neg_pairs = pairs_of(negatives) - true_pairs
    print(f"  pairs: predicted {len(pred_pairs)}, labelled {len(true_pairs)}, correct {len(hit)}")
    print(f"  pair precision {precision:.3f}  pair recall {recall:.3f}")
    print(f"  labelled groups complete (all members in one story): {complete}/{len(truth)}")
    print(
        f"  false merges: {len(false_stories)} stories joining different events "
        f"({len(wrong_pairs)} wrong pairs); hard-negative pairs merged: "
        f"{len(pred_pairs & neg_pairs)}/{len(neg_pairs)}"
    )


def dev(show: bool) -> None:
    """Score the grouping on the labelled extraction-dev set."""
    labels = json.loads(LABELS.read_text(encoding="utf-8"))
    articles = load_dev()
    groups = group_articles(articles)
    predicted = [[a.guid for a in g] for g in groups]
    ids = {a.guid for a in articles}
    strict = [g["ids"] for g in labels["groups"]]
    loose = strict + [g["ids"] for g in labels["borderline"]]
    negatives = [g["ids"] for g in labels["hard_negatives"]]
    assert all(i in ids for g in loose + negatives for i in g), "label names an unknown id"
    multi = [g for g in groups if len(g) > 1]
    print(f"extraction-dev: {len(articles)} articles, {len(multi)} multi-article stories")
    print("labels without borderline groups:")
    score(predicted, strict, negatives)
    print("labels with borderline groups as same-story:")
    score(predicted, loose, negatives)
    issue_check(articles)
    if show:
        for g in multi:
            print("  story:", " | ".join(a.title[:50] for a in g))
        by_id = {a.guid: k for k, a in enumerate(articles)}
        sim = Similarity(articles)
        for g in loose:
            for x, y in combinations(g, 2):
                s = sim.score(by_id[x], by_id[y])
                print(f"  labelled pair {x} {y}: {s}")


def issue_check(articles: list[Article]) -> None:
    """Compose the labelled day as an issue and check the hidden day's rules on it."""
    from collections import Counter
    from datetime import UTC, datetime

    from digest.compose import Rules, compose_issue, make_stories
    from digest.compose.document import issue_document

    rules = Rules()
    started = time.perf_counter()
    stories = make_stories(articles, rules)
    took = time.perf_counter() - started
    issue = compose_issue(
        stories, site_name="S", site_url="https://s.example/", now=datetime.now(tz=UTC),
        tz=UTC, rules=rules,
    )  # fmt: skip
    assert issue is not None
    doc = issue_document(issue, subject="S", language="english")
    every = [doc["lead"], *doc["stories"], *doc["more"]]
    urls = Counter(u for s in every for u in [s["url"], *(a["url"] for a in s["also"])])
    shown = Counter(s.article.source for s in issue.stories)
    top = max(s.outlets for s in stories)
    print(
        f"issue: {len(stories)} stories from {len(articles)} articles "
        f"(grouping {took * 1000:.0f} ms); lead has {issue.lead.outlets} outlets "
        f"(most: {top}): {issue.lead.article.title[:60]!r}"
    )
    print(
        f"  shown {len(issue.stories)}, more {len(issue.more)}; largest share of one source "
        f"{max(shown.values())} (cap {rules.max_per_source}); every URL exactly once: "
        f"{set(urls.values()) == {1} and len(urls) == len({a.url for a in articles})}"
    )


def heldout(path: Path, size: int) -> None:
    """Group unlabelled news in days of `size` articles; print each merge to be judged."""
    items = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    articles = [
        Article(
            source=f"src{k}", guid=str(it["id"]), url=f"https://example.com/{it['id']}",
            title=it.get("title") or "", text=it["text"], language="english",
        )
        for k, it in enumerate(items)
    ]  # fmt: skip
    merges = 0
    for start in range(0, len(articles), size):
        day = articles[start : start + size]
        for g in group_articles(day):
            if len(g) > 1:
                merges += 1
                print(f"- merged {len(g)}:")
                for a in g:
                    print(f"    {a.guid}: {a.title[:70]} / {a.text[:90]!r}")
    print(f"{path.name}: {len(articles)} articles in days of {size}: {merges} merged stories")


def main() -> None:
    """Run the evaluation named on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heldout", metavar="NAME", help="news-dev or cnndm-dev (unlabelled)")
    parser.add_argument("--day", type=int, default=125, help="articles per day for --heldout")
    parser.add_argument("--show", action="store_true", help="print stories and labelled pairs")
    args = parser.parse_args()
    if args.heldout:
        heldout(EVAL / f"{args.heldout}.jsonl", args.day)
    else:
        dev(args.show)


if __name__ == "__main__":
    main()
