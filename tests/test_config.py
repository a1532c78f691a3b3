from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from digest.config.load import load_config
from digest.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent

GOOD = """
[site]
name = "The Daily Digest"
url = "https://news.example.com"
timezone = "Europe/Berlin"

[[sources]]
name = "Example News"
url = "https://news.example.com/feed/"

[store]
url = "sqlite:///digest.db"
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_shipped_config_loads() -> None:
    cfg = load_config(ROOT / "config.toml")
    assert cfg.site.timezone == "Europe/Berlin"
    assert cfg.sources[0].is_local
    assert Path(cfg.sources[0].url).is_file()
    assert cfg.smtp is None or cfg.smtp.port > 0


def test_good_config_resolves_relative_store(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.store.url == f"sqlite:///{tmp_path.resolve()}/digest.db"
    assert cfg.summary.method == "position"
    assert cfg.summary.max_words_oneliner == 30
    assert cfg.collect.timeout == 15.0
    assert cfg.smtp is None


@pytest.mark.parametrize(
    ("change", "key", "hint"),
    [
        (
            ('timezone = "Europe/Berlin"', 'timezone = "Europe/Berln"'),
            "site.timezone",
            "Europe/Berlin",
        ),
        (('name = "The Daily Digest"', 'name = "X"\ncolour = "red"'), "site.colour", "unknown key"),
        (('name = "The Daily Digest"', "name = 5"), "site.name", "string"),
        (
            ('url = "https://news.example.com/feed/"', 'url = "htp://news.example.com/feed/"'),
            "sources[0].url",
            "https://",
        ),
        (
            ('url = "https://news.example.com/feed/"', 'url = "feeds/missing.xml"'),
            "sources[0].url",
            "no such file",
        ),
        (("[store]", "[stor]"), "stor", 'did you mean "store"'),
        (
            ("[store]", "[summary]\nmax_words_oneliner = 0\n[store]"),
            "summary.max_words_oneliner",
            "at least 1",
        ),
        (('url = "sqlite:///digest.db"', "url = 3"), "store.url", "string"),
    ],
)
def test_config_errors_name_key_and_fix(
    tmp_path: Path, change: tuple[str, str], key: str, hint: str
) -> None:
    text = GOOD.replace(*change, 1)
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    msg = str(info.value)
    assert str(tmp_path / "config.toml") in msg
    assert key in msg
    assert hint in msg
    assert "\n" not in msg


def test_render_and_site_defaults_agree_with_the_lint(tmp_path: Path) -> None:
    from digest.render import DEFAULT_MAX_SUBJECT, DEFAULT_SUBJECT
    from digest.render.lint import SUBJECT_SHOWN

    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.render.subject == DEFAULT_SUBJECT == "{headlines}"
    assert cfg.render.max_subject == DEFAULT_MAX_SUBJECT == SUBJECT_SHOWN == 70
    assert cfg.site.postal_address == ""  # existing configs keep working without one
    text = GOOD.replace(
        'timezone = "Europe/Berlin"', 'timezone = "UTC"\npostal_address = "1 Main St"'
    )
    assert load_config(write(tmp_path, text)).site.postal_address == "1 Main St"
    for bad, key in (
        ("[render]\nmax_subject = 5\n", "render.max_subject"),
        ('[render]\nsubject = "{site} {nope}"\n', "render.subject"),
    ):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_config(write(tmp_path, GOOD + bad))


def test_smtp_table_validated(tmp_path: Path) -> None:
    text = GOOD + '\n[smtp]\nhost = "localhost"\nport = 587\nsecurity = "tls"\n'
    with pytest.raises(ConfigError, match=r"smtp\.security"):
        load_config(write(tmp_path, text))


def test_require_smtp_message(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    with pytest.raises(ConfigError, match=r"\[smtp\] is missing"):
        cfg.require_smtp()


def test_invalid_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(write(tmp_path, "[site\nname="))


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "digest", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def test_cli_config_error_is_one_line_exit_2(tmp_path: Path) -> None:
    cfg = write(tmp_path, GOOD.replace("Europe/Berlin", "Mars/Olympus"))
    res = run_cli("--config", str(cfg), "preview", cwd=tmp_path)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    assert "site.timezone" in lines[0]


def test_cli_reads_digest_config_env(tmp_path: Path) -> None:
    cfg = write(
        tmp_path, GOOD.replace('url = "https://news.example.com/feed/"', 'url = "nope.xml"')
    )
    res = run_cli("collect", cwd=ROOT, env={"DIGEST_CONFIG": str(cfg)})
    assert res.returncode == 2
    assert "sources[0].url" in res.stderr


def test_compose_sections_and_cap_validated(tmp_path: Path) -> None:
    text = GOOD.replace(
        'url = "https://news.example.com/feed/"',
        'url = "https://news.example.com/feed/"\nsection = " Technology "',
    )
    config = load_config(
        write(tmp_path, text + '\n[compose]\nsections = ["World", "Technology"]\n')
    )
    assert config.sources[0].section == "Technology"
    assert config.compose.sections == ("World", "Technology") and config.compose.max_per_source == 3
    for extra, key, hint in [
        ('sections = ["World"]', "sources[0].section", "add it there"),
        ('sections = ["Technology", "Technology"]', "compose.sections", "once"),
        ("max_per_source = 0", "compose.max_per_source", "at least 1"),
    ]:
        with pytest.raises(ConfigError, match=rf"{re.escape(key)}: .*{hint}"):
            load_config(write(tmp_path, text + f"\n[compose]\n{extra}\n"))
