"""CLI commands for the feed list: `digest sources add/list/remove/import/export`.

They edit config.toml in place (comments and layout kept, see digest.config.edit) and
refuse any edit that the loader would reject, so the file always stays loadable.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import click
from rich.markup import escape
from rich.table import Table

from digest.cli.app import App, console, err_console
from digest.errors import ConfigError


def _now() -> datetime:
    return datetime.now(tz=UTC)


def _path_for_config(app: App, raw: str) -> str:
    """Write a local feed path as the config resolves it: relative to the config's folder."""
    path = Path(raw.removeprefix("file://")).expanduser().resolve()
    folder = app.config_path.resolve().parent
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return str(path)


def _unique(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    n = 2
    while f"{name} ({n})" in taken:
        n += 1
    return f"{name} ({n})"


@click.group(name="sources")
def sources_group() -> None:
    """Manage the feeds in config.toml (comments and layout are kept)."""


@sources_group.command(name="add")
@click.argument("url")
@click.option("--name", default="", help="Name shown beside its stories (default: the feed's).")
@click.option("--section", default="", help="Section to group its stories under.")
@click.option("--no-check", is_flag=True, help="Add it without fetching it first.")
@click.pass_obj
def sources_add(app: App, url: str, name: str, section: str, no_check: bool) -> None:
    """Add a feed by its URL, a site's page that links to its feed, or a local file.

    Given a page rather than a feed, the feed it names in
    `<link rel="alternate" type="application/rss+xml">` (or Atom, JSON Feed) is added.
    """
    from digest.collect.discover import Discovered, discover  # the network side: lazily
    from digest.config.edit import ConfigFile, RawSource

    cf = ConfigFile.open(app.config_path)
    is_web = url.startswith(("http://", "https://"))
    if no_check:
        found = Discovered(url=url, title="", entries=0)
    else:
        found = discover(url, app.config.collect)
    feed_url = found.url if is_web else _path_for_config(app, url)
    label = " ".join((name or found.title or urlsplit(feed_url).hostname or "").split())
    if not label:
        label = Path(feed_url).stem
    cf.add_source(RawSource(name=label, url=feed_url, section=section.strip()))
    cf.save()
    via = f" (found on {found.page})" if found.page else ""
    items = "" if no_check else f", {found.entries} item(s) now"
    console.print(escape(f"added {label!r}: {feed_url}{via}{items}"), soft_wrap=True)


@sources_group.command(name="remove")
@click.argument("name")
@click.pass_obj
def sources_remove(app: App, name: str) -> None:
    """Remove the source with this NAME (or URL) from config.toml."""
    from digest.config.edit import ConfigFile

    cf = ConfigFile.open(app.config_path)
    gone = cf.remove_source(name)
    cf.save()
    console.print(escape(f"removed {gone.name!r}: {gone.url}"), soft_wrap=True)


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


@sources_group.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_obj
def sources_list(app: App, as_json: bool) -> None:
    """List the sources with their last success, items stored and failures in a row."""
    config = app.config
    states = app.store.source_states()
    counts = app.store.article_counts()
    rows = []
    for src in config.sources:
        state = states.get(src.name)
        rows.append(
            {
                "name": src.name,
                "url": src.url,
                "section": src.section,
                "last_success": _iso(state.last_success) if state else None,
                "last_run": _iso(state.last_run) if state else None,
                "items": counts.get(src.name, 0),
                "failures": state.consecutive_failures if state else 0,
                "last_error": (state.last_error if state and state.consecutive_failures else None),
            }
        )
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    zone = config.site.tz
    table = Table(title=f"Sources ({len(rows)})", title_justify="left")
    for column in ("name", "url", "last success", "items", "failures"):
        table.add_column(column, justify="right" if column in ("items", "failures") else "left")
    for row, src in zip(rows, config.sources, strict=True):
        state = states.get(src.name)
        success = (
            state.last_success.astimezone(zone).strftime("%Y-%m-%d %H:%M")
            if state and state.last_success
            else "never"
        )
        failures = str(row["failures"])
        if row["last_error"]:
            failures += f" ({row['last_error']})"
        label = src.name + (f" [{src.section}]" if src.section else "")
        table.add_row(escape(label), escape(src.url), success, str(row["items"]), escape(failures))
    console.print(table)


@sources_group.command(name="import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path, allow_dash=True))
@click.option("--section", default="", help="Section for feeds the file puts in no folder.")
@click.pass_obj
def sources_import(app: App, file: Path, section: str) -> None:
    """Add the feeds of an OPML file (as feed readers export them) to config.toml.

    Feeds already in the config (same URL) are left alone; a folder in the file
    becomes the section of the feeds in it. Nothing is fetched.
    """
    from digest.config.edit import ConfigFile, RawSource
    from digest.config.opml import MAX_OPML_BYTES, parse_opml

    try:
        if str(file) == "-":
            data = sys.stdin.buffer.read(MAX_OPML_BYTES + 1)
        else:
            with file.open("rb") as fh:
                data = fh.read(MAX_OPML_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {file}: {exc.strerror or exc}") from None
    feeds = parse_opml(data, where=str(file))
    cf = ConfigFile.open(app.config_path)
    have = {s.url for s in cf.sources()}
    taken = {s.name for s in cf.sources()}
    added = existing = 0
    for feed in feeds:
        parts = urlsplit(feed.url)
        if feed.url in have:
            existing += 1
            continue
        if parts.scheme not in ("http", "https") or not parts.netloc:
            err_console.print(
                escape(f"{file}: skipped {feed.url!r}: not an http(s) feed URL"), soft_wrap=True
            )
            continue
        label = _unique(feed.name or parts.hostname or feed.url, taken)
        taken.add(label)
        have.add(feed.url)
        cf.add_source(RawSource(name=label, url=feed.url, section=feed.section or section))
        added += 1
    if added:
        cf.save()
    console.print(f"imported {added}, already in the config {existing}, listed {len(feeds)}")


@sources_group.command(name="export")
@click.pass_obj
def sources_export(app: App) -> None:
    """Write the sources as OPML 2.0 to stdout (`sources import` and feed readers read it)."""
    from digest.config.edit import ConfigFile
    from digest.config.opml import OpmlFeed, write_opml

    cf = ConfigFile.open(app.config_path)
    feeds = [OpmlFeed(name=s.name, url=s.url, section=s.section) for s in cf.sources()]
    title = str(app.config.site.name)
    click.echo(write_opml(title, feeds, now=_now()), nl=False)
