"""Which language an article is in, as an ISO 639-1 code ("de"), and how we know.

Codes are ISO 639-1 everywhere outside the summarizer's internals: in the config, the
store, `--json` output and the HTML `lang` attribute. Old full names from earlier
configs ("english", "German") are still accepted and mapped to their code.

An article's language is chosen in this order of trust (`choose_language`):

1. `[[sources]].language`: the operator said so; never second-guessed.
2. The page's `<html lang>` / `og:locale`, then the feed's `<language>`: what the
   publisher declared. Publishers get this wrong (a CMS default left at "en-US" on a
   German blog, a German "de" on an English page), so a declaration loses to the text
   when the detector is sure of another language on enough text (`OVERRULE_*`).
3. Detection on the text with py3langid (a naive Bayes model over byte n-grams that
   ships inside its pip package: 4.5 MB, 0.7 s to load on first use, 0.2 s once
   `digest.text.langmodel` has kept it unpacked; ~8 ms per article).
   bench/eval_language.py measured it against lingua-language-detector: both 80/80 on
   the dev pages' full text; lingua's accurate mode needs ~20 s and ~1.2 GB to load,
   its low-accuracy mode is 4x slower per page and worse on short text.
4. `[summary].language`, if set; else "" (unknown): the summarizer then uses its
   neutral splitter and position-only ranking, never English rules.
"""

from __future__ import annotations

import re
import threading
from array import array
from typing import Any

# Full names (the config's old spelling) and ISO 639-2 codes → ISO 639-1.
_NAMES = {
    "english": "en", "eng": "en", "german": "de", "deutsch": "de", "deu": "de", "ger": "de",
    "french": "fr", "français": "fr", "fra": "fr", "fre": "fr", "spanish": "es", "español": "es",
    "spa": "es", "italian": "it", "italiano": "it", "ita": "it", "portuguese": "pt",
    "português": "pt", "por": "pt", "dutch": "nl", "nld": "nl", "dut": "nl", "russian": "ru",
    "rus": "ru", "czech": "cs", "ces": "cs", "cze": "cs", "danish": "da", "dan": "da",
    "finnish": "fi", "fin": "fi", "norwegian": "no", "nor": "no", "nob": "nb", "nno": "nn",
    "swedish": "sv", "swe": "sv", "polish": "pl", "pol": "pl", "greek": "el", "ell": "el",
    "gre": "el", "estonian": "et", "est": "et", "slovene": "sl", "slovenian": "sl", "slv": "sl",
    "turkish": "tr", "tur": "tr", "japanese": "ja", "jpn": "ja", "chinese": "zh", "zho": "zh",
    "chi": "zh", "korean": "ko", "kor": "ko", "indonesian": "id", "ind": "id", "malay": "ms",
    "ukrainian": "uk", "ukr": "uk", "slovak": "sk", "slk": "sk", "hungarian": "hu",
    "romanian": "ro", "arabic": "ar", "hebrew": "he", "thai": "th", "vietnamese": "vi",
    "hindi": "hi", "catalan": "ca",
}  # fmt: skip
# Codes a detector or a page may use for the same language.
_SAME = {"nb": "no", "nn": "no", "iw": "he", "in": "id", "ji": "yi", "pcm": "en"}
_TAG = re.compile(r"([A-Za-z]{2,3})(?:[-_][A-Za-z0-9]{1,8})*")

# A declared language loses to the text only when the detector is this sure ...
OVERRULE_CONFIDENCE = 0.99
# ... on at least this many characters of text.
OVERRULE_MIN_CHARS = 300
# Below this many characters the detector is not asked at all.
DETECT_MIN_CHARS = 20
# The detector reads at most this much of the text: plenty, and it keeps time flat.
DETECT_MAX_CHARS = 4000
DETECT_MIN_CONFIDENCE = 0.5


def to_code(value: str) -> str:
    """Return the ISO 639-1 code for a code, tag or name ("de-AT", "german" → "de").

    Raises ValueError when `value` names no language; "" stays "".
    """
    text = value.strip().lower()
    if not text:
        return ""
    if text in _NAMES:
        return _NAMES[text]
    m = _TAG.fullmatch(text)
    if m is None:
        raise ValueError(f"{value!r} is not a language code")
    code = m.group(1)
    code = _NAMES.get(code, code)
    if len(code) != 2:
        raise ValueError(f"{value!r} is not an ISO 639-1 language code")
    return _SAME.get(code, code)


def language_name(code: str) -> str:
    """Return the English name the summarizer's tools use for a code ("de" → "german")."""
    for name, value in _NAMES.items():
        if value == code and len(name) > 3:
            return name
    return code


def from_tag(tag: str | None) -> str | None:
    """Return the language of a page's or feed's declared tag, or None when it says nothing."""
    if not tag:
        return None
    try:
        code = to_code(tag.strip().split(",")[0])
    except ValueError:
        return None
    return code or None


_identifier: Any = None
_identifier_lock = threading.Lock()


def _model() -> Any:
    """Load py3langid's model on first use: startup never pays for it."""
    global _identifier
    if _identifier is None:
        with _identifier_lock:
            if _identifier is None:
                from digest.text.langmodel import load_identifier

                identifier = load_identifier()
                _compact(identifier)
                _identifier = identifier
    return _identifier


def _compact(identifier: Any) -> None:
    """Hold the model's two per-state tables as machine integers, not Python ints.

    Each is a list of 104,583 int objects. An extraction worker reads them for every
    byte it classifies, and each read writes the object's reference count, so the pages
    they sit on, shared with the forkserver the worker was forked from, become private
    copies in every worker (about 12 MB of the preview's peak). As arrays they take
    1.6 MB, reads write nothing, and classifying is 0.1 ms slower per page. Left as
    is if a py3langid version keeps them differently.
    """
    for name, code in (("_rowbase", "q"), ("tk_output", "q")):
        table = getattr(identifier, name, None)
        if isinstance(table, list):
            setattr(identifier, name, array(code, table))


def detect(text: str) -> tuple[str | None, float]:
    """Return the language of `text` and the detector's confidence (0..1)."""
    sample = text.strip()[:DETECT_MAX_CHARS]
    if len(sample) < DETECT_MIN_CHARS:
        return None, 0.0
    code, confidence = _model().classify(sample)  # keeps no state between calls
    code = _SAME.get(str(code), str(code))
    if len(code) != 2 or float(confidence) < DETECT_MIN_CONFIDENCE:
        return None, float(confidence)
    return code, float(confidence)


def detect_language(text: str) -> str | None:
    """Return the ISO 639-1 code of the language `text` is written in, or None if unsure."""
    return detect(text)[0]


def choose_language(
    text: str,
    *,
    source: str | None = None,
    page: str | None = None,
    feed: str | None = None,
    fallback: str | None = None,
    detected: tuple[str | None, float] | None = None,
) -> tuple[str, str]:
    """Return (code, how): the article's language and which signal decided it.

    `how` is one of "source", "page", "feed", "detected", "fallback" or "unknown" (and the
    code is then ""). `detected` is `detect(text)` when the caller has it already (the
    extraction workers detect a page's language beside extracting it).
    """
    if source:
        return source, "source"
    for declared, how in ((page, "page"), (feed, "feed")):
        if not declared:
            continue
        if len(text.strip()) >= OVERRULE_MIN_CHARS:
            detected = detected or detect(text)
            code, confidence = detected
            if code and code != declared and confidence >= OVERRULE_CONFIDENCE:
                return code, "detected"
        return declared, how
    code, _ = detected or detect(text)
    if code:
        return code, "detected"
    if fallback:
        return fallback, "fallback"
    return "", "unknown"
