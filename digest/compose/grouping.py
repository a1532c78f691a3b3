"""Group articles that report the same event into stories.

Two articles are the same story only when their headlines AND their opening
paragraphs agree (TF-IDF cosine over the day's articles, so words every article uses
weigh little), their whole texts agree, and they share specific names or numbers.
Agreement on one of these alone is how different events on one topic look ("impeachment", "WeWork",
"Black Friday deals"), and a false merge hides a story from the reader, which is
worse than showing one story twice. Plain Python: a day is a few hundred articles.

Clusters grow by their strongest links first, and two clusters join only when every
pair across them is at least loosely alike, so no chain of near-misses glues
unrelated stories together.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations

from digest.models import Article

# The rule (read off the labelled pairs of bench/data/ and the merges it made on other
# news; see bench/eval_grouping.py). `title`, `lead` and `body` are cosines in [0, 1]
# (headline, opening paragraphs, whole text); `shared` counts names and numbers both
# articles mention in their headline or opening paragraphs.
#
#   strong link   body >= 0.38, and one of:                          the whole texts agree, and
#                 title >= 0.30 and lead >= 0.25 and shared >= 2     two outlets, one event
#                 title >= 0.45 and lead >= 0.12 and shared >= 2     near-identical headlines,
#                                                                    leads told differently
#                 lead >= 0.55 and shared >= 3                       a wire copy, retitled
#                 body >= 0.40 and title >= 0.28 and shared >= 1     a feature-style opening
#   loose link    title >= 0.15 and lead >= 0.10 and shared >= 1     needed by every pair of
#                 and body >= 0.25                                   a cluster that grows
#
# Different events on one subject ("Radcliffe yet to answer GB call" / "Radcliffe will
# compete in London") share names and headline words; what they do not share is most of
# their text, hence the body test on every link.
STRONG_TITLE = 0.30
STRONG_LEAD = 0.25
STRONG_SHARED = 2
STRONG_BODY = 0.38
FEATURE_BODY = 0.40
FEATURE_TITLE = 0.28
LOOSE_BODY = 0.25
SAME_TITLE = 0.45
SAME_TITLE_LEAD = 0.12
COPY_LEAD = 0.55
COPY_SHARED = 3
LOOSE_TITLE = 0.15
LOOSE_LEAD = 0.10
LOOSE_SHARED = 1

LEAD_WORDS = 90  # words of opening paragraphs compared
BODY_CHARS = 6000  # of the text compared as a whole (long pages say little more)
_WORD = re.compile(r"\w+", re.UNICODE)
_SENTENCE_START = re.compile(r"(?:^|[.!?:;\"“”]\s+|\n)(\w+)", re.UNICODE)
_PROSE_END = re.compile(r"[.!?…\"'”’)]\s*$")
_STEMMABLE = {
    "english", "german", "french", "spanish", "russian", "italian", "portuguese", "dutch",
}  # fmt: skip


@dataclass(frozen=True)
class PairScore:
    """How alike two articles are: headline, lead and body cosines, shared names/numbers."""

    title: float
    lead: float
    shared: int
    body: float = 0.0

    @property
    def strong(self) -> bool:
        """Return True when this pair alone is evidence of one event."""
        if self.body < STRONG_BODY or self.shared < LOOSE_SHARED:
            return False
        if self.body >= FEATURE_BODY and self.title >= FEATURE_TITLE:
            return True
        if self.shared < STRONG_SHARED:
            return False
        return (
            (self.title >= STRONG_TITLE and self.lead >= STRONG_LEAD)
            or (self.title >= SAME_TITLE and self.lead >= SAME_TITLE_LEAD)
            or (self.lead >= COPY_LEAD and self.shared >= COPY_SHARED)
        )

    @property
    def loose(self) -> bool:
        """Return True when this pair does not contradict being one event."""
        return (
            self.title >= LOOSE_TITLE
            and self.lead >= LOOSE_LEAD
            and self.shared >= LOOSE_SHARED
            and self.body >= LOOSE_BODY
        )


@dataclass(frozen=True)
class _Doc:
    title: Counter[str]
    lead: Counter[str]
    body: Counter[str]
    names: frozenset[str]


@lru_cache(maxsize=16)
def _stemmer(language: str) -> Callable[[str], str] | None:
    if language not in _STEMMABLE:
        return None
    from digest.summarize.tokenize import stemmer  # the summarizer's, with its stems

    return stemmer(language)


def _stop_words(language: str) -> frozenset[str]:
    from digest.summarize.tokenize import stop_words

    return stop_words(language)


def _normalize(text: str) -> str:
    # Curly apostrophes and the like, so "Spurs’" and "Spurs'" tokenize alike.
    return unicodedata.normalize("NFKC", text).replace("’", "'").replace("‘", "'")


def _terms(text: str, language: str) -> list[str]:
    stem = _stemmer(language)
    stops = _stop_words(language)
    out = []
    for w in _WORD.findall(_normalize(text).casefold()):
        if w in stops or (len(w) < 2 and not w.isdigit()):
            continue
        out.append(stem(w) if stem is not None else w)
    return out


def lead_text(text: str, words: int = LEAD_WORDS) -> str:
    """Return the opening paragraphs of an article: prose only, about `words` words.

    Lines before the first real paragraph (menus, "related" headlines, bylines that
    extraction let through) are skipped: they would make unrelated pages look alike.
    """
    out: list[str] = []
    count = 0
    for para in text.split("\n"):
        para = para.strip()
        n = len(para.split())
        if not out and (n < 8 or not _PROSE_END.search(para)):
            continue
        if n == 0:
            continue
        out.append(para)
        count += n
        if count >= words:
            break
    joined = " ".join(out) or text
    return " ".join(joined.split()[:words])


def _names(text: str, language: str) -> frozenset[str]:
    """Return the capitalized words (not sentence openers) and numbers of a text, as terms."""
    text = _normalize(text)
    openers = {m.start(1) for m in _SENTENCE_START.finditer(text)}
    stops = _stop_words(language)
    found: set[str] = set()
    for m in _WORD.finditer(text):
        w = m.group(0)
        if w.isdigit():
            if len(w) >= 2 or w != "0":
                found.add(w)
            continue
        if m.start() in openers or not w[:1].isupper() or len(w) < 2:
            continue
        low = w.casefold()
        if low in stops:
            continue
        found.update(_terms(low, language) or [low])
    return frozenset(found)


DocKey = tuple[str, str, str]  # title, text, language (the article's, else the fallback)
# Terms made ahead, in the extraction workers (`digest.compose.prepare`), by content.
_READY: dict[DocKey, _Doc] = {}
_READY_MAX = 20_000  # a day is a few hundred articles; a daemon must not grow forever


def doc_key(article: Article, language: str) -> DocKey:
    """Return what an article's terms depend on (`language`: the fallback, as grouped)."""
    return (article.title, article.text, article.language or language)


def make_doc(key: DocKey) -> _Doc:
    """Return the terms of the article `key` names: pure, the same wherever it runs."""
    from digest.summarize.tokenize import normalize_language

    # Articles carry ISO codes ("en"), the stemmers and stop words go by name
    # ("english"): without this, stored articles were compared unstemmed.
    title, text, language = key
    language = normalize_language(language)
    lead = lead_text(text)
    return _Doc(
        title=Counter(_terms(title, language)),
        lead=Counter(_terms(lead, language)),
        body=Counter(_terms(title + "\n" + text[:BODY_CHARS], language)),
        names=_names(title, language) | _names(lead, language),
    )


def remember(key: DocKey, doc: _Doc) -> None:
    """Keep terms made elsewhere (an extraction worker) for the grouping to come."""
    if len(_READY) >= _READY_MAX:
        _READY.clear()
    _READY[key] = doc


def _doc(article: Article, language: str) -> _Doc:
    key = doc_key(article, language)
    ready = _READY.get(key)
    return ready if ready is not None else make_doc(key)


def _idf(docs: Sequence[Counter[str]]) -> dict[str, float]:
    df: Counter[str] = Counter()
    for d in docs:
        df.update(d.keys())
    n = len(docs)
    return {t: math.log((1 + n) / (1 + c)) + 1 for t, c in df.items()}


def _weights(counts: Counter[str], idf: dict[str, float]) -> dict[str, float]:
    vec = {t: (1 + math.log(c)) * idf.get(t, 1.0) for t, c in counts.items()}
    norm = math.sqrt(sum(v * v for v in vec.values()))
    return {t: v / norm for t, v in vec.items()} if norm else {}


def _cosine(a: dict[str, float], b: dict[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(v * b.get(t, 0.0) for t, v in a.items())


class Similarity:
    """Pairwise likeness of one day's articles (IDF from that day's titles and leads)."""

    def __init__(self, articles: Sequence[Article], *, language: str = "english") -> None:
        self.articles = list(articles)
        self.docs = [_doc(a, language) for a in self.articles]
        # Headlines and leads weigh words by how many headlines and leads use them,
        # whole texts by how many texts do.
        idf = _idf([Counter(set(d.title) | set(d.lead)) for d in self.docs])
        body_idf = _idf([d.body for d in self.docs])
        self._title = [_weights(d.title, idf) for d in self.docs]
        self._lead = [_weights(d.lead, idf) for d in self.docs]
        self._body = [_weights(d.body, body_idf) for d in self.docs]

    def link(self, i: int, j: int) -> PairScore | None:
        """Return the score of a pair that is at least loosely alike, else None.

        The same answer as `score(i, j)` filtered by `loose`, cheapest test first: most
        pairs of a day share no name or no headline word, and then the lead and body
        cosines (the costly part: a body has hundreds of terms) are never computed.
        """
        if _language(self.articles[i]) != _language(self.articles[j]):
            return None
        shared = len(self.docs[i].names & self.docs[j].names)
        if shared < LOOSE_SHARED:
            return None
        title = _cosine(self._title[i], self._title[j])
        if title < LOOSE_TITLE:
            return None
        lead = _cosine(self._lead[i], self._lead[j])
        if lead < LOOSE_LEAD:
            return None
        s = PairScore(title, lead, shared, _cosine(self._body[i], self._body[j]))
        return s if s.loose else None

    def score(self, i: int, j: int) -> PairScore:
        """Return how alike articles i and j are."""
        if _language(self.articles[i]) != _language(self.articles[j]):
            return PairScore(0.0, 0.0, 0)
        return PairScore(
            title=_cosine(self._title[i], self._title[j]),
            lead=_cosine(self._lead[i], self._lead[j]),
            shared=len(self.docs[i].names & self.docs[j].names),
            body=_cosine(self._body[i], self._body[j]),
        )


def _language(article: Article) -> str:
    return (article.language or "").lower()


def group_articles(
    articles: Sequence[Article], *, language: str = "english"
) -> list[list[Article]]:
    """Return the articles grouped by story (each group in input order), groups in input order.

    Articles from one source are never grouped with each other: a site that runs two
    pieces on one event meant them as two.
    """
    n = len(articles)
    if n < 2:
        return [[a] for a in articles]
    sim = Similarity(articles, language=language)
    scores: dict[tuple[int, int], PairScore] = {}
    strong: list[tuple[float, int, int]] = []
    for i, j in combinations(range(n), 2):
        if articles[i].source == articles[j].source:
            continue
        s = sim.link(i, j)
        if s is not None:
            scores[(i, j)] = s
            if s.strong:
                strong.append((-(s.title + s.lead), i, j))
    cluster = list(range(n))
    members: dict[int, list[int]] = {i: [i] for i in range(n)}
    for _, i, j in sorted(strong):
        a, b = cluster[i], cluster[j]
        if a == b:
            continue
        pairs = [(min(x, y), max(x, y)) for x in members[a] for y in members[b]]
        if not all(p in scores for p in pairs):
            continue  # some pair across the two clusters is not alike at all
        if {articles[x].source for x in members[a]} & {articles[y].source for y in members[b]}:
            continue
        for y in members[b]:
            cluster[y] = a
        members[a].extend(members.pop(b))
    groups = sorted((sorted(m) for m in members.values()), key=lambda m: m[0])
    return [[articles[i] for i in m] for m in groups]
