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

from digest.summarize.tokenize import language_code, normalize_language
from digest.text.boilerplate import is_furniture


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
# The connectives among those: a text that opens with one was cut from a longer one
# ("But the opposition said …"); a pronoun or "This" can open a feature's first line.
_CONNECTIVES: dict[str, frozenset[str]] = {
    "english": _set(
        """but and or so yet also however meanwhile still instead moreover furthermore
        nevertheless nonetheless besides otherwise thus therefore hence"""
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
    "english": _set(
        "of in for to at by with from on after before despite because besides since until"
    ),
}
# "From there", "Since then": place and time words point back after a preposition too.
_DEMONSTRATIVES = _set("this that these those such there then")
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
_CALENDAR_NEXT = _set("this last next today tonight yesterday tomorrow in on")
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

    The patterns above are English; other languages use `digest.text.boilerplate`'s own.
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
_CAPTION_HINTS = ("(", "pictured", "photographed")
# Labels that only ever head a caption: "Pictured: …", "Left: …", "Above, …".
_CAPTION_LABEL = re.compile(
    r"(?i)(?:pictured|inset|above|below|left|right|top|bottom|main picture)\s*[,:]"
)  # a marker needs one of these
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
    if first in {"earlier", "later"} and second in _CALENDAR_NEXT:
        return False  # "Earlier this month, NASA …" dates the news; "Earlier, …" points back
    return not (first in {"this", "that", "these", "those"} and second in _TIME_WORDS)


# A lone sentence whose subject is a pronoun after an opening phrase leans on the one
# before it just as much: "In a new case study out Monday, they detail how …". The
# pronouns are the ones that nearly always point back; "we" and "I" (a blog's own voice,
# a quote) are not listed.
_PRONOUN_AFTER_PHRASE: dict[str, re.Pattern[str]] = {
    "english": re.compile(
        r"(?i)^(?:[^,;:.!?\"“”]{1,80}),\s+(?:they|he|she|it|his|her|their|its|these|those)\b"
    ),
}
# Openers that stage a scene the reader has not seen: "Enter South Dakota to throw down the
# gauntlet." Matched on the first words, case-sensitively where a capital matters.
_STAGED_OPENERS: dict[str, re.Pattern[str]] = {
    "english": re.compile(
        r"(?:Enter|Cue)\s+(?:the\s+)?[A-Z]|(?i:plus|what's\s+more|that\s+said|even\s+so)\b"
    ),
}
# Characters a lone sentence cannot open with: a dash or an ellipsis (it continues
# something), closing quotation marks and closing punctuation.
_BAD_FIRST = frozenset("-–—‒―…,;:)]}”’›.")
# Any quotation mark, to find whether a sentence's first one opens or closes a quote.
_ANY_QUOTE = re.compile(r"[\"“”„«»‹›'‘’‚]")
_TEASER_END = re.compile(r"(?:\.\.\.|…|\[(?:…|\.\.\.)\])[\"'”’»)\]]*\s*$")
# "Разработчик: ZXStyles Язык: English Состояние: Free…": labels of one or two words, each
# with a capital, each followed by a colon and a value.
_LABEL = re.compile(r"(?:^|(?<=\s))([^\W\d_][\w-]*(?:\s[\w-]+)?)\s?:\s+\S")
# "360 x 640 (53,6 килобайт)": an image's size and file size, as file pages caption them
# (the "x" may be Latin, a multiplication sign or Cyrillic).
_DIMENSIONS = re.compile(r"\b\d{2,5}\s?[x×хX]\s?\d{2,5}\b")
_FILE_SIZE = re.compile(
    r"(?i)\(\s*\d+(?:[.,]\d+)?\s*(?:[kmg]i?b|bytes?|kilobytes?|megabytes?|[кмг]б|килобайт\w*"
    r"|мегабайт\w*|байт\w*)\s*\)"
)


def opens_with_punctuation(sentence: str) -> bool:
    """Return True if `sentence` opens with a dash, an ellipsis or a closing mark."""
    head = sentence.lstrip()
    if head[:1] in _BAD_FIRST:
        return True
    return head[:1] in "\"'" and head[1:2].isspace()  # a straight quote that closes


def continues_quote(sentence: str) -> bool:
    """Return True if the first quotation mark in `sentence` closes a quote begun earlier.

    "From there, I tried to enter California… ,” he said." is the end of someone's speech
    whose start is in another sentence. A mark after a letter and before a space is an
    apostrophe ("the players’ union"), not a closing mark.
    """
    for m in _ANY_QUOTE.finditer(sentence):
        mark = m.group()
        before = sentence[m.start() - 1] if m.start() else " "
        after = sentence[m.end() : m.end() + 1] or " "
        if mark in "“„«‹‘‚":
            return False
        if mark == "”":
            return True
        if mark in "\"'’":
            if before in ".,!?…" and (after.isspace() or after in ".,;:!?"):
                return True
            if before.isspace() or before in "([—–-":
                return False
    return False


def points_back(sentence: str, language: str = "english") -> bool:
    """Return True if a lone `sentence` needs one before it to be understood.

    It opens mid-thought ("They …", "But …", "From there, …"), stages a scene ("Enter
    South Dakota …"), puts a pronoun after an opening phrase ("In a new study, they …")
    or ends a quote that began earlier.
    """
    if opens_mid_thought(sentence, language) or continues_quote(sentence):
        return True
    name = normalize_language(language)
    head = sentence[:100]
    if "(" in head:
        head = _DATELINE.sub("", head, count=1)
    staged = _STAGED_OPENERS.get(name)
    if staged is not None and staged.match(head):
        return True
    after_phrase = _PRONOUN_AFTER_PHRASE.get(name)
    return after_phrase is not None and bool(after_phrase.match(head))


def is_teaser(sentence: str) -> bool:
    """Return True for text cut off with an ellipsis: "… al limite..." ("?..." is not)."""
    m = _TEASER_END.search(sentence)
    return m is not None and sentence[: m.start()].rstrip()[-1:] not in "?!"


def is_label_run(sentence: str) -> bool:
    """Return True for a run of "Label: value" pairs, as spec boxes and file pages show."""
    labels = [m.group(1) for m in _LABEL.finditer(sentence)]
    return sum(1 for label in labels if label[:1].isupper()) >= 2


def is_image_size(sentence: str) -> bool:
    """Return True for an image's dimensions as a caption: "360 x 640 (53,6 килобайт)"."""
    if not _DIMENSIONS.search(sentence):
        return False
    return bool(_FILE_SIZE.search(sentence)) or word_count(sentence) <= 6


def is_marked_caption(sentence: str) -> bool:
    """Return True for a caption with a marker: "(pictured)", "pictured with", "… 1916 ."

    Unlike `is_caption`, a label and colon ("Evicted: Hayley …") is not enough: in the
    lead of a news story that is as often the facts as a caption.
    """
    if _DETACHED_STOP.search(sentence[-4:]) or _CAPTION_LABEL.match(sentence):
        return True
    low = sentence.lower()
    return any(h in low for h in _CAPTION_HINTS) and bool(_CAPTION_MARKER.search(sentence))


def opens_with_connective(sentence: str, language: str = "english") -> bool:
    """Return True if `sentence` opens with a connective: "But …", "However, …"."""
    connectives = _CONNECTIVES.get(normalize_language(language))
    if not connectives:
        return False
    words = _FIRST_WORDS.findall(_DATELINE.sub("", sentence[:100], count=1)[:40])
    return bool(words) and words[0].casefold() in connectives


def stands_alone(sentence: str, language: str = "english") -> bool:
    """Return True if `sentence` can be read without the text around it."""
    return not (
        is_boilerplate(sentence, language)
        or is_caption(sentence)
        or is_quotation(sentence)
        or is_quote_only(sentence)
        or is_question(sentence)
        or is_fragment(sentence, language)
        or points_back(sentence, language)
        or opens_with_punctuation(sentence)
    )
