"""Tell sentences fit for a news summary from those an editor would strike.

Pure predicates on one sentence string, used by `digest.summarize.position` and `digest.summarize`:
page furniture (bylines, "Scroll down for video", "Click here"), photo captions run into
the text, quotations and quote fragments, questions, pieces of sentences, and sentences
that open mid-thought ("He said …", "This …", "But …"). Each rule is a pattern seen in
real news text; the lists of words behind them are short, per language, and only hold
words that are rarely anything else, because a wrong entry costs a good sentence.
"""

from __future__ import annotations

import re

from digest.boilerplate import is_furniture
from digest.summarize.tokenize import language_code, normalize_language


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Words that, first in a sentence, point back to something the reader has not seen:
# personal pronouns, demonstrative pronouns and connectives. Lower case, matched on the
# first word after any dateline ("LONDON (Reuters) -"). Only words that are rarely
# anything else are listed (no articles, no "Este"/"Diese" that open "Este lunes"/"Diese
# Woche"): a miss costs a slightly worse summary, a wrong entry a good sentence.
_OPENERS: dict[str, frozenset[str]] = {
    "english": _set(
        """he she it they we his her its their him them this that these those such but
        and or so yet also however meanwhile still instead moreover furthermore nevertheless
        nonetheless besides otherwise thus therefore hence indeed then later earlier
        it's that's he's she's they're they've he'd she'd"""
    ),
    "german": _set(
        """er sie es ihr ihm ihn ihnen sein seine dies damit dabei dazu darauf daher
        deshalb dennoch trotzdem aber doch und oder auch jedoch allerdings zudem außerdem"""
    ),
    "french": _set(
        """il elle ils elles cela ceci mais et ou donc pourtant cependant toutefois ensuite
        puis aussi alors ainsi"""
    ),
    "spanish": _set("él ella ellos ellas esto eso pero y o además entonces también aunque así"),
    "italian": _set("lui lei loro ciò ma e o però inoltre quindi anche"),
    "portuguese": _set("ele ela eles elas isso isto mas e ou porém também"),
    "dutch": _set("hij zij ze dit maar en of ook echter daarom bovendien toen"),
    "russian": _set(
        "он она оно они его её ее их ему ей им это но а и однако также тоже тогда поэтому"
    ),
}
# Words that cannot end a sentence: one ending "… worked out with the." was cut short.
_DANGLING_ENDS: dict[str, frozenset[str]] = {
    # articles and conjunctions only: a stranded preposition ("where it came from.") is fine
    "english": _set("the a an and or but"),
    "german": _set("und oder ein eine einen einem einer"),
    "french": _set("et ou un une des du"),
    "spanish": _set("y o el los las un una del"),
    "italian": _set("e o il un una del"),
    "portuguese": _set("e ou um uma do da"),
    "dutch": _set("en de een"),
    "russian": _set("и или"),
}
# "Of this amount", "In that case": a preposition and a demonstrative point back too.
_PREPOSITIONS: dict[str, frozenset[str]] = {
    "english": _set("of in for to at by with from on after before despite because besides"),
}
_DEMONSTRATIVES = _set("this that these those such")
_LAST_WORD = re.compile(r"([^\W\d_]+)\W*$")
# "This week", "that year": a demonstrative before a time word refers to the calendar.
_TIME_WORDS = _set(
    """week weekend month year morning afternoon evening night summer winter spring autumn
    fall season time decade century day"""
)
# A dateline before the first real word: "(CNN)", "LONDON (Reuters) -", "(CNN) --".
_DATELINE = re.compile(
    r"""^(?:\([A-Z][\w. ]{0,20}\)\s*(?:--|[-–—])?          # (CNN) / (CNN) --
          |[^()\n]{0,60}?\([A-Z][\w. ]{0,20}\)\s*(?:--|[-–—])  # HARARE, Zimbabwe (CNN) --
        )\s*""",
    re.VERBOSE,
)
_FIRST_WORDS = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?", re.UNICODE)

# Sentences that are page furniture or newsroom boilerplate. Kept short and
# explainable: each is a pattern seen on real pages that no summary should quote.
# Matched at the start of the sentence:
_BOILERPLATE_START = re.compile(
    r"""(?ix)
      share\b(?:\s+\S+){0,3}\s*$                                  # Share / Share this article
    | share(?:\s+this(?:\s+(?:article|story))?)?:?\s+(?-i:[A-Z"“])   # "Share The mayor…" run-in
    | (?:published|posted|written|updated|last\ updated)\b.{0,40}?\bby\b    # Published by admin
    | (?:published|updated|last\ updated)\s*:                    # PUBLISHED: 12:47 EST
    | (?:image|photo|picture|photograph|illustration|video)s?
        (?:\s+(?:source|credit|courtesy))?\s*[:：]                 # Image source: Xiaomi
    | by\s+(?:\.\s+)?[A-Z][\w'’-]+(?:\s+[A-Z][\w'’.-]+){1,3}
        \s*(?:\||\.\s|\.?$|,\s*(?:cnn|reuters|ap|afp|bbc|for)\b|for\s+[A-Z]|and\s+[A-Z])
                                                                  # By Jane Doe | CNN
    | (?:read\s+(?:more|also|next)|continue\s+reading|advertisement|sponsored\b)
    | (?:sign\s+up|subscribe)\b.{0,80}\b(?:newsletter|updates|email)
    | follow\s+us\b
    | (?:©|\(c\)|copyright\s+(?:©\s*)?\d{4})
    | (?:recent|related|popular)\s+(?:posts|articles|stories)\b
    | the\s+post\s+.+\s+appeared\s+first\s+on\b
    """
)
# ... and anywhere in it:
_BOILERPLATE_ANYWHERE = re.compile(
    r"""(?ix)
      \b(?:image|photo|picture)\s+(?:source|credit)s?\s*[:：]      # …run in mid-sentence
    | \b(?:we|this\s+(?:web)?site|our\s+(?:web)?site)\s+uses?\s+cookies\b
    | \bcookies?\s+(?:policy|settings|preferences|consent)\b
    | \bclick\s+here\b
    | \bscroll\s+down\s+for\b
    | \ball\s+rights\s+reserved\b
    """
)
# Words one of those needs; most sentences have none, and `in` is far cheaper than search.
_ANYWHERE_HINTS = ("image", "photo", "picture", "cookie", "click", "scroll", "rights")


def is_boilerplate(sentence: str, language: str = "english") -> bool:
    """Return True for page furniture: bylines, share buttons, "Click here", credits.

    The patterns above are English; other languages use `digest.boilerplate`'s own.
    """
    code = language_code(language)
    if code != "en":
        return is_furniture(sentence, code)
    if _BOILERPLATE_START.match(sentence):
        return True
    low = sentence.lower()
    return any(h in low for h in _ANYWHERE_HINTS) and bool(_BOILERPLATE_ANYWHERE.search(sentence))


# Photo captions and labels, which Daily Mail style pages run into the text: a short
# label and a colon before the text ("Guilty: Andras Vass, 25, …", "Pictured: …"), a
# marker of the picture ("(left)", "pictured with"), or a stop set apart by a space
# ("… in 1916 ."), which is how a pipeline ends a line that had no punctuation of its own.
_CAPTION_START = re.compile(
    r"(?i)\S+(?:\s+\S+){0,2}:\s|(?:above|below|left|right|top|bottom)\s*[,:]"
)
_CAPTION_MARKER = re.compile(
    r"""(?ix)
      \((?:pictured|picture|photo|above|below|left|right|centre|center|top|bottom|inset)\b
    | \b(?:pictured|photographed)\s*(?:[:,)]|(?:left|right|above|below|here|with|at|in|on)\b)
    """
)
_CAPTION_HINTS = ("(", "pictured", "photographed")  # a marker needs one of these
_DETACHED_STOP = re.compile(r"(?:[^\W_]|[)'’\"”])\s\.$")
_QUOTE_OPEN = "\"'“‘«„‚‹»"
# A quotation mark that closes: not followed by a letter (so not the "'" of "he's").
_CLOSING_QUOTE = re.compile(r"[”’\"'»«“‹›](?![^\W\d_])")
_LETTER = re.compile(r"[^\W\d_]")
_QUOTE_TAIL = re.compile(r"[.!?…][”’\"'»]$")
# An opening mark: a double one anywhere, a single one at the start of a word.
_OPENING_QUOTE = re.compile(r"[\"“«„]|(?<!\w)['‘‚‹]")
_QUESTION = re.compile(r"[?？][\"'”’»)\]]*$")
_WORD = re.compile(r"\S*\w\S*")
# Han and kana: text written without spaces is measured in characters, this many to a word,
# so every length limit in words reads the same in Japanese and Chinese.
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
CJK_CHARS_PER_WORD = 2
_CJK_TOKEN = re.compile(r"\S*[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]\S*")


def word_count(sentence: str) -> int:
    """Return how many words `sentence` has: tokens with a letter or digit, CJK by characters."""
    count = len(_WORD.findall(sentence))
    cjk = len(_CJK.findall(sentence))
    if cjk:
        # A run of Han or kana counted as one token becomes its length in words instead.
        count += -(-cjk // CJK_CHARS_PER_WORD) - len(_CJK_TOKEN.findall(sentence))
    return max(count, 0)


def is_caption(sentence: str) -> bool:
    """Return True for a photo caption or a labelled line ("Pictured: …", "Guilty: …")."""
    if _CAPTION_START.match(sentence) or _DETACHED_STOP.search(sentence[-4:]):
        return True
    low = sentence.lower()
    # Most sentences hold none of the hints, and `in` is far cheaper than a regex search.
    return any(h in low for h in _CAPTION_HINTS) and bool(_CAPTION_MARKER.search(sentence))


def is_quotation(sentence: str) -> bool:
    """Return True for a sentence that opens with a quotation mark."""
    return sentence[:1] in _QUOTE_OPEN


def is_quote_only(sentence: str) -> bool:
    """Return True for a quotation with no attribution: a fragment of someone's speech."""
    if not is_quotation(sentence):
        # The last sentence of a quote that began in an earlier one: "… everywhere.'"
        tail = _QUOTE_TAIL.search(sentence)
        return tail is not None and not _OPENING_QUOTE.search(sentence, 0, tail.start())
    closing = _CLOSING_QUOTE.search(sentence, 1)
    # No closing mark: a quote that runs on into the next paragraph. Otherwise quote-only
    # when nothing but punctuation follows the first closing mark ("…," she said. is not).
    return closing is None or not _LETTER.search(sentence, closing.end())


def is_question(sentence: str) -> bool:
    """Return True for a sentence ending with a question mark."""
    return bool(_QUESTION.search(sentence))


def is_fragment(sentence: str, language: str = "english") -> bool:
    """Return True for a piece of a sentence: it starts in lower case or ends mid-phrase."""
    first = _LETTER.search(sentence[:3])
    if first is not None and first.group().islower():
        return True  # "he recalled." — split from the sentence it belongs to
    last = _LAST_WORD.search(sentence[-30:])
    ends = _DANGLING_ENDS.get(normalize_language(language), frozenset())
    return last is not None and last.group(1).lower() in ends


def opens_mid_thought(sentence: str, language: str = "english") -> bool:
    """Return True if `sentence` starts with a pronoun or connective that needs context."""
    openers = _OPENERS.get(normalize_language(language))
    if not openers:
        return False
    head = sentence[:100]
    if "(" in head:
        head = _DATELINE.sub("", head, count=1)
    words = _FIRST_WORDS.findall(head[:40])
    if not words:
        return False
    first = words[0].casefold().replace("’", "'")
    second = words[1].casefold() if len(words) > 1 else ""
    if first in _PREPOSITIONS.get(normalize_language(language), ()):
        if second not in _DEMONSTRATIVES:
            return False
        first, second = second, words[2].casefold() if len(words) > 2 else ""
    elif first not in openers:
        return False
    return not (first in {"this", "that", "these", "those"} and second in _TIME_WORDS)


def stands_alone(sentence: str, language: str = "english") -> bool:
    """Return True if `sentence` can be read without the text around it."""
    return not (
        is_boilerplate(sentence, language)
        or is_caption(sentence)
        or is_quotation(sentence)
        or is_quote_only(sentence)
        or is_question(sentence)
        or is_fragment(sentence, language)
        or opens_mid_thought(sentence, language)
    )
