"""The operator's sharp edges: options that silently misbehaved, messages that misled."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.store import Store
from tests import configfile
from tests.helpers import stored_issue
from tests.smtpserver import LocalSMTPServer

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "digest" / "sample" / "feed.xml"


def test_send_to_repeated_sends_to_every_address(tmp_path: Path, store: Store) -> None:
    stored_issue(store)
    with LocalSMTPServer() as server:
        path = configfile.write_config(tmp_path, smtp_port=server.port)
        result = CliRunner().invoke(
            cli,
            ["--config", str(path), "send", "--date", "2026-11-25"]
            + ["--to", "a@example.org", "--to", "b@example.org", "--to", "a@example.org"],
        )
        assert result.exit_code == 0, result.output
        assert sorted(server.handler.recipients()) == ["a@example.org", "b@example.org"]
    assert result.stdout.count("test copy of 2026-11-25 sent to") == 2
    assert store.ledger.list_deliveries(store.list_issues()[0].id) == []  # the ledger is untouched


def test_send_to_checks_every_address_before_sending_any(tmp_path: Path, store: Store) -> None:
    stored_issue(store)
    with LocalSMTPServer() as server:
        path = configfile.write_config(tmp_path, smtp_port=server.port)
        result = CliRunner().invoke(
            cli,
            ["--config", str(path), "send", "--date", "2026-11-25"]
            + ["--to", "a@example.org", "--to", "not an address"],
        )
        assert server.handler.recipients() == []
    assert result.exit_code != 0 and "not a valid address" in result.stderr


@pytest.mark.parametrize("bad", ["yesterday", "2026-13-01", "28.11.2026", "20261128", "2026-2-1"])
@pytest.mark.parametrize("command", ["send", "worker"])
def test_send_date_is_checked_when_parsed(tmp_path: Path, bad: str, command: str) -> None:
    path = configfile.write_config(tmp_path, smtp_port=25)
    result = CliRunner().invoke(cli, ["--config", str(path), command, "--date", bad])
    assert result.exit_code == 2, result.output
    assert "not a date; write YYYY-MM-DD" in result.stderr
    assert "no issue stored" not in result.output


def test_missing_config_points_to_digest_init(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "digest", "status"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**{k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}},
        timeout=60,
    )
    assert res.returncode == 2, res.stderr
    (line,) = res.stderr.strip().splitlines()
    assert "run `digest init`" in line and "shipped config.toml" not in line


def test_preview_out_into_a_missing_folder_creates_it(tmp_path: Path) -> None:
    path = configfile.write_config(
        tmp_path,
        source=str(SAMPLE),
        source_keys={"public_url": "https://news.example.com/sample/"},
    )
    out = tmp_path / "out" / "deeper" / "x.html"
    result = CliRunner().invoke(cli, ["--config", str(path), "preview", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "The Daily Digest" in out.read_text(encoding="utf-8")
    assert out.with_suffix(".txt").is_file()


def test_preview_out_where_a_file_blocks_the_folder_is_one_line(tmp_path: Path) -> None:
    path = configfile.write_config(
        tmp_path,
        source=str(SAMPLE),
        source_keys={"public_url": "https://news.example.com/sample/"},
    )
    (tmp_path / "out").write_text("a file, not a folder", encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["--config", str(path), "preview", "--out", str(tmp_path / "out" / "x.html")]
    )
    assert result.exit_code == 1, result.output
    assert "cannot write the preview" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_readme_completion_setup_works(shell: str) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"_DIGEST_COMPLETE={shell}_source digest" in readme
    env = {**os.environ, "PYTHONPATH": str(ROOT), "_DIGEST_COMPLETE": f"{shell}_source"}
    res = subprocess.run(
        [sys.executable, "-m", "digest"], capture_output=True, text=True, env=env, timeout=120
    )
    assert res.returncode == 0 and "_DIGEST_COMPLETE" in res.stdout, res.stderr
    env = {
        **env,
        "_DIGEST_COMPLETE": "bash_complete",
        "COMP_WORDS": "digest sou",
        "COMP_CWORD": "1",
    }
    res = subprocess.run(
        [sys.executable, "-m", "digest"], capture_output=True, text=True, env=env, timeout=120
    )
    assert "sources" in res.stdout
