"""The interface in the site's language: catalogs complete and compiled, German end to end."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from digest.compose import relative_time
from digest.config.load import load_config
from digest.models import Article, Issue, Story
from digest.render import long_date, make_environment, render_issue
from digest.store import Store
from digest.text import i18n
from digest.text.storytime import fill_times
from digest.web import create_app
from tests.test_web import LocalWebServer

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "digest" / "locale"
SHIPPED = ("de", "fr", "es", "it", "pt")
NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def extracted() -> set[str]:
    """Return every interface string in the code and templates, as `pybabel extract` sees it."""
    method_map = [
        ("digest/**.py", "python"),
        ("templates/**", "jinja2"),
        ("digest/web/templates/**", "jinja2"),  # the readers' pages and the opt-in mail
    ]
    jinja = {"extensions": "jinja2.ext.i18n", "trim_blocks": "true"}
    options = {"templates/**": jinja, "digest/web/templates/**": jinja}
    keywords = {"_": None, "gettext": None, "translate": (2,), "PreferenceError": None}
    found = extract_from_dir(str(ROOT), method_map, options, keywords=keywords, comment_tags=())
    return {str(message) for _, _, message, _, _ in found}


def catalog(language: str) -> dict[str, str]:
    with (LOCALE / language / "LC_MESSAGES" / "digest.po").open("rb") as fh:
        cat = read_po(fh, locale=language)
    return {str(m.id): str(m.string) for m in cat if m.id}


def test_shipped_catalogs() -> None:
    assert i18n.catalog_languages() == ("en", *sorted(SHIPPED))


@pytest.mark.parametrize("language", SHIPPED)
def test_every_interface_string_is_translated(language: str) -> None:
    strings = extracted()
    assert {"Read more", "Recent posts", "just now", "Welcome back"} <= strings
    translated = catalog(language)
    missing = sorted(s for s in strings if not translated.get(s))
    assert not missing, f"{language}: untranslated {missing}"
    # The template for new languages lists the same strings.
    with (LOCALE / "digest.pot").open("rb") as fh:
        assert {str(m.id) for m in read_po(fh) if m.id} == strings


@pytest.mark.parametrize("language", SHIPPED)
def test_compiled_catalogs_match_their_po(language: str) -> None:
    translations = i18n.translations(language)
    for msgid, msgstr in catalog(language).items():
        assert translations.gettext(msgid) == msgstr, f"recompile {language}: {msgid!r}"


def test_a_missing_translation_falls_back_to_english_per_string(tmp_path: Path) -> None:
    with (LOCALE / "de" / "LC_MESSAGES" / "digest.po").open("rb") as fh:
        cat = read_po(fh, locale="de")
    del cat["Recent posts"]
    out = tmp_path / "de" / "LC_MESSAGES"
    out.mkdir(parents=True)
    with (out / "digest.mo").open("wb") as fh:
        write_mo(fh, cat)
    partial = i18n.translations("de", tmp_path)
    assert partial.gettext("Read more") == "Weiterlesen"
    assert partial.gettext("Recent posts") == "Recent posts"
    # No catalog at all: English words, the language's own dates.
    assert i18n.translate("ja", "Read more") == "Read more"
    assert long_date("2026-11-29", language="ja") == "2026年11月29日日曜日"
    assert i18n.translate("xx", "yesterday") == "yesterday"


@pytest.mark.parametrize(
    ("language", "ago", "expected"),
    [
        ("de", timedelta(hours=4), "vor 4 Stunden"),
        ("de", timedelta(minutes=1), "vor 1 Minute"),
        ("de", timedelta(seconds=5), "gerade eben"),
        ("de", timedelta(hours=30), "gestern"),
        ("de", timedelta(days=3), "vor 3 Tagen"),
        ("de", timedelta(days=20), "9. Nov."),
        ("fr", timedelta(hours=4), "il y a 4 heures"),
        ("es", timedelta(days=3), "hace 3 días"),
        ("it", timedelta(hours=30), "ieri"),
        ("pt", timedelta(minutes=5), "há 5 minutos"),
        ("en", timedelta(hours=23, minutes=59), "23 hours ago"),
    ],
)
def test_relative_times(language: str, ago: timedelta, expected: str) -> None:
    assert relative_time(NOW - ago, NOW, language) == expected


def test_dates() -> None:
    assert long_date("2026-11-29") == "Sunday, November 29, 2026"
    assert long_date("2026-11-29", language="de") == "Sonntag, 29. November 2026"
    assert long_date("2026-11-29", language="fr", weekday=False) == "29 novembre 2026"
    assert i18n.short_date(date(2025, 10, 21), "de", with_year=True) == "21. Okt. 2025"


def _issue(language: str) -> Issue:
    def story(title: str, lang: str, hours: int) -> Story:
        art = Article(
            source="Quelle",
            guid=title,
            url=f"https://a.example/{hours}",
            title=title,
            text="x",
            published=NOW - timedelta(hours=hours),
            language=lang,
        )
        return Story(article=art, sentences=(f"{title} ist ein Satz.",))

    return Issue(
        site_name="Der Überblick",
        site_url="https://news.example.com",
        date="2026-11-29",
        created_at=NOW,
        lead=story("Radwege", language, 4),
        roundup=(story("Bäume", language, 26), story("Trees", "en", 1)),
    )


def test_a_german_issue_has_no_english_interface_word() -> None:
    out = render_issue(
        _issue("de"),
        env=make_environment(None, "de"),
        now=NOW,
        tz=UTC,
        unsubscribe_url="https://news.example.com/unsubscribe?token=T",
        view_url="https://news.example.com/archive/2026-11-29",
        language="de",
        subject_template="{site} am {date}",
    )
    # Story times are worded at send time, in the site's language.
    html = fill_times(out.html, UTC, now=NOW, html=True, language="de")
    text = fill_times(out.text, UTC, now=NOW, language="de")
    archived = fill_times(out.html, UTC, now=None, day=date(2026, 11, 29), language="de")
    assert "28. Nov., 07:00" in archived  # yesterday's story, as the archive words it
    assert out.subject == "Der Überblick am 29. November 2026"
    for part in (html, text):
        for german in ("Sonntag, 29. November 2026", "vor 4 Stunden", "gestern", "Abmelden"):
            assert german in part
        for english in ("Read more", "Recent posts", "Unsubscribe", "View in", "ago",
                        "yesterday", "You are receiving", "Sunday", "November 29"):  # fmt: skip
            assert english not in part
    assert "Weiterlesen" in html and "Weitere Meldungen" in html
    assert '<html lang="de"' in html
    # The English item is marked, in the reader's words.
    assert 'lang="en"' in html and 'title="Englisch"' in html and "[EN]" in text


def test_the_email_lang_follows_the_site_not_the_lead() -> None:
    out = render_issue(
        _issue("it"),
        env=make_environment(None, "en"),
        now=NOW,
        tz=UTC,
        unsubscribe_url="https://news.example.com/unsubscribe",
        view_url="https://news.example.com/archive/2026-11-29",
    )
    assert '<html lang="en"' in out.html
    assert 'lang="it"' in out.html and ">IT</span>" in out.html


def _site(tmp_path: Path, language: str) -> Path:
    feed = ROOT / "digest" / "sample" / "feed.xml"
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[site]\nname = "Der Überblick"\nurl = "https://news.example.com"\n'
        f'language = "{language}"\n\n[[sources]]\nname = "S"\nurl = "{feed}"\n\n'
        f'[store]\nurl = "sqlite:///{tmp_path / "d.db"}"\n',
        encoding="utf-8",
    )
    return cfg


def test_web_pages_in_german(tmp_path: Path) -> None:
    config = load_config(_site(tmp_path, "German"))
    assert config.site.language == "de"
    store = Store.open(config.store.url)
    sub, _ = store.add_subscriber("reader@example.com", now=NOW)
    with LocalWebServer(create_app(config, store, clock=lambda: NOW)) as client:
        page = client.get(f"/unsubscribe?token={sub.token}").text
        assert '<html lang="de"' in page
        assert "Abmelden?" in page and "Der Überblick nicht mehr an r•••@example.com" in page
        done = client.post(
            f"/unsubscribe?token={sub.token}", data={"List-Unsubscribe": "One-Click"}
        ).text
        assert "Sie sind abgemeldet" in done and "Wieder abonnieren" in done
        assert "Noch keine Ausgaben." in client.get("/archive").text
        assert "Dieser Link ist ungültig" in client.get("/unsubscribe?token=x").text
        for text in (page, done):
            assert "Unsubscribe" not in text.replace("List-Unsubscribe", "")


def test_the_catalogs_ship_in_the_wheel(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr.decode()
    (wheel,) = tmp_path.glob("digest-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for language in SHIPPED:
        assert f"digest/locale/{language}/LC_MESSAGES/digest.mo" in names
