"""The README and the shipped config.toml stay true to the code."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import click
import pytest

from digest import config as config_module
from digest.cli import cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def command_paths(group: click.Group, prefix: str = "digest") -> list[str]:
    # Through list_commands/get_command, as `--help` does: the top group loads its
    # command modules only when asked (group.commands holds only those loaded so far).
    ctx = click.Context(group)
    paths = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            paths.extend(command_paths(command, path))
        else:
            paths.append(path)
    return paths


def test_every_command_is_in_the_readme_commands_table() -> None:
    table = README.split("## Commands", 1)[1].split("\n## ", 1)[0]
    paths = command_paths(cli)
    assert len(paths) >= 12
    missing = [p for p in paths if f"`{p}" not in table and f"/ `{p.split()[-1]}" not in table]
    assert not missing, f"not in the README's commands table: {missing}"


def test_readme_quick_start_commands_match_ci() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    assert f"```sh\n{ci}\n```" in README
    assert "&& .venv/bin/digest preview\n" in README


def test_every_config_key_is_in_the_shipped_file() -> None:
    shipped = (ROOT / "config.toml").read_text(encoding="utf-8")
    tables = {
        "site": config_module.SiteConfig,
        "sources": config_module.SourceConfig,
        "store": config_module.StoreConfig,
        "collect": config_module.CollectConfig,
        "summary": config_module.SummaryConfig,
        "compose": config_module.ComposeConfig,
        "render": config_module.RenderConfig,
        "smtp": config_module.SmtpConfig,
        "schedule": config_module.ScheduleConfig,
        "subscribe": config_module.SubscribeConfig,
    }
    missing = []
    for table, cls in tables.items():
        for f in dataclasses.fields(cls):
            key = f.name.rstrip("_")
            if not re.search(rf"^#? ?{key} = ", shipped, re.MULTILINE):
                missing.append(f"{table}.{key}")
    assert not missing, f"keys missing from config.toml: {missing}"


def test_the_readme_library_snippet_runs_on_the_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    snippet = README.split("## Library", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    sample = 'url = "digest/sample/feed.xml"'
    assert sample in text
    text = text.replace(sample, f'url = "{ROOT / "digest" / "sample" / "feed.xml"}"')
    (tmp_path / "config.toml").write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet, "README.md", "exec"), {})
    subject = capsys.readouterr().out.strip()
    # The default subject is the lead's headline, within what inboxes show.
    assert subject and "The Daily Digest" not in subject and len(subject) <= 70
    assert (tmp_path / "digest.db").exists()
