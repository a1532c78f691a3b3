"""Every language its own: detection, the trust order, splitting, rules and summaries.

The texts in tests/data/lang/ are short news paragraphs written for these tests, with
the page furniture real sites put under articles in each language.
"""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from digest import pipeline
from digest.collect.cleanup import clean_lines
from digest.config.load import load_config
from digest.store import Store
from digest.summarize import summarize
from digest.summarize.rules import is_boilerplate, word_count
from digest.summarize.tokenize import (
    CjkTokenizer,
    NeutralTokenizer,
    Tokenizer,
    get_tokenizer,
    split_sentences,
)
from digest.text.boilerplate import is_furniture
from digest.text.language import choose_language, detect_language, from_tag, to_code
from digest.text.storytime import fill_times
from tests.httpserver import LocalHTTPServer, Response

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data" / "lang"
LANGUAGES = ("en", "de", "fr", "it", "es", "pt", "nl", "ru", "cs", "ja", "zh", "ko", "id")
# The lines of each text that are page furniture (the rest is the article).
FURNITURE_START = {
    "de": "Artikel aktualisiert",
    "fr": "Article mis à jour",
    "it": "Articolo aggiornato",
    "es": "Actualizado",
    "pt": "Atualizado",
    "nl": "Bijgewerkt",
    "ru": "Обновлено",
    "cs": "Aktualizováno",
    "ja": "更新日",
    "zh": "更新时间",
    "en": "Updated:",
}
NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def text(language: str) -> str:
    return (DATA / f"{language}.txt").read_text(encoding="utf-8")


def article_and_furniture(language: str) -> tuple[list[str], list[str]]:
    lines = [line for line in text(language).splitlines() if line.strip()]
    cut = FURNITURE_START.get(language)
    at = next((i for i, line in enumerate(lines) if cut and line.startswith(cut)), len(lines))
    return lines[:at], lines[at:]


# --- codes and detection --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "code"),
    [("en", "en"), ("english", "en"), ("German", "de"), ("de-AT", "de"), ("pt_BR", "pt"),
     ("zh-Hant-TW", "zh"), ("fra", "fr"), ("nb", "no"), ("", "")],
)  # fmt: skip
def test_codes_names_and_tags(value: str, code: str) -> None:
    assert to_code(value) == code


@pytest.mark.parametrize("value", ["klingon", "12", "english!", "e"])
def test_not_a_language(value: str) -> None:
    with pytest.raises(ValueError):
        to_code(value)
    assert from_tag(value) is None


@pytest.mark.parametrize("language", LANGUAGES)
def test_detection_on_each_language(language: str) -> None:
    assert detect_language(text(language)) == language
    # A lead paragraph alone is enough.
    assert detect_language(text(language).split("\n")[0]) == language


def test_too_little_text_is_not_guessed() -> None:
    assert detect_language("OK") is None
    assert choose_language("OK") == ("", "unknown")
    assert choose_language("OK", fallback="de") == ("de", "fallback")


def test_order_of_trust() -> None:
    german = text("de")
    # The operator's word is final, even against the text.
    assert choose_language(german, source="fr", page="de") == ("fr", "source")
    # A declaration the text agrees with, or too short to judge, stands.
    assert choose_language(german, page="de", feed="en") == ("de", "page")
    assert choose_language("Kurz gesagt: ja.", page="fr") == ("fr", "page")
    assert choose_language(german, feed="de") == ("de", "feed")
    # A declaration the text plainly contradicts (a CMS default left at "en") loses.
    assert choose_language(german, page="en") == ("de", "detected")
    assert choose_language(german, feed="en") == ("de", "detected")
    assert choose_language(german) == ("de", "detected")


# --- splitting ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sentence",
    [
        "Ich bin gefragt worden, ob das Verhalten von Google nicht gegen § 13 Abs. 7 TMG verstößt.",
        "NASA+ startet am kommenden Mittwoch, den 8. November, mit einem Angebot ohne Werbung.",
        "Da baumelte vom Balkon im 4. Stock ein Seil.",
        "Die Kosten werden auf ca. 120 Mio. Euro geschätzt, u. a. für neue Ampeln.",
        "Prof. Dr. Müller sagt, z. B. Siemens wachse weiter.",
        "Sie belegte den 3. Platz beim Rennen.",
        "Der Vertrag wurde am 8. Nov. 2023 unterschrieben.",
        "Laut Hrsg. Müller ist das Buch fertig.",
        "Sie wohnt in der Hauptstr. 5 in Köln.",
        "Ludwig XIV. war König von Frankreich.",
        "Der Zug kam ca. 10 Min. später an.",
    ],
)
def test_german_abbreviations_and_ordinals_do_not_end_a_sentence(sentence: str) -> None:
    assert split_sentences(f"{sentence} Danach ging es weiter.", "de") == [
        sentence,
        "Danach ging es weiter.",
    ]


def test_tokenizer_per_language() -> None:
    assert isinstance(get_tokenizer("de"), Tokenizer)
    assert get_tokenizer("german") is get_tokenizer("de")
    assert isinstance(get_tokenizer("cs"), Tokenizer)
    assert isinstance(get_tokenizer("ja"), CjkTokenizer)
    assert isinstance(get_tokenizer("zh"), CjkTokenizer)
    # No model: a neutral splitter, never English's.
    assert isinstance(get_tokenizer("ko"), NeutralTokenizer)
    assert isinstance(get_tokenizer(""), NeutralTokenizer)


def test_japanese_splits_on_its_marks_outside_quotes() -> None:
    para = "知事は「安心して学べる。環境をつくりたい。」と述べた。一方で課題も残る！本当か？"
    assert split_sentences(para, "ja") == [
        "知事は「安心して学べる。環境をつくりたい。」と述べた。",
        "一方で課題も残る！",
        "本当か？",
    ]
    # An unclosed quote does not swallow the paragraph.
    long = "「" + "東京都は来年度から給食費を無償化する。" * 20
    assert len(split_sentences(long, "ja")) == 20


def test_chinese_splits_and_counts_characters() -> None:
    sentences = split_sentences(text("zh"), "zh")
    assert (
        sentences[0]
        == "北京市政府周二宣布，将在未来三年内新建五十个城市公园，以改善居民的生活环境。"
    )
    assert "有市民表示，家附近缺少休闲空间的问题终于有望得到解决！" in sentences
    # Lengths in characters: two to a word, so limits in words read alike.
    assert word_count("据介绍，这些公园将主要分布在人口密集的中心城区。") == 11  # 21 characters
    assert word_count("The parks open in spring.") == 5


def test_neutral_splitter_keeps_initials_and_ordinals() -> None:
    para = "A. Budi datang pada 8. Mei ke Jakarta. Ia senang! Lalu pulang? ya."
    assert split_sentences(para, "id") == [
        "A. Budi datang pada 8. Mei ke Jakarta.",
        "Ia senang!",
        "Lalu pulang? ya.",
    ]


@pytest.mark.parametrize("language", ["en", "de", "fr", "it", "es", "pt", "nl", "ru", "cs"])
def test_article_sentences_split_whole(language: str) -> None:
    prose, _ = article_and_furniture(language)
    for sentence in split_sentences("\n\n".join(prose), language):
        assert re.search(r"[.!?»“”\"]$", sentence), sentence
        assert not re.search(r"\b(?:Abs|ca|Mio|Dr|Mr|u\. a|z\. B)\.$", sentence), sentence


# --- furniture rules ------------------------------------------------------------------


@pytest.mark.parametrize("language", [k for k in FURNITURE_START if k != "en"])
def test_furniture_rules_per_language(language: str) -> None:
    prose, furniture = article_and_furniture(language)
    assert furniture and all(is_furniture(line, language) for line in furniture), furniture
    assert not any(is_furniture(line, language) for line in prose)
    assert clean_lines(prose + furniture, language=language) == prose
    assert all(is_boilerplate(line, language) for line in furniture)


def test_english_rules_are_never_applied_to_other_languages() -> None:
    assert is_boilerplate("Continue reading", "en")
    assert not is_boilerplate("Continue reading", "de")
    assert clean_lines(["Read more about it", "Share"], language="en") == []
    assert clean_lines(["Read more about it"], language="fr") == ["Read more about it"]
    # Nor one language's rules to another: a French credit line is prose in German.
    assert not is_furniture("Crédit photo : AFP", "de")
    # Unknown language: only the neutral rules (a copyright sign).
    assert clean_lines(["© 2024 Koran", "Warga menyambut baik."], language=None) == [
        "Warga menyambut baik."
    ]


def test_share_buttons_are_furniture_in_every_language() -> None:
    """The networks' names are the same everywhere (lines from a Brazilian city's page)."""
    buttons = ["Facebook", "Twitter", "Google+", "Whatsapp", "E-mail"]
    story = "A equipe do Serviço de Atendimento Domiciliar registrou o arrombamento."
    for language in ("pt", "de", "id", None):
        assert clean_lines([story, *buttons], language=language) == [story]
    assert not is_furniture("O Facebook anunciou novas regras na terça-feira.", "pt")
    assert not is_furniture("Twitter: die Plattform verlor Nutzer.", "de")


def test_prose_that_only_looks_like_furniture_stays() -> None:
    assert not is_furniture("Anmelden können sich alle Bürger bis Freitag.", "de")
    assert not is_furniture("Publié en 1995, le livre a connu un grand succès.", "fr")
    assert not is_furniture("注册资本为五千万元。", "zh")


# --- summaries ------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_summary_per_language(language: str) -> None:
    summary = summarize(text(language), sentences=3, language=language)
    assert len(summary) == 3
    (one,) = summarize(text(language), sentences=1, language=language)
    for sentence in (*summary, one):
        assert not any(sentence.startswith(f) for f in FURNITURE_START.values())
        assert re.search(r"[.!?。！？」]$", sentence), sentence
        if language == "de":
            assert not re.search(r"(?:\b(?:Abs|ca|Mio|u\. a|z\. B)|\b\d{1,2})\.$", sentence)


@pytest.mark.parametrize("language", ["ja", "zh"])
def test_cjk_summary_is_never_empty_and_ends_a_sentence(language: str) -> None:
    # One long paragraph with no spaces, as pages give it.
    para = text(language).split("\n\n")[0] * 3
    (one,) = summarize(para, sentences=1, language=language)
    assert one[-1] in "。！？"
    # Every sentence longer than a one-liner: still a whole sentence, never cut.
    long = ("東京都は" + "来年度から都内の公立小中学校の給食費を" * 8 + "無償化する。") * 2
    (only,) = summarize(long, sentences=1, language="ja")
    assert only.endswith("。") and len(only) > 100
    # No sentence mark at all (a caption-like page): still a summary, not nothing.
    assert summarize(
        "北京市政府周二宣布将在未来三年内新建五十个城市公园", sentences=1, language="zh"
    )


def test_unknown_language_is_ranked_by_position() -> None:
    korean = text("ko")
    assert summarize(korean, sentences=2, language="ko") == tuple(split_sentences(korean, "ko")[:2])


# --- end to end -------------------------------------------------------------------------


def _page(title: str, body: str, lang: str | None) -> str:
    attr = f' lang="{lang}"' if lang else ""
    paragraphs = "".join(f"<p>{p}</p>" for p in body.split("\n\n") if p.strip())
    return (
        f"<!doctype html><html{attr}><head><title>{title}</title></head><body>"
        f"<article><h1>{title}</h1>{paragraphs}</article></body></html>"
    )


def _feed(server: LocalHTTPServer, language: str, slugs: list[str]) -> str:
    items = "".join(
        f"<item><title>{slug} news</title><link>{server.url('/' + slug)}</link>"
        f"<guid>{slug}</guid><pubDate>{format_datetime(NOW - timedelta(hours=4))}</pubDate>"
        "</item>"
        for slug in slugs
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Mixed</title>'
        f"<link>{server.base}/</link><language>{language}</language>{items}</channel></rss>"
    )


def _config(tmp_path: Path, feed: str, languages: str = "") -> Path:
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f"""
[site]
name = "Der Tagesüberblick"
url = "https://news.example.com"
timezone = "Europe/Berlin"
language = "de"

[[sources]]
name = "Gemischt"
url = "{feed}"

[store]
url = "sqlite:///{tmp_path / "digest.db"}"

[compose]
max_per_source = 10
{languages}
""",
        encoding="utf-8",
    )
    return cfg


@pytest.fixture
def mixed(http_server: LocalHTTPServer) -> LocalHTTPServer:
    s = http_server
    # The feed says German for everything; the pages say otherwise or nothing.
    s.routes["/feed"] = Response(_feed(s, "de-DE", ["de", "fr", "en", "ja"]))
    s.routes["/de"] = Response(_page("Radwege in Leipzig", text("de"), None))
    s.routes["/fr"] = Response(_page("Des arbres à Lyon", text("fr"), "fr-FR"))
    s.routes["/en"] = Response(_page("Cycle lanes", text("en"), None))
    s.routes["/ja"] = Response(_page("給食費", text("ja"), "ja"))
    return s


def test_language_per_article_and_a_german_issue(mixed: LocalHTTPServer, tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, mixed.url("/feed")))
    store = Store.open(config.store.url)
    pipeline.collect_articles(config, store, now=NOW)
    languages = {
        a.url.rsplit("/", 1)[1]: a.language
        for a in store.unissued_articles(NOW - timedelta(days=1))
    }
    # feed (German text), page (fr, ja), the text overruling the feed's "de" (English).
    assert languages == {"de": "de", "fr": "fr", "en": "en", "ja": "ja"}
    issue = pipeline.build_issue(config, store, now=NOW)
    assert issue is not None
    # [compose].languages defaults to the site's: only the German article is shown.
    assert [s.article.language for s in issue.stories] == ["de"]
    # The others are listed with the day's other stories ("More stories today").
    assert sorted(s.article.language or "" for s in issue.more) == ["en", "fr", "ja"]
    assert issue.lead.sentences[0].startswith("Die Stadt Leipzig")
    rendered = pipeline.render_email(config, issue, now=NOW).html
    html = fill_times(rendered, config.site.tz, now=NOW, html=True, language="de")  # at send
    assert '<html lang="de"' in html
    assert "Sonntag, 29. November 2026" in html
    assert "vor 4 Stunden" in html
    assert "Weiterlesen" in html and "Abmelden" in html
    for english in ("Read more", "Recent posts", "Unsubscribe", "View in browser", "ago",
                    "You are receiving", "Sunday", "November 29"):  # fmt: skip
        assert english not in html


def test_every_language_shown_with_a_tag(mixed: LocalHTTPServer, tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, mixed.url("/feed"), 'languages = ["*"]'))
    assert config.compose.languages == ("*",)
    store = Store.open(config.store.url)
    pipeline.collect_articles(config, store, now=NOW)
    issue = pipeline.build_issue(config, store, now=NOW)
    assert issue is not None
    assert sorted(s.article.language or "" for s in issue.stories) == ["de", "en", "fr", "ja"]
    rendered = pipeline.render_email(config, issue, now=NOW)
    assert rendered.html.count('<html lang="de"') == 1
    assert re.search(r'<td[^>]* lang="fr"', rendered.html)
    assert re.search(r'<td[^>]* lang="ja"', rendered.html)
    assert re.search(r'title="Französisch"[^>]*>FR</span>', rendered.html)
    assert "[EN]" in rendered.text
    japanese = next(s for s in issue.stories if s.article.language == "ja")
    assert japanese.sentences and japanese.sentences[0].endswith("。")


def test_cli_reports_the_language(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text(_page("Des arbres à Lyon", text("fr"), None), encoding="utf-8")
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    run = [sys.executable, "-m", "digest"]  # no config: the built-in defaults
    out = subprocess.run(
        [*run, "extract", "--json", str(page)], capture_output=True, env=env, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert '"language": "fr"' in out.stdout.decode()
    out = subprocess.run(
        [*run, "summarize", "-n", "1", str(page)], capture_output=True, env=env, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert "language: fr (detected)" in out.stderr.decode()
    assert out.stdout.decode().startswith("La ville de Lyon")
    out = subprocess.run(
        [*run, "summarize", "-n", "1", "--language", "italian", "--json", str(page)],
        capture_output=True,
        env=env,
        cwd=tmp_path,
    )
    assert '"language": "it"' in out.stdout.decode() and '"--language"' in out.stdout.decode()


def test_models_load_on_first_use() -> None:
    code = (
        "import importlib, digest.cli, digest.text.language as L;"
        "T = importlib.import_module('digest.summarize.tokenize');"
        "import sys;"
        "from punkt.data import LANGUAGES;"
        "punkt = lambda: [m for m in sys.modules if m[11:] in LANGUAGES];"
        "assert L._identifier is None and not T.get_tokenizer.built, 'loaded at startup';"
        "assert not punkt(), 'punkt loaded at startup';"
        "from digest.summarize import summarize;"
        "summarize('Ein Satz hier steht. Noch einer steht hier.', sentences=1, language='de');"
        "print(sorted(T.get_tokenizer.built), punkt(), L._identifier is None)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, env={"PYTHONPATH": str(ROOT)}
    )
    assert out.stdout.decode().split() == ["['german']", "['punkt.data.german']", "True"], (
        out.stderr
    )


def test_the_compacted_model_classifies_exactly_as_the_loaded_one() -> None:
    """Its two per-state tables become arrays (shared pages stay shared in the workers)."""
    from array import array

    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    from digest.text import language

    plain = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    compact = language._model()
    assert isinstance(compact._rowbase, array) and isinstance(compact.tk_output, array)
    assert isinstance(plain._rowbase, list)
    texts = [
        "The council voted on Tuesday to expand the tram network by 2030.",
        "Der Stadtrat hat am Dienstag beschlossen, das Straßenbahnnetz auszubauen.",
        "Le conseil municipal a voté mardi l'extension du réseau de tramway.",
        "Городской совет во вторник проголосовал за расширение трамвайной сети.",
        "市議会は火曜日、路面電車網の拡張を決めた。",
        "ok",
    ]
    for text in texts:
        assert compact.classify(text) == plain.classify(text)
