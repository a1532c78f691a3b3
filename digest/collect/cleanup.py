"""The line clean-up after extraction: whole lines that are page furniture, not article text.

Each rule has a name (`RULES`), so `bench/eval_extract.py --ablate` can switch it off
and check it still earns its place. English patterns apply to English pages only;
other languages use their own (`digest.text.boilerplate`).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

from digest.text.boilerplate import is_furniture

# Whole lines that are page furniture, not article text, one pattern per rule (the rule
# names are what `bench/eval_extract.py --ablate` switches off to check each one still
# earns its place). Each is matched against the full line (case-insensitive), so a
# sentence that merely mentions "share" survives.
_FURNITURE: dict[str, re.Pattern[str]] = {
    # share widgets and their button labels
    "share": re.compile(
        r"""(?ix)^(?:share|share\ this(?:\ (?:article|story|post|page))?|share\ on\ \w+|tweet
        |email|print|facebook|twitter|x|linkedin|whatsapp|reddit|pinterest|telegram|google\+
        |copy\ link)[:!]?$"""
    ),
    # a line that is only a web address (the page's own, printed above the story)
    "bare-url": re.compile(r"(?i)^https?://\S+$"),
    # who posted it and when: a byline or dateline, not a sentence
    "byline": re.compile(
        r"""(?ix)^(?:(?:published|posted|written|submitted)
        (?:\ on\ \S+(?:\ \S+){0,3})?\ by(?:\ \S+){0,4}
        | by\ \S+(?:\ \S+){0,3}\ *[|•·]\ .{0,60})$"""
    ),
    "dateline": re.compile(
        r"""(?ix)^(?:(?:published|updated|last\ updated|posted)(?:\ on)?:?\ .{0,40}\d
        | \d+\ (?:seconds?|minutes?|hours?|days?|weeks?|months?)\ ago)$"""
    ),
    # picture credits and captions
    "credit": re.compile(
        r"""(?ix)^(?:(?:image|photo|picture|photograph|illustration|video|graphic)s?
        (?:\ (?:source|credit|courtesy|by))?\ *[:：].{0,150}
        | (?:source|credit)\ *:\ *.{1,60})$"""
    ),
    # calls to action and ad slots
    "call-to-action": re.compile(
        r"""(?ix)^(?:read\ (?:more|also|next|the\ full\ (?:story|article))\b.{0,100}
        | (?:continue\ reading|click\ here|scroll\ down\ for\ video|advertisement
        |sponsored(?:\ content)?|story\ continues\ below(?:\ advertisement)?
        |subscribe|sign\ up|follow\ us)\b.{0,100})$"""
    ),
    # filing labels
    "tags": re.compile(
        r"""(?ix)^(?:(?:tags?|categories|category)\ *:.{0,150}
        | (?:tagged|filed\ under|posted\ in)\ [^.!?]{1,150})$"""
    ),
    # cookie notices
    "cookies": re.compile(
        r"""(?ix)^(?:.{0,100}\b(?:we|this\ (?:web)?site|our\ (?:web)?site)\ uses?\ cookies\b.*
        | .{0,60}\bcookies?\ (?:policy|settings|preferences|consent)\b.{0,60})$"""
    ),
    # (No rule for "© 2019 X. All rights reserved.": people marking article text keep
    # it, and dropping it lowered F1 on the dev set.)
    # WordPress feed footer: "The post X appeared first on Y."
    "feed-footer": re.compile(r"(?i)^the post .{1,300} appeared first on .{1,100}$"),
}


# A line that starts the page's tail: nothing after it belongs to the article.
_CUT_LINES = re.compile(
    r"""(?ix)^(?:
      (?:recent|related|popular|latest|trending|most\ read|more)\ (?:posts|articles|stories|news)
    | you\ (?:may|might)\ also\ (?:like|be\ interested\ in)
    | (?:leave\ a\ (?:reply|comment)|comments|\d+\ comments?|\d+\ (?:thoughts|responses)\ on\ .*)
    | related(?:\ (?:content|reading|coverage))?
    )\s*:?$""",
)


# Names a CMS puts in the author field when nobody signed the piece.
GENERIC_AUTHORS = frozenset(
    {"admin", "administrator", "editor", "editors", "staff", "webmaster", "root", "guest",
     "user", "anonymous", "unknown", "author", "redaktion", "rédaction", "redacción"}
)  # fmt: skip


_SENTENCE_END = re.compile(r"[.!?…:;\"'”’»)\]。！？」』）]$")


_SPACE = re.compile(r"\s+")


_WORD = re.compile(r"\w", re.UNICODE)


# The clean-up rules `clean_lines` applies, by name.
RULES: frozenset[str] = frozenset(
    {*_FURNITURE, "cut-tail", "author-line", "title-repeat", "trailing-stub", "menu-run"}
    | {"after-block"}  # applied by `digest.collect.extract`, which knows the page's blocks
)


# This many unpunctuated stubs in a row are a menu (a real list has sentences or is short).
_MENU_RUN = 6


_LABEL_WORDS = 6


_SENTENCE_MARK = re.compile(r"[.!?…:;,\"“”。！？，]")


def clean_lines(
    lines: Iterable[str],
    *,
    author: str | None = None,
    title: str | None = None,
    rules: Collection[str] = RULES,
    language: str | None = "en",
) -> list[str]:
    """Return the article lines of `lines`, without page furniture and trailing bylines.

    `rules` names the clean-up rules to apply (all by default; see `RULES`). The English
    furniture and tail patterns apply to English (`language` "en") only; other languages
    use their own from `digest.text.boilerplate`, an unknown one (None) the neutral ones.
    """
    out: list[str] = []
    names = {n.casefold() for n in (author,) if n} | GENERIC_AUTHORS
    english = language == "en"
    furniture = [p for name, p in _FURNITURE.items() if name in rules] if english else []
    own = not english and any(name in rules for name in _FURNITURE)
    for raw in lines:
        line = _unwrap_cell(collapse_space(raw))
        if not line:
            continue
        if english and "cut-tail" in rules and _CUT_LINES.match(line):
            break
        if any(p.match(line) for p in furniture) or (own and is_furniture(line, language)):
            continue
        if "author-line" in rules and line.casefold() in names:
            continue
        # trafilatura sometimes repeats the headline as the first line of the text.
        if "title-repeat" in rules and not out and title and _is_title(line, title):
            continue
        out.append(line)
    if "menu-run" in rules:
        out = _drop_menu_runs(out)
    # An unpunctuated stub after the last paragraph is a byline or a label ("admin",
    # "John Smith", "Share this"), never the end of the story.
    while "trailing-stub" in rules and out and _is_stub(out[-1]):
        out.pop()
    return out


def _unwrap_cell(line: str) -> str:
    """Return the text of a table row with one filled cell, without the row's bars.

    trafilatura writes tables as "| cell | cell |" rows; a page laid out in a table
    (older sites) gets its article as "| The council said ... |", and a summary would
    open with the bar. Rows of real tables (two or more filled cells) stay as they are.
    """
    if len(line) < 3 or line[0] != "|" or line[-1] != "|":
        return line
    filled = [c.strip() for c in line[1:-1].split("|") if c.strip()]
    if len(filled) != 1 or not _WORD.search(filled[0]):
        return line
    return filled[0]


# "Headline | Site", "Headline - Site": how a page's <title> adds the site's name.
_SITE_SUFFIX = re.compile(r"\s+[|\-–—·:]{1,2}\s+[^|\-–—·]{1,60}$")


def _is_title(line: str, title: str) -> bool:
    """Return True when `line` is the page's title, with or without the site's name."""
    line, title = line.casefold(), title.casefold()
    return line == title or line == _SITE_SUFFIX.sub("", title)


def count_words(text: str) -> int:
    return sum(1 for w in text.split() if _WORD.search(w))


def collapse_space(s: str | None) -> str:
    return _SPACE.sub(" ", s or "").strip()


def _drop_menu_runs(lines: list[str], run: int = _MENU_RUN) -> list[str]:
    """Drop every run of `run` or more labels in a row: a menu, not a list in the story."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        j = i
        while j < len(lines) and _is_label(lines[j]):
            j += 1
        if j - i >= run:
            i = j
            continue
        out.extend(lines[i : max(j, i + 1)])
        i = max(j, i + 1)
    return out


def _is_label(line: str) -> bool:
    """Return True for a menu-like line: a few words, no punctuation, not a list item.

    (trafilatura writes the items of a real <ul>/<ol> list as "- item"; menus it lets
    through come out as bare lines.)
    """
    return (
        len(line.split()) <= _LABEL_WORDS
        and not line.startswith("- ")
        and not _SENTENCE_MARK.search(line)
    )


def _is_stub(line: str) -> bool:
    # Short in words and in characters: a line of Chinese or Japanese is one "word".
    return len(line.split()) < 4 and len(line) < 40 and not _SENTENCE_END.search(line)
