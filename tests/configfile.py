"""Write a small config.toml for tests that drive the CLI or a subprocess."""

from __future__ import annotations

from pathlib import Path

EMPTY_FEED = "<rss version='2.0'><channel><title>t</title></channel></rss>"


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _keys(keys: dict[str, object]) -> str:
    return "".join(f"{k} = {_toml(v)}\n" for k, v in keys.items())


def write_config(
    tmp_path: Path,
    *,
    store_url: str | None = None,
    source: str | None = None,
    source_name: str = "local",
    source_keys: dict[str, object] | None = None,
    smtp_port: int | None = None,
    smtp: dict[str, object] | None = None,
    extra: str = "",
) -> Path:
    """Write `tmp_path/config.toml` and return its path.

    The source defaults to an empty local feed, the store to `tmp_path/digest.db`;
    `source_keys` are more keys of the source; `smtp_port` adds an [smtp] table for a
    plain local server, `smtp` more keys of it; `extra` is appended as it is.
    """
    if source is None:
        feed = tmp_path / "feed.xml"
        feed.write_text(EMPTY_FEED, encoding="utf-8")
        source = str(feed)
    url = store_url or f"sqlite:///{tmp_path / 'digest.db'}"
    text = f"""
[site]
name = "The Daily Digest"
url = "https://news.example.com"
timezone = "UTC"

[[sources]]
name = {_toml(source_name)}
url = {_toml(source)}
{_keys(source_keys or {})}
[store]
url = {_toml(url)}
"""
    if smtp_port is not None:
        keys = {
            "host": "127.0.0.1",
            "port": smtp_port,
            "security": "none",
            "from": "The Daily Digest <digest@news.example.com>",
            **(smtp or {}),
        }
        text += "\n[smtp]\n" + _keys(keys)
    path = tmp_path / "config.toml"
    path.write_text(text + extra, encoding="utf-8")
    return path
