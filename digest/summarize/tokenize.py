"""Split text into sentences and words offline, for sumy and the summarizer.

`Tokenizer` has the contract of `sumy.nlp.tokenizers.Tokenizer` (`language`,
`to_sentences`, `to_words`), so sumy's parsers and summarizers accept it, but it needs
no NLTK data: sentences come from the `punkt` package's bundled models, words from a
regular expression.
"""

from __future__ import annotations

import functools
import pkgutil
import re
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Generic, TypeVar

import punkt
import punkt.data
from punkt.model.prefixes import with_nonbreaking_prefixes

from digest.errors import SummaryError
from digest.text.language import to_code

# ISO 639-1 → the name of the bundled punkt model (and sumy's stemmer and stop words).
SPACED: dict[str, str] = {
    "en": "english", "de": "german", "fr": "french", "es": "spanish", "ru": "russian",
    "it": "italian", "pt": "portuguese", "nl": "dutch", "cs": "czech", "da": "danish",
    "fi": "finnish", "no": "norwegian", "sv": "swedish", "pl": "polish", "el": "greek",
    "et": "estonian", "sl": "slovene", "tr": "turkish",
}  # fmt: skip
# Languages written without spaces between words: split on their own sentence marks.
CJK: dict[str, str] = {"ja": "japanese", "zh": "chinese"}
LANGUAGES = (*SPACED.values(), *CJK.values())
_CODES = {name: code for code, name in (*SPACED.items(), *CJK.items())}


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Abbreviations news copy uses that the bundled models do not all know. Lower case,
# without the final period, as punkt stores them. A wrong entry costs a missed break
# whenever the word really ends a sentence, so only words that rarely do are listed.
_NEWS_ABBREVIATIONS: dict[str, frozenset[str]] = {
    "english": _set(
        """u.s u.k u.n u.s.a e.u gov govs sen sens rep reps a.m p.m jan feb mar apr jun jul
        aug sep sept oct nov dec mr mrs ms messrs dr drs st jr sr inc corp co ltd plc bros vs
        v e.g i.e etc approx dept gen col lt sgt capt cmdr adm maj rev prof pres supt det
        insp mt ave blvd est id"""
    ),
    "german": _set(
        """z.b bzw ca usw nr dr prof u.a d.h vgl ggf evtl inkl bzgl sog str tel mio mrd
        hr fr jh jr s.o s.u u.ä o.ä hrsg geb gest abg dipl dipl.-ing ing co min std sek
        mind max zzgl ggü sen mag"""
    ),
    "french": _set("m mm mme mmes mlle dr pr p.ex cf av bd env etc n°"),
    "spanish": _set("sr sres sra sras srta ee.uu dr dra ud uds pág etc av avda"),
    "russian": _set("т.е т.д т.п т.к г гг им ул д др см стр руб млн млрд тыс"),
    "italian": _set("sig sigg sig.ra dott prof ecc avv on"),
    "portuguese": _set("sr sra dr dra av etc prof"),
    "dutch": _set("dhr mevr drs dr ir prof bijv blz nl"),
    "czech": _set("např tzv atd apod resp mld mil tis kč ing mgr doc pozn tj př"),
}

# Abbreviations only when a number follows: "No. 1" joins, "said no. Then" splits.
_NUMERIC_ABBREVIATIONS: dict[str, frozenset[str]] = {
    "english": frozenset({"no", "nos", "vol", "p", "pp", "fig", "art"}),
    "german": frozenset(
        {
            "nr",
            "s",
            "abs",
            "art",
            "jan",
            "feb",
            "mär",
            "apr",
            "jun",
            "jul",
            "aug",
            "sep",
            "sept",
            "okt",
            "nov",
            "dez",
            "bd",
            "hauptstr",
        }
    ),  # fmt: skip
    "french": frozenset({"no", "p", "art"}),
    "spanish": frozenset({"no", "núm", "p", "art"}),
    "russian": frozenset({"no", "с", "ст", "п"}),
    "italian": frozenset({"n", "art", "p", "pag"}),
    "portuguese": frozenset({"n", "nº", "art", "p", "pág"}),
    "dutch": frozenset({"nr", "art", "p", "blz"}),
    "czech": frozenset({"č", "s", "odst", "čl", "str"}),
}

# A word is a run of letters, apostrophes and hyphens (sumy's rule), so numbers and
# punctuation never become terms. The typographic apostrophe counts too. Dotted
# acronyms ("U.S.", "E.U.") are one word with the dots removed, not stray letters.
_WORD_RE = re.compile(r"(?:[^\W\d_]\.){2,}|\w+(?:['’-]\w+)*", re.UNICODE)
_IS_WORD = re.compile(r"^[^\W\d_](?:[^\W\d_]|['’-])*$", re.UNICODE)
# Languages that write ordinals as "3." (German "den 3. Platz", Czech "3. místo").
_ORDINAL_LANGUAGES = frozenset(
    {"german", "czech", "danish", "norwegian", "finnish", "estonian", "slovene", "turkish",
     "polish"}
)  # fmt: skip
_OPENING_MARKS = "\"'„“‚‘«»‹›(["
_ENDS_ORDINAL = re.compile(r"(?:^|[\s(])\d{1,3}\.$")
_ENDS_STREET = re.compile(r"(?i)\wstr\.$")  # "Hauptstr. 5"
_BLANK_LINE = re.compile(r"\n[ \t\r\f\v]*\n")
_SPACE = re.compile(r"\s+")


def needs_model(language: str) -> bool:
    """Return True when `language`'s tools load data (a sentence model, a stemmer)."""
    return normalize_language(language) in SPACED.values()


def normalize_language(language: str) -> str:
    """Return the full lower-case name of `language` ("de" → "german").

    A language with no tools here comes back as its ISO 639-1 code (or as given).
    """
    key = language.strip().lower()
    if key in _CODES:
        return key
    try:
        code = to_code(key)
    except ValueError:
        return key
    return SPACED.get(code) or CJK.get(code) or code


def language_code(language: str) -> str:
    """Return the ISO 639-1 code of `language` ("german" → "de"), or "" if it has none."""
    name = normalize_language(language)
    return _CODES.get(name, name if len(name) == 2 else "")


def is_supported(language: str) -> bool:
    """Return True when `language` has a splitter, a stemmer and stop words of its own."""
    return normalize_language(language) in _CODES


def is_cjk(language: str) -> bool:
    """Return True for a language written without spaces (Japanese, Chinese)."""
    return normalize_language(language) in CJK.values()


class Tokenizer:
    """Split text into sentences and words for one language, with no NLTK data."""

    def __init__(self, language: str) -> None:
        name = normalize_language(language)
        if name not in SPACED.values():
            raise SummaryError(
                f"no sentence model for language {language!r}; use one of {', '.join(LANGUAGES)}"
            )
        self._language = name
        # The bundled model's word statistics are read, never written, by tokenizing: use
        # the bundled module's own table instead of the two copies punkt's loaders make
        # (megabytes per language, in every extraction worker that meets the language).
        params = with_nonbreaking_prefixes(punkt.data.load_bundled(name), name)
        params = replace(
            params,
            ortho_context=punkt.data.load_module(name).ORTHO_CONTEXT,
            abbrev_types=set(params.abbrev_types) | _NEWS_ABBREVIATIONS.get(name, frozenset()),
            numeric_abbrev_types=set(params.numeric_abbrev_types)
            | _NUMERIC_ABBREVIATIONS.get(name, frozenset()),
        )
        self._punkt = punkt.PunktSentenceTokenizer(params)

    @property
    def language(self) -> str:
        """Return the language name, e.g. "english"."""
        return self._language

    def to_sentences(self, paragraph: str) -> tuple[str, ...]:
        """Return the sentences of `paragraph`, stripped, with line breaks as spaces."""
        text = _SPACE.sub(" ", paragraph).strip()
        if not text:
            return ()
        out = [s for s in (p.strip() for p in self._punkt.tokenize(text)) if s]
        if self._language != "english":  # English keeps its tuned behaviour
            out = self._rejoin(out)
        return tuple(out)

    def _rejoin(self, parts: list[str]) -> list[str]:
        """Undo breaks Punkt makes where no sentence can end.

        Before a lower-case letter ("Ludwig XIV. war", "geb. in Berlin"), and, where
        "3." is an ordinal, after a number of one to three digits ("den 3. Platz").
        """
        ordinals = self._language in _ORDINAL_LANGUAGES
        out: list[str] = []
        for part in parts:
            if out and (
                part.lstrip(_OPENING_MARKS)[:1].islower()
                or (ordinals and _ENDS_ORDINAL.search(out[-1]))
                or (_ENDS_STREET.search(out[-1]) and part[:1].isdigit())
            ):
                out[-1] = f"{out[-1]} {part}"
            else:
                out.append(part)
        return out

    def to_words(self, sentence: str) -> tuple[str, ...]:
        """Return the words of `sentence`: letters only, no numbers or punctuation."""
        words = (w.replace(".", "") for w in _WORD_RE.findall(sentence))
        return tuple(w for w in words if _IS_WORD.match(w))


# A sentence mark that ends a sentence, with the closing quotes and brackets after it.
_CJK_END = re.compile(r"[。！？!?．]+[」』）)】〕”’\"'»]*|\.(?=\s)")
_CJK_OPEN = "「『（(【〔“"
_CJK_CLOSE = "」』）)】〕”"
_CJK_CHARS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
# A run of Han, kana or hangul: its words are its overlapping character pairs.
_CJK_RUN = re.compile(f"[{_CJK_CHARS}]+")
_OTHER_WORD = re.compile(f"[^\\W\\d_{_CJK_CHARS}]+")


class CjkTokenizer:
    """Split Japanese or Chinese: sentences end at 。！？ outside quotes, words are pairs.

    Character pairs stand in for words (no segmenter is shipped for either language):
    two sentences that share many pairs share words, which is all the ranker needs.
    """

    def __init__(self, language: str) -> None:
        self._language = normalize_language(language)

    @property
    def language(self) -> str:
        """Return the language name, e.g. "japanese"."""
        return self._language

    def to_sentences(self, paragraph: str) -> tuple[str, ...]:
        """Return the sentences of `paragraph`; a mark inside 「…」 does not end one."""
        text = _SPACE.sub(" ", paragraph).strip()
        if not text:
            return ()
        out = self._split(text, respect_quotes=True)
        if any(len(s) > 300 for s in out):  # an unclosed quote swallowed the rest
            out = self._split(text, respect_quotes=False)
        return tuple(out)

    @staticmethod
    def _split(text: str, *, respect_quotes: bool) -> list[str]:
        out: list[str] = []
        start = pos = depth = 0
        while pos < len(text):
            ch = text[pos]
            if ch in _CJK_OPEN:
                depth += 1
            elif ch in _CJK_CLOSE and depth:
                depth -= 1
            m = _CJK_END.match(text, pos) if depth == 0 or not respect_quotes else None
            if m:
                out.append(text[start : m.end()].strip())
                start = pos = m.end()
                depth = 0
                continue
            pos += 1
        out.append(text[start:].strip())
        return [s for s in out if s]

    def to_words(self, sentence: str) -> tuple[str, ...]:
        """Return the character pairs of each CJK run and the words of other scripts."""
        words: list[str] = []
        for run in _CJK_RUN.findall(sentence):
            words.extend(run[i : i + 2] for i in range(max(len(run) - 1, 1)))
        words.extend(w for w in _OTHER_WORD.findall(sentence) if len(w) > 1)
        return tuple(words)


# A neutral sentence end: a mark, closing quotes and a space; checked further below. Not
# after one letter (an initial) or a number of one or two digits (an ordinal in many
# languages): both stand inside a sentence more often than at its end.
_NEUTRAL_END = re.compile(r"[.!?…。！？][\"'”’»)\]]*\s+")
_NEUTRAL_KEEP = re.compile(r"(?:^|[\s(])(?:[^\W\d_]|\d{1,2})\.$")


class NeutralTokenizer:
    """Split a language with no model here by its punctuation, with no language's rules."""

    def __init__(self, language: str) -> None:
        self._language = normalize_language(language)

    @property
    def language(self) -> str:
        """Return the language as given (an ISO 639-1 code, or "")."""
        return self._language

    def to_sentences(self, paragraph: str) -> tuple[str, ...]:
        """Return the sentences of `paragraph`, split after . ! ? and a space."""
        text = _SPACE.sub(" ", paragraph).strip()
        if not text:
            return ()
        out, start = [], 0
        for m in _NEUTRAL_END.finditer(text):
            nxt = text[m.end() : m.end() + 1]
            if nxt.islower() or _NEUTRAL_KEEP.search(
                text[max(start, m.start() - 4) : m.start() + 1]
            ):
                continue
            out.append(text[start : m.end()].strip())
            start = m.end()
        out.append(text[start:].strip())
        return tuple(s for s in out if s)

    def to_words(self, sentence: str) -> tuple[str, ...]:
        """Return the words of `sentence`: letters only, no numbers or punctuation."""
        words = (w.replace(".", "") for w in _WORD_RE.findall(sentence))
        return tuple(w for w in words if _IS_WORD.match(w))


AnyTokenizer = Tokenizer | CjkTokenizer | NeutralTokenizer
T = TypeVar("T")


class per_language(Generic[T]):  # noqa: N801 (used as a decorator)
    """`build(language)` memoized by normalized language name, built once per name.

    Threads (the daemon's jobs, the web app) may ask for the same language at once;
    building takes a lock so an expensive model is never built twice. `built` holds
    what has been built so far.
    """

    def __init__(self, build: Callable[[str], T]) -> None:
        self.build = build
        self.built: dict[str, T] = {}
        self._lock = threading.Lock()
        functools.update_wrapper(self, build)

    def __call__(self, language: str) -> T:
        name = normalize_language(language)
        if name not in self.built:
            with self._lock:
                if name not in self.built:
                    self.built[name] = self.build(name)
        return self.built[name]


@per_language
def get_tokenizer(language: str) -> AnyTokenizer:
    """Return the shared tokenizer for `language`, building it on first use.

    Japanese and Chinese get `CjkTokenizer`; a language with no model here gets
    `NeutralTokenizer`, never another language's rules.
    """
    if language in SPACED.values():
        return Tokenizer(language)
    if language in CJK.values():
        return CjkTokenizer(language)
    return NeutralTokenizer(language)


def split_paragraphs(text: str) -> list[str]:
    """Return the non-empty paragraphs of `text`, split on blank lines."""
    return [p.strip() for p in _BLANK_LINE.split(text) if p.strip()]


def split_sentences(text: str, language: str = "english") -> list[str]:
    """Return the sentences of `text`, never joining across a blank line."""
    tok = get_tokenizer(language)
    return [s for para in split_paragraphs(text) for s in tok.to_sentences(para)]


# sumy's stop-word files, by the codes its language lookup (pycountry) would turn into
# their names; full names ("german") name a file directly.
_STOP_WORD_FILES = {
    "ar": "arabic", "cs": "czech", "de": "german", "en": "english", "es": "spanish",
    "fr": "french", "he": "hebrew", "it": "italian", "ja": "japanese", "ko": "korean",
    "pl": "polish", "pt": "portuguese", "sk": "slovak", "sv": "swedish", "th": "thai",
    "uk": "ukrainian", "zh": "chinese",
}  # fmt: skip


@functools.lru_cache(maxsize=64)  # by the name as given: sumy reads "el" and "greek" apart
def stop_words(language: str) -> frozenset[str]:
    """Return sumy's stop words for `language` (empty when it has none).

    Read straight from sumy's data: `sumy.utils.get_stop_words` looks the name up in
    pycountry first, whose database takes 0.3 s to load, for names that need no lookup.
    """
    name = _STOP_WORD_FILES.get(language, language)
    try:
        data = pkgutil.get_data("sumy", f"data/stopwords/{name}.txt")
    except OSError:
        return frozenset()
    return frozenset(w.rstrip() for w in (data or b"").decode("utf-8").splitlines() if w)


@functools.lru_cache(maxsize=32)
def stemmer(name: str) -> Callable[[str], str]:
    """Return sumy's stemmer for a language's full name ("german"), as `Stemmer(name)` does.

    Raises LookupError when the language has none. Built without `Stemmer.__init__`,
    which runs every name through pycountry (0.3 s to load) though a full name needs no
    lookup. One per language, remembering its stems: Snowball is the slowest step of
    ranking and grouping, and both stem the same day's words.
    """
    import nltk.stem.snowball as snowball  # type: ignore[import-untyped]
    from sumy.nlp.stemmers import Stemmer

    stem: Callable[[str], str] | None = Stemmer.SPECIAL_STEMMERS.get(name)
    if stem is None:
        cls = getattr(snowball, name.capitalize() + "Stemmer", None)
        if cls is None:
            raise LookupError(f"Stemmer is not available for language {name}.")
        stem = cls().stem
    return functools.lru_cache(maxsize=200_000)(stem)
