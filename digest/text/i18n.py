"""The reader-facing interface in the site's language: gettext catalogs and Babel formats.

`[site].language` (ISO 639-1, default "en") picks the catalog that translates every
string a reader sees: the email's headings, buttons and footer, relative times and
dates, and the web pages (sign-up, confirmation, preferences, unsubscribe, archive) with
the confirmation mail. Catalogs are `.po` files in
`digest/locale/<code>/LC_MESSAGES/digest.po`, compiled to the `.mo` beside them and
shipped in the package (tests check each `.mo` matches its `.po`). A language without a
catalog, or a string missing from one, falls back to the English text, string by
string: never an error. Dates and "4 hours ago" come from Babel's CLDR data, so they
are right in every language Babel knows, catalog or not.

Babel is imported on first use, so `digest --help` does not pay for it.
"""

from __future__ import annotations

import gettext as _gettext
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any

LOCALE_DIR = Path(__file__).parent.parent / "locale"
DOMAIN = "digest"


def catalog_languages() -> tuple[str, ...]:
    """Return the languages with a shipped catalog (English needs none)."""
    found = sorted(p.parent.parent.name for p in LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.mo"))
    return ("en", *found)


@cache
def translations(language: str, locale_dir: Path = LOCALE_DIR) -> _gettext.NullTranslations:
    """Return the catalog for `language`; English (the msgids themselves) when there is none."""
    if language and language != "en":
        path = locale_dir / language / "LC_MESSAGES" / f"{DOMAIN}.mo"
        if path.is_file():
            with path.open("rb") as fh:
                return _gettext.GNUTranslations(fh)
    return _gettext.NullTranslations()


def translate(language: str, message: str, **values: Any) -> str:
    """Return `message` in `language` (English when untranslated), with %(name)s filled in."""
    text = translations(language).gettext(message)
    return text % values if values else text


def _locale(language: str) -> Any:
    from babel import Locale, UnknownLocaleError

    try:
        return Locale.parse(language or "en")
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")


def long_date(day: date, language: str, *, weekday: bool = True) -> str:
    """Return a date as "Sunday, November 29, 2026" / "Sonntag, 29. November 2026"."""
    from babel.dates import format_date

    return str(format_date(day, "full" if weekday else "long", locale=_locale(language)))


def short_date(day: date, language: str, *, with_year: bool) -> str:
    """Return a date as "Nov 3" / "3. Nov." (with the year: "Oct 21, 2025")."""
    from babel.dates import format_skeleton

    return str(format_skeleton("yMMMd" if with_year else "MMMd", day, locale=_locale(language)))


def ago(amount: int, unit: str, language: str) -> str:
    """Return "4 hours ago" / "vor 4 Stunden" for a whole number of minutes, hours or days."""
    from babel.dates import format_timedelta

    delta = timedelta(**{unit: amount})
    # threshold=1: never round 23 hours up to "1 day"; the caller picked the unit.
    return str(format_timedelta(-delta, threshold=1, add_direction=True, locale=_locale(language)))


def language_name(code: str, language: str) -> str:
    """Return the name of language `code` in `language` ("de" in "en" → "German")."""
    from babel import Locale, UnknownLocaleError

    try:
        name = Locale.parse(code).get_display_name(_locale(language))
    except (UnknownLocaleError, ValueError):
        return code
    return str(name) if name else code


def jinja_environment(loader: Any, language: str, *, autoescape: Any) -> Any:
    """Return a Jinja environment for what readers see: undefined names fail, blocks are
    trimmed, and `_()` translates into `language` (the email and the web pages share it)."""
    from jinja2 import Environment, StrictUndefined

    env = Environment(
        loader=loader,
        autoescape=autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    return env
