"""Render an issue to email-safe HTML and plain text, with premailer run once.

Templates see only plain, already-cleaned values (never a model object):

    site_name, site_url, date (ISO), date_long ("Wednesday, November 25, 2026"),
    subject, preheader, lang ([site].language, "en"), unsubscribe_url, view_url,
    preferences_url ("" when there is no preferences page to link to),
    postal_address  the sender's postal address, one line ("" when not configured)
    lead      StoryView: n, title, url, summary, source, author, when, meta, image,
              image_width, image_height (the lead image's box in px; height 0 = unknown),
              lang (the article's ISO 639-1 code, or ""), lang_tag ("DE" when the
              article's language is not the issue's, else ""), lang_name ("German"),
              also (list of AlsoView: source, url, title: the same story elsewhere),
              heading (a roundup section title to show above this story, else "")
    roundup   list of StoryView, numbered from 1
    links     list of LinkView (n, url): the roundup links, for the text part's list
    more      how many more stories the archive lists ("and N more stories")
    more_url  where they are listed: the archive page of this issue

`url` and `image` are "" unless they are http(s), so a template cannot link to
`javascript:`; every other string is one line of plain text that autoescape escapes
in .html templates (.txt templates are not escaped: plain text needs no escaping).
`when` (and so `meta`) holds a time placeholder that delivery words at send time
(see digest.text.storytime); it is "" for an undated story.

The `breakable` filter escapes a string and adds line-break opportunities (<wbr>)
inside long tokens, for text shown in HTML; never use it on a URL in an attribute.

Templates translate their words with `{% trans %}` / `_()` (jinja2.ext.i18n) from the
catalog of the issue's language (`digest.text.i18n`); dates and relative times arrive
already in that language.
"""

from __future__ import annotations

import functools
import logging
import re
import textwrap
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import premailer
from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    select_autoescape,
)
from markupsafe import Markup, escape

from digest.errors import RenderError
from digest.models import Issue, RenderedIssue, Story
from digest.render.emailsafety import GMAIL_CLIP_BYTES
from digest.text import i18n
from digest.text.clean import one_line
from digest.text.language import to_code
from digest.text.storytime import TIME_PLACEHOLDER, time_placeholder

log = logging.getLogger(__name__)


def _shipped_templates() -> Path:
    """Return the shipped templates folder: inside an installed wheel, or the repo's.

    The repository keeps them at the top level (`templates/`); building a wheel copies
    them into `digest/render/templates/` (see setup.py), and a source checkout or an
    editable install reads the top-level folder directly.
    """
    installed = Path(__file__).parent / "templates"
    return installed if installed.is_dir() else Path(__file__).resolve().parents[2] / "templates"


SHIPPED_TEMPLATES = _shipped_templates()
HTML_TEMPLATE = "digest.html"
TEXT_TEMPLATE = "digest.txt"

MAX_TITLE = 300
MAX_LEAD_SUMMARY = 900
MAX_ITEM_SUMMARY = 220  # about four lines on a phone: roundup items stay one glance each
MAX_NAME = 80
MAX_PREHEADER = 150
MAX_ADDRESS = 200
DEFAULT_SUBJECT = "{headlines}"
DEFAULT_MAX_SUBJECT = 70  # what a desktop inbox list shows (the lint's SUBJECT_SHOWN)
SUBJECT_JOIN = " · "

# Yahoo Mail and Outlook.com drop `word-break`, so one long word or URL would widen the
# whole layout: tokens longer than LONG_TOKEN get a <wbr> at least every BREAK_EVERY
# characters (sooner after URL punctuation). 16 characters of a 26px bold headline
# still fit a 320px phone.
LONG_TOKEN = 30
BREAK_EVERY = 16
_BREAK_AFTER = frozenset("/?&=#-_.,;:")
# Stands for <wbr> until premailer is done: lxml's HTML parser does not know <wbr> is
# void and would wrap the rest of the text in it. A private-use character no feed sends
# on purpose; any that do arrive are removed before marking.
_WBR_MARK = "\ue000"
# Lead image: the template's box is LEAD_WIDTH wide; a tall (portrait) image is shown
# narrower rather than taller than LEAD_MAX_HEIGHT, so the headline stays on the first screen.
LEAD_WIDTH = 560
LEAD_MAX_HEIGHT = 360

# Whitespace other than a plain space, and controls, never belong in a URL we emit.
_BAD_URL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s")


@dataclass(frozen=True)
class AlsoView:
    """The same story at another source: "Also: Source B"."""

    source: str
    url: str
    title: str


@dataclass(frozen=True)
class StoryView:
    """One story as the templates see it: plain one-line strings."""

    n: int
    title: str
    url: str
    summary: str
    source: str
    author: str
    when: str
    meta: str
    image: str = ""
    lang: str = ""  # the article's ISO 639-1 code, "" when unknown
    lang_tag: str = ""  # "DE" when the article is not in the issue's language
    lang_name: str = ""  # the article's language named in the issue's ("German")
    image_width: int = LEAD_WIDTH
    image_height: int = 0  # 0: unknown, let the client size it (CSS caps it)
    also: tuple[AlsoView, ...] = ()
    heading: str = ""


@dataclass(frozen=True)
class LinkView:
    """A numbered link for the plain-text part's link list."""

    n: int
    url: str


def safe_url(url: str | None) -> str:
    """Return `url` if it is an absolute http(s) URL, else ""; spaces are percent-encoded."""
    if not url:
        return ""
    url = url.strip()
    if _BAD_URL_CHARS.search(url):
        return ""
    url = url.replace(" ", "%20")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # e.g. a malformed IPv6 literal
        return ""
    if parts.scheme.lower() not in ("http", "https") or not host:
        return ""
    return url


def wrap_text(text: str, width: int = 72, indent: str = "", first: str | None = None) -> str:
    """Wrap plain text at `width` columns without ever breaking a word or URL."""
    return textwrap.fill(
        str(text),
        width=width,
        initial_indent=indent if first is None else first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


@functools.lru_cache(maxsize=16)
def make_environment(templates_dir: str | Path | None, language: str = "en") -> Environment:
    """Return the one Jinja environment: the user's folder first, then the shipped templates.

    `_()` and `{% trans %}` translate into `language` (English where it has no catalog).
    Built once per folder and language: an issue rendered once per choice of sections
    (and every preview reload) reuses the compiled templates; Jinja still reloads a
    template whose file changed.
    """
    loaders: list[BaseLoader] = []
    if templates_dir:
        folder = Path(templates_dir)
        if not folder.is_dir():
            raise RenderError(
                f"templates folder {str(folder)!r} does not exist; fix [render].templates"
            )
        loaders.append(FileSystemLoader(folder))
    loaders.append(FileSystemLoader(SHIPPED_TEMPLATES))
    env: Environment = i18n.jinja_environment(
        ChoiceLoader(loaders),
        language,
        # Escape in HTML templates only: escaping the text part would show "&amp;" to readers.
        autoescape=select_autoescape(
            enabled_extensions=("html", "htm", "xml"), default_for_string=True, default=False
        ),
    )
    env.globals["language"] = language
    env.filters["wrap"] = wrap_text
    env.filters["breakable"] = breakable
    return env


def _break_token(token: str) -> list[str]:
    """Split a long token into pieces no longer than BREAK_EVERY characters."""
    if len(token) <= LONG_TOKEN or TIME_PLACEHOLDER.fullmatch(token):
        return [token]
    pieces: list[str] = []
    start = 0
    for i, ch in enumerate(token):
        run = i + 1 - start
        if i + 1 < len(token) and (run >= BREAK_EVERY or (ch in _BREAK_AFTER and run >= 4)):
            pieces.append(token[start : i + 1])
            start = i + 1
    pieces.append(token[start:])
    return pieces


def breakable(text: object) -> Markup:
    """Escape text for HTML and let long tokens (URLs, compounds) wrap anywhere in them."""
    value = str(text).replace(_WBR_MARK, "")
    words = value.split(" ")
    return Markup(" ").join(
        Markup(_WBR_MARK).join(escape(piece) for piece in _break_token(word)) for word in words
    )


def long_date(iso: str, *, weekday: bool = True, language: str = "en") -> str:
    """Return an ISO date as "Wednesday, November 25, 2026" in `language` (Babel's CLDR)."""
    return i18n.long_date(date.fromisoformat(iso), language, weekday=weekday)


def _first_sentence(text: str) -> str:
    return _SENTENCE_END.split(text.strip(), maxsplit=1)[0] if text.strip() else ""


def _summary(story: Story) -> str:
    """Return the story's summary, falling back to the feed's own description."""
    return story.summary or story.article.feed_summary


def _lead_box(width: int | None, height: int | None) -> tuple[int, int]:
    """Return the (width, height) to show the lead image at; height 0 when unknown."""
    if not width or not height or width <= 0 or height <= 0:
        return LEAD_WIDTH, 0
    shown_w = min(width, LEAD_WIDTH)
    shown_h = round(height * shown_w / width)
    if shown_h > LEAD_MAX_HEIGHT:  # portrait: narrower, never cropped or squashed
        shown_w = max(round(shown_w * LEAD_MAX_HEIGHT / shown_h), 1)
        shown_h = LEAD_MAX_HEIGHT
    return shown_w, max(shown_h, 1)


def _story_view(
    story: Story,
    n: int,
    *,
    summary_limit: int,
    with_author: bool = False,
    language: str = "en",
    heading: str = "",
) -> StoryView:
    art = story.article
    source = one_line(art.source, MAX_NAME)
    author = one_line(art.author or "", MAX_NAME)
    # Only a date the source stated: when we happened to fetch it says nothing to readers.
    when = time_placeholder(art.published) if art.published is not None else ""
    image = safe_url(art.image)
    width, height = _lead_box(art.image_width, art.image_height) if image else (LEAD_WIDTH, 0)
    lang = _code(art.language)
    other = bool(lang) and lang != language
    also = tuple(
        AlsoView(
            source=one_line(a.source, MAX_NAME),
            url=safe_url(a.url),
            title=one_line(a.title, MAX_TITLE),
        )
        for a in story.also
    )
    return StoryView(
        lang=lang,
        lang_tag=lang.upper() if other else "",
        lang_name=i18n.language_name(lang, language) if other else "",
        n=n,
        title=one_line(art.title, MAX_TITLE) or i18n.translate(language, "(untitled)"),
        url=safe_url(art.url),
        summary=one_line(_summary(story), summary_limit),
        source=source,
        author=author,
        when=when,
        meta=" · ".join(p for p in (source, author if with_author else "", when) if p),
        image=image,
        image_width=width,
        image_height=height,
        also=also,
        heading=one_line(heading, MAX_NAME),
    )


def _code(language: str | None) -> str:
    """Return an article's language as an ISO 639-1 code for `lang`, or "" if unknown."""
    if not language:
        return ""
    try:
        return to_code(language)
    except ValueError:
        return ""


def _template_location(exc: BaseException, fallback: str) -> str:
    """Return "file, line N" for the innermost template frame of a render-time error."""
    # Jinja rewrites tracebacks so template code appears as frames of the template file.
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if not frame.filename.endswith(".py") and frame.lineno is not None:
            return f"template {frame.filename}, line {frame.lineno}"
    return f"template {fallback}"


def _render_template(env: Environment, name: str, context: dict[str, Any]) -> str:
    try:
        return env.get_template(name).render(context)
    except TemplateSyntaxError as exc:
        where = exc.filename or exc.name or name
        raise RenderError(
            f"template {where}, line {exc.lineno}: {exc.message}; fix the template syntax"
        ) from exc
    except TemplateNotFound as exc:
        raise RenderError(
            f"template {exc.name!r} not found (needed by {name}); "
            "add it to your templates folder or remove the reference"
        ) from exc
    # A template is user code: its runtime mistakes are the operator's to fix, not bugs.
    except (
        TemplateError,
        TypeError,
        ValueError,
        LookupError,
        AttributeError,
        ArithmeticError,
    ) as exc:
        raise RenderError(
            f"{_template_location(exc, name)}: {type(exc).__name__}: {exc}; fix the template"
        ) from exc


def inline_css(html: str) -> str:
    """Inline the <style> rules into style attributes; keep only @media blocks in <style>."""
    try:
        return str(
            premailer.Premailer(
                html,
                base_url=None,  # no URL rewriting: every link is already absolute
                remove_classes=False,  # the @media rules still target classes
                strip_important=False,  # @media overrides need !important to beat inline styles
                # False keeps only what cannot be inlined (the @media blocks, to which
                # premailer adds !important); True would also keep every inlined rule.
                keep_style_tags=False,
                cssutils_logging_level=logging.CRITICAL,
                allow_network=False,  # never fetch <link rel=stylesheet> or external_styles
                allow_loading_external_files=False,
                disable_validation=True,  # email CSS (mso-*, -webkit-*) is not in cssutils' profile
                # Keep the templates' explicit width/height attributes (600, 560) instead
                # of premailer copying "100%"/"auto" from the CSS over them.
                disable_basic_attributes=["width", "height"],
                # Its float check re-parses every <img> style with cssutils validation on,
                # which costs ~100 ms of regex compiling per process; we float nothing.
                align_floating_images=False,
            ).transform()
        )
    except Exception as exc:  # premailer/lxml/cssutils raise many types on odd markup
        raise RenderError(
            f"inlining CSS failed ({type(exc).__name__}: {exc}); check the templates' <style>"
        ) from exc


def _check_link(name: str, url: str) -> str:
    if url.startswith("mailto:") or safe_url(url):
        return url
    raise RenderError(f"{name} {url!r} is not an http(s) or mailto: URL; check [site].url")


def subject_line(
    template: str, *, site: str, lead: str, more: Sequence[str], day: str, limit: int
) -> str:
    """Return the subject: `template` filled in, one line, at most `limit` characters.

    {headlines} is the lead's title, followed by one more story's title when both fit
    in `limit`; the site's name is already in From, so the default leaves it out.
    """
    headlines = lead
    if more and len(lead + SUBJECT_JOIN + more[0]) <= limit:
        headlines = lead + SUBJECT_JOIN + more[0]
    try:
        raw = template.format(site=site, lead=lead, headlines=headlines, date=day)
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise RenderError(
            f"subject template {template!r}: bad placeholder ({exc}); "
            "use only {headlines}, {lead}, {site} and {date}"
        ) from None
    return one_line(raw, limit)


def render_issue(
    issue: Issue,
    *,
    env: Environment,
    now: datetime,
    tz: tzinfo,
    subject_template: str = DEFAULT_SUBJECT,
    max_subject: int = DEFAULT_MAX_SUBJECT,
    unsubscribe_url: str,
    view_url: str,
    language: str = "en",
    preferences_url: str = "",
    postal_address: str = "",
) -> RenderedIssue:
    """Render an issue to inlined HTML, plain text, subject and preheader, once.

    Story times are placeholders, worded when the issue is sent (digest.text.storytime);
    `now` and `tz` only date the issue's own log lines. `language` ([site].language) is
    the email's `lang` and its interface's language, whatever the lead story is written
    in; `env` should translate into it too.
    """
    lead = _story_view(
        issue.lead, 0, summary_limit=MAX_LEAD_SUMMARY, with_author=True, language=language
    )
    roundup = [
        _story_view(
            s,
            i,
            summary_limit=MAX_ITEM_SUMMARY,
            language=language,
            # A heading above the first story of each section.
            heading=s.section
            if s.section != (issue.roundup[i - 2].section if i > 1 else "")
            else "",
        )
        for i, s in enumerate(issue.roundup, start=1)
    ]
    date_long = long_date(issue.date, language=language)
    site_name = one_line(issue.site_name, MAX_NAME)
    subject = subject_line(
        subject_template,
        site=site_name,
        lead=lead.title,
        more=[v.title for v in roundup],
        day=long_date(issue.date, weekday=False, language=language),
        limit=max_subject,
    )
    lead_sentence = (
        issue.lead.sentences[0] if issue.lead.sentences else _first_sentence(lead.summary)
    )
    preheader = one_line(lead_sentence, MAX_PREHEADER)

    context: dict[str, Any] = {
        "site_name": site_name,
        "site_url": safe_url(issue.site_url),
        "date": issue.date,
        "date_long": date_long,
        "subject": subject,
        "preheader": preheader,
        "lang": language,
        "lead": lead,
        "roundup": roundup,
        "links": [LinkView(n=v.n, url=v.url) for v in roundup if v.url],
        "unsubscribe_url": _check_link("unsubscribe_url", unsubscribe_url),
        "view_url": _check_link("view_url", view_url),
        "preferences_url": _check_link("preferences_url", preferences_url)
        if preferences_url
        else "",
        "postal_address": one_line(", ".join(postal_address.splitlines()), MAX_ADDRESS),
        "more": len(issue.more),
        "more_url": _check_link("view_url", view_url) + "#more",
    }
    html = inline_css(_render_template(env, HTML_TEMPLATE, context))
    html = html.replace(_WBR_MARK, "<wbr>")
    text = _render_template(env, TEXT_TEMPLATE, context).replace(_WBR_MARK, "")
    text = "\n".join(line.rstrip() for line in text.strip().splitlines()) + "\n"
    size = len(html.encode("utf-8"))
    if size > GMAIL_CLIP_BYTES:
        log.warning(
            "issue %s HTML is %d bytes; Gmail clips messages over %d bytes (lower max_roundup)",
            issue.date,
            size,
            GMAIL_CLIP_BYTES,
        )
    log.debug(
        "rendered issue %s at %s: %d bytes HTML, %d chars text",
        issue.date,
        now.astimezone(tz).isoformat(timespec="minutes"),
        size,
        len(text),
    )
    return RenderedIssue(
        date=issue.date, subject=subject, html=html, text=text, preheader=preheader
    )
