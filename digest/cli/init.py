"""`digest init`: write a commented config.toml and the sample feed, ready for `digest preview`."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
from rich.markup import escape

from digest.cli.app import App, console
from digest.errors import ConfigError

PACKAGE = Path(__file__).resolve().parent.parent
SAMPLE = PACKAGE / "sample"
SAMPLE_FOLDER = "sample"  # where init copies the sample feed, beside config.toml


def shipped_config() -> Path:
    """Return the commented config.toml to start from: in an installed wheel, or the repo's.

    The repository keeps it at the top level (`config.toml`); building a wheel copies it
    to `digest/config/sample.toml` (see setup.py), as it does the templates.
    """
    installed = PACKAGE / "config" / "sample.toml"
    return installed if installed.is_file() else PACKAGE.parent / "config.toml"


def check_site_url(value: str) -> str:
    """Return the site URL without a trailing slash, or raise BadParameter."""
    url = value.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.BadParameter(f"{value!r} is not an http(s) URL; e.g. https://news.example.com")
    return url


def check_timezone(value: str) -> str:
    """Return an IANA time zone name, or raise BadParameter."""
    name = value.strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(
            f"{value!r} is not an IANA time zone; e.g. Europe/Berlin, America/New_York or UTC"
        ) from None
    return name


def check_name(value: str) -> str:
    """Return a one-line site name, or raise BadParameter."""
    name = " ".join(value.split())
    if not name:
        raise click.BadParameter("the site needs a name, e.g. The Daily Digest")
    return name


def local_timezone() -> str:
    """Return this machine's IANA zone when it can be told, else UTC."""
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz:
        try:
            ZoneInfo(tz)
            return tz
        except (ZoneInfoNotFoundError, ValueError):
            pass
    try:
        target = os.readlink("/etc/localtime")
    except OSError:
        return "UTC"
    marker = "zoneinfo/"
    name = target.split(marker, 1)[1] if marker in target else ""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return name or "UTC"


def interactive() -> bool:
    """Return True when someone can answer questions (stdin is a terminal)."""
    return sys.stdin.isatty()


def _ask(value: str | None, prompt: str, default: str, check: Callable[[str], str]) -> str:
    if value is not None:
        try:
            return check(value)
        except click.BadParameter as exc:
            raise ConfigError(f"{prompt}: {exc.message}") from None
    if interactive():
        return str(click.prompt(prompt, default=default, value_proc=check))
    return check(default)


@click.command(name="init")
@click.option("--site-name", default=None, help="The newsletter's name.")
@click.option("--site-url", default=None, help="Its public base URL (unsubscribe, archive).")
@click.option("--timezone", default=None, help='IANA time zone, e.g. "Europe/Berlin".')
@click.option("--force", is_flag=True, help="Overwrite an existing config file.")
@click.pass_obj
def init_cmd(
    app: App, site_name: str | None, site_url: str | None, timezone: str | None, force: bool
) -> None:
    """Write a commented config.toml (and the sample feed) so `digest preview` works at once.

    On a terminal it asks for what is not given as an option; otherwise it uses
    the defaults. The sample feed goes to ./sample/ beside the config: replace it with
    your feeds (`digest sources add URL`) and remove it (`digest sources remove
    "Example News"`).
    """
    from digest.config.edit import ConfigFile, write_atomically

    path = app.config_path
    if path.exists() and not force:
        raise ConfigError(f"{path} exists already; edit it, or pass --force to replace it")
    name = _ask(site_name, "Site name", "The Daily Digest", check_name)
    url = _ask(
        site_url,
        "Site URL",
        "https://news.example.com",
        check_site_url,
    )
    zone = _ask(timezone, "Time zone", local_timezone(), check_timezone)
    folder = path.resolve().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        sample = folder / SAMPLE_FOLDER
        sample.mkdir(exist_ok=True)
        for item in SAMPLE.iterdir():
            if item.is_file() and not (sample / item.name).exists():
                shutil.copyfile(item, sample / item.name)
    except OSError as exc:
        raise ConfigError(f"cannot write into {folder}: {exc.strerror or exc}") from None
    cf = ConfigFile.open(shipped_config())
    cf.path = path
    cf.set_site(name=name, url=url, timezone=zone)
    first = cf.doc["sources"][0]
    first["url"] = f"{SAMPLE_FOLDER}/feed.xml"
    first["public_url"] = f"{url}/{SAMPLE_FOLDER}/"
    cf.validate()
    write_atomically(path, cf.text())
    console.print(
        escape(
            f"Wrote {path} for {name!r} ({url}, {zone}) and the sample feed in "
            f"{sample}. Next: `digest preview`, then `digest sources add URL` for your feeds."
        ),
        soft_wrap=True,
    )
