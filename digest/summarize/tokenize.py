"""Split text into sentences and words offline, for sumy and the summarizer.

`Tokenizer` has the contract of `sumy.nlp.tokenizers.Tokenizer` (`language`,
`to_sentences`, `to_words`), so sumy's parsers and summarizers accept it, but it needs
no NLTK data: sentences come from the `punkt` package's bundled models, words from a
regular expression.
"""

from __future__ import annotations

import re
import threading
from dataclasses import replace

import punkt
from punkt.model.prefixes import with_nonbreaking_prefixes

from digest.config import LANGUAGES
from digest.errors import SummaryError


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


_ALIASES = {
    "en": "english",
    "eng": "english",
    "de": "german",
    "deu": "german",
    "ger": "german",
    "fr": "french",
    "fra": "french",
    "fre": "french",
    "es": "spanish",
    "spa": "spanish",
    "ru": "russian",
    "rus": "russian",
    "it": "italian",
    "ita": "italian",
    "pt": "portuguese",
    "por": "portuguese",
    "nl": "dutch",
    "nld": "dutch",
    "dut": "dutch",
}

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
        hr fr jh jr s.o s.u u.ä o.ä"""
    ),
    "french": _set("m mm mme mmes mlle dr pr p.ex cf av bd env etc n°"),
    "spanish": _set("sr sres sra sras srta ee.uu dr dra ud uds pág etc av avda"),
    "russian": _set("т.е т.д т.п т.к г гг им ул д др см стр руб млн млрд тыс"),
    "italian": _set("sig sigg sig.ra dott prof ecc avv on"),
    "portuguese": _set("sr sra dr dra av etc prof"),
    "dutch": _set("dhr mevr drs dr ir prof bijv blz nl"),
}

# Abbreviations only when a number follows: "No. 1" joins, "said no. Then" splits.
_NUMERIC_ABBREVIATIONS: dict[str, frozenset[str]] = {
    "english": frozenset({"no", "nos", "vol", "p", "pp", "fig", "art"}),
    "german": frozenset({"nr", "s", "abs", "art"}),
    "french": frozenset({"no", "p", "art"}),
    "spanish": frozenset({"no", "núm", "p", "art"}),
    "russian": frozenset({"no", "с", "ст", "п"}),
}

# A word is a run of letters, apostrophes and hyphens (sumy's rule), so numbers and
# punctuation never become terms. The typographic apostrophe counts too. Dotted
# acronyms ("U.S.", "E.U.") are one word with the dots removed, not stray letters.
_WORD_RE = re.compile(r"(?:[^\W\d_]\.){2,}|\w+(?:['’-]\w+)*", re.UNICODE)
_IS_WORD = re.compile(r"^[^\W\d_](?:[^\W\d_]|['’-])*$", re.UNICODE)
_BLANK_LINE = re.compile(r"\n[ \t\r\f\v]*\n")
_SPACE = re.compile(r"\s+")


def normalize_language(language: str) -> str:
    """Return the full lower-case name of `language`, accepting ISO 639 codes."""
    key = language.strip().lower()
    return _ALIASES.get(key, key)


class Tokenizer:
    """Split text into sentences and words for one language, with no NLTK data."""

    def __init__(self, language: str) -> None:
        name = normalize_language(language)
        if name not in LANGUAGES:
            raise SummaryError(
                f"no sentence model for language {language!r}; use one of {', '.join(LANGUAGES)}"
            )
        self._language = name
        params = with_nonbreaking_prefixes(punkt.load_model(name), name)
        # A copy with our additions; the cached bundled model stays untouched.
        params = replace(
            params,
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
        return tuple(s for s in (p.strip() for p in self._punkt.tokenize(text)) if s)

    def to_words(self, sentence: str) -> tuple[str, ...]:
        """Return the words of `sentence`: letters only, no numbers or punctuation."""
        words = (w.replace(".", "") for w in _WORD_RE.findall(sentence))
        return tuple(w for w in words if _IS_WORD.match(w))


_cache: dict[str, Tokenizer] = {}
_lock = threading.Lock()


def get_tokenizer(language: str) -> Tokenizer:
    """Return the shared tokenizer for `language`, building it on first use."""
    name = normalize_language(language)
    tok = _cache.get(name)
    if tok is None:
        with _lock:
            tok = _cache.get(name)
            if tok is None:
                tok = _cache[name] = Tokenizer(name)
    return tok


def split_paragraphs(text: str) -> list[str]:
    """Return the non-empty paragraphs of `text`, split on blank lines."""
    return [p.strip() for p in _BLANK_LINE.split(text) if p.strip()]


def split_sentences(text: str, language: str = "english") -> list[str]:
    """Return the sentences of `text`, never joining across a blank line."""
    tok = get_tokenizer(language)
    return [s for para in split_paragraphs(text) for s in tok.to_sentences(para)]
