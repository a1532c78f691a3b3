"""Render an issue to email-safe HTML and plain text, with premailer run once.

Templates see only plain, already-cleaned values (never a model object):

    site_name, site_url, date (ISO), date_long ("Wednesday, November 25, 2026"),
    subject, preheader, lang ("en"), unsubscribe_url, view_url,
    preferences_url ("" when there is no preferences page to link to),
    lead      StoryView: n, title, url, summary, source, author, when, meta, image
    roundup   list of StoryView, numbered from 1
    links     list of LinkView (n, url): the roundup links, for the text part's list

`url` and `image` are "" unless they are http(s), so a template cannot link to
`javascript:`; every other string is one line of plain text that autoescape escapes
in .html templates (.txt templates are not escaped: plain text needs no escaping).
"""

from __future__ import annotations

import logging
import re
import textwrap
import traceback
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import premailer
from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    select_autoescape,
)

from digest.compose import relative_time, story_time
from digest.errors import RenderError
from digest.models import Issue, RenderedIssue, Story
from digest.render.emailsafety import GMAIL_CLIP_BYTES
from digest.textclean import one_line

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
MAX_ITEM_SUMMARY = 400
MAX_NAME = 80
MAX_PREHEADER = 150

_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
# [sources].language / [summary].language names → the HTML lang attribute.
_LANG_CODES = {
    "english": "en", "german": "de", "french": "fr", "spanish": "es",
    "russian": "ru", "italian": "it", "portuguese": "pt", "dutch": "nl",
}  # fmt: skip
# Whitespace other than a plain space, and controls, never belong in a URL we emit.
_BAD_URL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s")


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


def make_environment(templates_dir: str | Path | None) -> Environment:
    """Return the one Jinja environment: the user's folder first, then the shipped templates."""
    loaders: list[BaseLoader] = []
    if templates_dir:
        folder = Path(templates_dir)
        if not folder.is_dir():
            raise RenderError(
                f"templates folder {str(folder)!r} does not exist; fix [render].templates"
            )
        loaders.append(FileSystemLoader(folder))
    loaders.append(FileSystemLoader(SHIPPED_TEMPLATES))
    env = Environment(
        loader=ChoiceLoader(loaders),
        # Escape in HTML templates only: escaping the text part would show "&amp;" to readers.
        autoescape=select_autoescape(
            enabled_extensions=("html", "htm", "xml"), default_for_string=True, default=False
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["wrap"] = wrap_text
    return env


def long_date(iso: str, *, weekday: bool = True) -> str:
    """Return an ISO date as "Wednesday, November 25, 2026" (English, locale-independent)."""
    d = date.fromisoformat(iso)
    day = f"{_MONTHS[d.month - 1]} {d.day}, {d.year}"
    return f"{_DAYS[d.weekday()]}, {day}" if weekday else day


def _first_sentence(text: str) -> str:
    return _SENTENCE_END.split(text.strip(), maxsplit=1)[0] if text.strip() else ""


def _summary(story: Story) -> str:
    """Return the story's summary, falling back to the feed's own description."""
    return story.summary or story.article.feed_summary


def _story_view(
    story: Story, n: int, *, now: datetime, summary_limit: int, with_author: bool = False
) -> StoryView:
    art = story.article
    source = one_line(art.source, MAX_NAME)
    author = one_line(art.author or "", MAX_NAME)
    when = story_time(story)
    ago = relative_time(when, now) if when is not None else ""
    return StoryView(
        n=n,
        title=one_line(art.title, MAX_TITLE) or "(untitled)",
        url=safe_url(art.url),
        summary=one_line(_summary(story), summary_limit),
        source=source,
        author=author,
        when=ago,
        meta=" · ".join(p for p in (source, author if with_author else "", ago) if p),
        image=safe_url(art.image),
    )


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


def render_issue(
    issue: Issue,
    *,
    env: Environment,
    now: datetime,
    tz: ZoneInfo,
    subject_template: str = "{site} — {lead}",
    max_subject: int = 120,
    unsubscribe_url: str,
    view_url: str,
    preferences_url: str = "",
) -> RenderedIssue:
    """Render an issue to inlined HTML, plain text, subject and preheader, once."""
    local_now = now.astimezone(tz)
    lead = _story_view(
        issue.lead, 0, now=local_now, summary_limit=MAX_LEAD_SUMMARY, with_author=True
    )
    roundup = [
        _story_view(s, i, now=local_now, summary_limit=MAX_ITEM_SUMMARY)
        for i, s in enumerate(issue.roundup, start=1)
    ]
    date_long = long_date(issue.date)
    site_name = one_line(issue.site_name, MAX_NAME)

    try:
        raw_subject = subject_template.format(
            site=site_name, lead=lead.title, date=long_date(issue.date, weekday=False)
        )
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise RenderError(
            f"subject template {subject_template!r}: bad placeholder ({exc}); "
            "use only {site}, {lead} and {date}"
        ) from None
    subject = one_line(raw_subject, max_subject)
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
        "lang": _LANG_CODES.get(issue.lead.article.language or "", "en"),
        "lead": lead,
        "roundup": roundup,
        "links": [LinkView(n=v.n, url=v.url) for v in roundup if v.url],
        "unsubscribe_url": _check_link("unsubscribe_url", unsubscribe_url),
        "view_url": _check_link("view_url", view_url),
        "preferences_url": _check_link("preferences_url", preferences_url)
        if preferences_url
        else "",
    }
    html = inline_css(_render_template(env, HTML_TEMPLATE, context))
    text = _render_template(env, TEXT_TEMPLATE, context)
    text = "\n".join(line.rstrip() for line in text.strip().splitlines()) + "\n"
    size = len(html.encode("utf-8"))
    if size > GMAIL_CLIP_BYTES:
        log.warning(
            "issue %s HTML is %d bytes; Gmail clips messages over %d bytes (lower max_roundup)",
            issue.date,
            size,
            GMAIL_CLIP_BYTES,
        )
    log.debug("rendered issue %s: %d bytes HTML, %d chars text", issue.date, size, len(text))
    return RenderedIssue(
        date=issue.date, subject=subject, html=html, text=text, preheader=preheader
    )
