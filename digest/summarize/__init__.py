"""Pick the sentences that summarize an article, with sumy, offline.

Pure. The text is split with `digest.summarize.tokenize` (punkt models bundled in a package, no
NLTK data), sentences that cannot stand in a newsletter are dropped *before* ranking
(boilerplate, fragments, headings, over-long sentences, duplicates), and one of sumy's
rankers picks among the rest. What comes back is whole sentences of the input, in
article order, with runs of whitespace collapsed to one space.

The default method, "position", is `digest.summarize.position.PositionSummarizer`: the
lead sentences, skipping one only when it fails a named rule (boilerplate, a caption, a
repeat of the title, a fragment, …), and for a one-sentence summary the first sentence
that stands alone within `max_words_oneliner` words. On news it has never seen it is
never worse than the lead, which sumy's classic rankers ("lexrank", "textrank", "lsa",
"luhn", "kl", "sumbasic", "edmundson", all still selectable) are; "lead" takes the first
sentences that qualify. `explain` returns each decision with its reason.

The exceptions to verbatim output: when nothing else qualifies, one over-long sentence
is cut at the word cap and "…" appended, and a teaser's trailing "..." is written "…".
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from sumy.models.dom import ObjectDocumentModel, Paragraph, Sentence
from sumy.nlp.stemmers import null_stemmer

from digest.config import SUMMARY_METHODS
from digest.errors import SummaryError
from digest.summarize.position import Decision, PositionSummarizer, truncate
from digest.summarize.rules import is_boilerplate, word_count
from digest.summarize.tokenize import (
    AnyTokenizer,
    get_tokenizer,
    is_cjk,
    is_supported,
    normalize_language,
    per_language,
    split_paragraphs,
    stemmer,
    stop_words,
)
from digest.text.language import choose_language, to_code

log = logging.getLogger(__name__)

# "position" first: the default. The rest are sumy's classic rankers and the plain lead.
# The config validates against the same tuple.
METHODS: tuple[str, ...] = SUMMARY_METHODS
DEFAULT_METHOD = METHODS[0]

MIN_WORDS = 4  # fewer words than this is a fragment: "Mr.", "Share this", "By Jane Doe."

# A sentence must end like one; a headline or a label ("Related coverage") does not.
_TERMINAL = re.compile(r"[.!?…。！？][\"'”’»)\]」』）]*$")


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# sumy ships no stop words for these; the commonest function words are enough to keep
# them from dominating term weights.
_EXTRA_STOP_WORDS = {
    "russian": _set(
        """и в во не что он на я с со как а то все она так его но да ты к у же вы за бы по
        только ее её мне было вот от меня еще ещё нет о из ему теперь когда даже ну вдруг ли
        если уже или ни быть был него до вас нибудь опять уж вам ведь там потом себя ничего
        ей может они тут где есть надо ней для мы тебя их чем была сам чтоб без будто чего
        раз тоже себе под будет ж тогда кто этот того потому этого какой совсем ним здесь
        этом один почти мой тем чтобы нее неё были куда зачем всех никогда можно при об
        также это эти этих этой которые который которая которых году года также"""
    ),
    "dutch": _set(
        """de en van ik te dat die in een hij het niet zijn is was op aan met als voor had
        er maar om hem dan zou of wat mijn men dit zo door over ze zich bij ook tot je mij
        uit der daar haar naar heb hoe heeft hebben deze u want nog zal me zij nu ge geen
        omdat iets worden toch al waren veel meer doen toen moet ben zonder kan hun dus
        alles onder ja eens hier wie werd altijd doch wordt wezen kunnen ons zelf tegen na
        reeds wil kon niets uw iemand geweest andere"""
    ),
}

# Edmundson's cue method needs "stigma" words, which lower a sentence's rating: words
# of page furniture and hedging. Its "bonus" words are the document's own most frequent
# content words (Edmundson's key words), so no per-language list is needed for them.
_STIGMA_WORDS = _set(
    """click subscribe newsletter advertisement cookies cookie share photo image credit
    perhaps maybe hopefully reportedly allegedly"""
)


class _Language:
    """What every ranker needs for one language, built once: tokenizer, stemmer, stop words.

    A language with no tools here (`neutral`) gets a neutral splitter, no stemmer, no
    stop words, and is ranked by position only: no other language's rules stand in.
    """

    def __init__(self, name: str) -> None:
        self.tokenizer: AnyTokenizer = get_tokenizer(name)
        self.neutral = not is_supported(name)
        self.cjk = is_cjk(name)
        # CJK words here are character pairs, which sumy's word lists do not match.
        stop = frozenset() if self.neutral or self.cjk else stop_words(name)
        self.stop_words = stop | _EXTRA_STOP_WORDS.get(name, frozenset())
        self.stem: Callable[[str], str] = null_stemmer
        if not self.neutral:
            # Shared with story grouping, stems remembered (see tokenize.stemmer).
            with contextlib.suppress(LookupError):  # punkt languages with no stemmer
                self.stem = stemmer(name)  # (estonian, slovene, turkish)
        self._rankers: dict[str, Any] = {}

    def ranker(self, method: str) -> Any:
        if method not in self._rankers:
            if method == "position":
                ranker = PositionSummarizer(self.stem, self.tokenizer.language)
            else:
                from digest.summarize.classic import RANKERS  # numpy: only when asked for

                ranker = RANKERS[method](self.stem)
            ranker.stop_words = self.stop_words
            self._rankers[method] = ranker
        return self._rankers[method]

    def edmundson(self, sentences: Sequence[Sentence]) -> Any:
        # Bonus words depend on the document, so this one is built per call.
        from digest.summarize.classic import Edmundson

        ranker = Edmundson(self.stem, cue_weight=1.0, key_weight=1.0, title_weight=0.0)
        counts = Counter(
            self.stem(w.lower())
            for s in sentences
            for w in s.words
            if w.lower() not in self.stop_words
        )
        top = [w for w, n in counts.most_common(10) if n > 1] or [
            w for w, _ in counts.most_common(3)
        ]
        ranker.bonus_words = top or ["news"]
        ranker.stigma_words = _STIGMA_WORDS
        ranker.null_words = self.stop_words or {"the"}
        return ranker


_language = per_language(_Language)


def has_tools(language: str) -> bool:
    """Return True when this process has built the summarizer's tools for `language`."""
    return normalize_language(language) in _language.built


def summarize(
    text: str,
    *,
    sentences: int,
    method: str = DEFAULT_METHOD,
    language: str = "english",
    max_words: int = 60,
    max_words_oneliner: int = 30,
    title: str | None = None,
) -> tuple[str, ...]:
    """Return up to `sentences` whole sentences of `text` that summarize it, in order."""
    return tuple(
        d.text
        for d in explain(
            text,
            sentences=sentences,
            method=method,
            language=language,
            max_words=max_words,
            max_words_oneliner=max_words_oneliner,
            title=title,
        )
        if d.chosen
    )


def explain(
    text: str,
    *,
    sentences: int,
    method: str = DEFAULT_METHOD,
    language: str = "english",
    max_words: int = 60,
    max_words_oneliner: int = 30,
    title: str | None = None,
) -> tuple[Decision, ...]:
    """Return what `summarize` decided: each chosen sentence with its reason, and each
    sentence before the last chosen one that was skipped, with the rule that skipped it."""
    if method not in METHODS:
        raise SummaryError(f"unknown summary method {method!r}; use one of {', '.join(METHODS)}")
    lang = _language(language)
    if lang.neutral:
        method = "lead"  # position only: no language's rules rank a language we lack
    if sentences <= 0 or not text.strip():
        return ()
    if method == "position":
        ranker: PositionSummarizer = lang.ranker("position")
        return ranker.decide(
            list(_sentences(lang, text)),
            sentences,
            title=title,
            max_words=max_words,
            oneliner_max_words=max_words_oneliner,
        )
    if sentences == 1:
        max_words = min(max_words, max_words_oneliner)
    good, fallback, skipped = _candidates(lang, text, max_words)
    if not good:
        if fallback is None:
            return ()
        index, sentence = fallback
        if not lang.cjk:  # CJK: a long whole sentence reads better than a cut one
            sentence = truncate(sentence, max_words)
        return (Decision(index, sentence, True, "last resort: nothing qualifies"),)
    if method == "lead" or len(good) <= sentences:
        picked = list(range(min(sentences, len(good))))
        why = "lead: first sentences that qualify"
    else:
        picked = _rank(lang, method, good, sentences)
        why = f"ranked by {method}"
    chosen = {good[k][1]: str(good[k][2]) for k in picked}
    last = max(chosen)
    ranked_out = {i for _, i, _ in good} - set(chosen)
    decisions = [
        Decision(i, chosen[i], True, why)
        if i in chosen
        else Decision(
            i,
            skipped.get(i, ""),
            False,
            f"not among {method}'s top {sentences}" if i in ranked_out else "",
        )
        for i in range(last + 1)
        if i in chosen or i in ranked_out or i in skipped
    ]
    return tuple(
        d
        if d.chosen or d.reason
        else Decision(d.index, d.text, False, _filter_reason(d.text, lang.tokenizer.language))
        for d in decisions
    )


@functools.lru_cache(maxsize=16)
def _sentences(lang: _Language, text: str) -> tuple[str, ...]:
    """Return the sentences of `text`: an article's lead and one-line summaries are made
    one after the other (`digest.compose.prepare`), and splitting is most of the cost."""
    return tuple(s for p in split_paragraphs(text) for s in lang.tokenizer.to_sentences(p))


def _filter_reason(sentence: str, language: str) -> str:
    if is_boilerplate(sentence, language):
        return "boilerplate: page furniture"
    if word_count(sentence) < MIN_WORDS:
        return f"too-short: fewer than {MIN_WORDS} words"
    if not _TERMINAL.search(sentence):
        return "unterminated: no full stop"
    return "filtered: too long, a duplicate or no words"


def _candidates(
    lang: _Language, text: str, max_words: int
) -> tuple[list[tuple[int, int, Sentence]], tuple[int, str] | None, dict[int, str]]:
    """Return the sentences fit to rank, a fallback, and the sentences filtered out.

    Each candidate comes with its paragraph and sentence index. The fallback is the first
    sentence that is neither boilerplate nor a fragment, for when none qualifies.
    """
    good: list[tuple[int, int, Sentence]] = []
    fallback: tuple[int, str] | None = None
    unended: tuple[int, str] | None = None  # CJK: the first sentence, when none ends a mark
    skipped: dict[int, str] = {}
    seen: set[str] = set()
    index = -1
    for p_index, paragraph in enumerate(split_paragraphs(text)):
        for sent in lang.tokenizer.to_sentences(paragraph):
            index += 1
            skipped[index] = sent
            count = word_count(sent)
            if count < MIN_WORDS or is_boilerplate(sent, lang.tokenizer.language):
                continue
            if fallback is None and (not lang.cjk or _TERMINAL.search(sent)):
                fallback = (index, sent)
            unended = unended or (index, sent)
            # Words as written, or CJK characters two to a word, whichever is more.
            if max(count, len(sent.split())) > max_words or not _TERMINAL.search(sent):
                continue
            obj = Sentence(sent, lang.tokenizer)
            words = obj.words  # cached on the object, so rankers do not split it again
            if not words:
                continue  # no letters at all ("2-1, 3-0 and 4-4."): nothing to rank
            key = " ".join(words).casefold()
            if key in seen:
                continue
            seen.add(key)
            del skipped[index]
            good.append((p_index, index, obj))
    return good, fallback or (unended if lang.cjk else None), skipped


def _rank(
    lang: _Language, method: str, good: list[tuple[int, int, Sentence]], count: int
) -> list[int]:
    """Return the indices into `good` that `method` picks, in article order."""
    objects = [obj for _, _, obj in good]
    grouped: dict[int, list[Sentence]] = {}
    for (p_index, _, _), obj in zip(good, objects, strict=True):
        grouped.setdefault(p_index, []).append(obj)
    document = ObjectDocumentModel([Paragraph(group) for group in grouped.values()])
    index = {id(obj): i for i, obj in enumerate(objects)}
    ranker = lang.edmundson(objects) if method == "edmundson" else lang.ranker(method)
    try:
        # numpy's divide-by-zero warnings and sumy's "fewer words than sentences" are
        # expected on tiny inputs and change nothing here.
        with warnings.catch_warnings(), _numpy_quiet(method):
            warnings.simplefilter("ignore")
            chosen = ranker(document, count)
    except (ValueError, ArithmeticError) as exc:  # numpy.linalg.LinAlgError is a ValueError
        log.warning("summarizer %s failed (%s); using the lead sentences", method, exc)
        return list(range(min(count, len(good))))
    picked = sorted(index[id(s)] for s in chosen if id(s) in index)
    return picked or list(range(min(count, len(good))))


def _numpy_quiet(method: str) -> contextlib.AbstractContextManager[Any]:
    if method == "position":  # plain Python: no numpy to import or silence
        return contextlib.nullcontext()
    import numpy

    return numpy.errstate(all="ignore")


def summarize_jsonl(
    lines: Iterable[str],
    *,
    sentences: int,
    method: str = DEFAULT_METHOD,
    language: str | None = None,
    fallback_language: str | None = None,
    max_words: int = 60,
    max_words_oneliner: int = 30,
) -> Iterator[str]:
    """Summarize {"id", "text"[, "title", "language"]} lines into {"id", "language", "summary"}.

    A bad line gives {"id", "error"}. The language is `language` if given, else a line's
    own "language", else detected from its text, else `fallback_language`
    (`digest.text.language.choose_language`).
    """
    forced = to_code(language) if language else None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        ident: Any = None
        try:
            obj = json.loads(line)
        except ValueError as exc:
            yield _dump({"id": None, "error": f"line {number}: invalid JSON: {exc}"})
            continue
        if not isinstance(obj, dict):
            yield _dump({"id": None, "error": f"line {number}: expected a JSON object"})
            continue
        ident = obj.get("id")
        text = obj.get("text")
        if not isinstance(text, str):
            yield _dump({"id": ident, "error": f'line {number}: "text" must be a string'})
            continue
        title = obj.get("title")
        own = obj.get("language")
        try:
            declared = to_code(own) if isinstance(own, str) else None
        except ValueError:
            declared = None
        lang, _ = choose_language(text, source=forced or declared, fallback=fallback_language)
        summary = summarize(
            text,
            sentences=sentences,
            method=method,
            language=lang,
            max_words=max_words,
            max_words_oneliner=max_words_oneliner,
            title=title if isinstance(title, str) else None,
        )
        yield _dump({"id": ident, "language": lang or None, "summary": list(summary)})


def _dump(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False)
