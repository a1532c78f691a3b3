"""Edit `config.toml` in place: its comments, order and layout stay as the operator wrote them.

`digest sources add/remove/import` and `digest init` go through `ConfigFile`: it reads
the file with tomlkit (which round-trips), changes only the `[[sources]]` tables it is
asked to, validates the result exactly as `load_config` would, and only then replaces
the file (atomically: a crash leaves the old one or the new one, never half of each).
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import AoT, Array, Table
from tomlkit.toml_document import TOMLDocument

from digest.config import Config
from digest.config.load import parse_config
from digest.errors import ConfigError

# Keys a [[sources]] table written by digest may carry, in the order they are written.
SOURCE_KEYS = ("name", "url", "section")


@dataclass(frozen=True)
class RawSource:
    """A [[sources]] entry as written in the file (paths unresolved)."""

    name: str
    url: str
    section: str = ""


class ConfigFile:
    """A config.toml opened for editing."""

    def __init__(self, path: Path, doc: TOMLDocument) -> None:
        self.path = path
        self.doc = doc

    @classmethod
    def open(cls, path: Path) -> ConfigFile:
        """Read `path` for editing; it must exist and be valid TOML."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(
                f"{path}: no such config file; run `digest init` to write one"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read config ({exc})") from None
        try:
            return cls(path, tomlkit.parse(text))
        except Exception as exc:  # tomlkit's parse errors share no public base class
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None

    def _sources(self) -> AoT | Array | None:
        raw = self.doc.get("sources")
        if raw is None:
            return None
        if not isinstance(raw, AoT | Array):
            raise ConfigError(f"{self.path}: sources: write each source as a [[sources]] table")
        return raw

    def sources(self) -> list[RawSource]:
        """Return the sources as written, in file order."""
        out: list[RawSource] = []
        for item in self._sources() or []:
            if isinstance(item, dict):
                out.append(
                    RawSource(
                        name=str(item.get("name", "")),
                        url=str(item.get("url", "")),
                        section=str(item.get("section", "")),
                    )
                )
        return out

    def add_source(self, source: RawSource) -> None:
        """Append a [[sources]] table after the last one (or at the end of the file)."""
        if any(s.name == source.name for s in self.sources()):
            raise ConfigError(
                f"{self.path}: a source named {source.name!r} exists already; "
                "pick another with --name"
            )
        values: dict[str, Any] = {"name": source.name, "url": source.url}
        if source.section:
            values["section"] = source.section
        existing = self._sources()
        if isinstance(existing, Array):
            inline = tomlkit.inline_table()
            inline.update(values)
            existing.append(inline)
            return
        table = tomlkit.table()
        for key, value in values.items():
            table.add(key, value)
        table.add(tomlkit.nl())
        if existing is None:
            aot = tomlkit.aot()
            aot.append(table)
            self.doc.append("sources", aot)
        else:
            existing.append(table)

    def remove_source(self, name_or_url: str) -> RawSource:
        """Remove the source with this name (or, failing that, this URL); return it."""
        items = self._sources()
        found = [s for s in self.sources() if s.name == name_or_url]
        if not found:
            found = [s for s in self.sources() if s.url == name_or_url]
        if not found or items is None:
            names = ", ".join(repr(s.name) for s in self.sources()) or "none"
            raise ConfigError(f"{self.path}: no source named {name_or_url!r}; sources: {names}")
        victim = found[0]
        for i, item in enumerate(items):
            if isinstance(item, dict) and str(item.get("name", "")) == victim.name:
                del items[i]
                break
        return victim

    def set_site(self, *, name: str, url: str, timezone: str) -> None:
        """Set [site] name, url and timezone, keeping each line's comment."""
        site = self.doc.get("site")
        if not isinstance(site, Table):
            site = tomlkit.table()
            self.doc.add("site", site)
        site["name"] = name
        site["url"] = url
        site["timezone"] = timezone

    def text(self) -> str:
        """Return the edited file as text."""
        return tomlkit.dumps(self.doc)

    def validate(self) -> Config:
        """Check the edited file as `load_config` would (paths relative to its folder)."""
        text = self.text()
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:  # a bug in the edit, not the user's
            raise ConfigError(f"{self.path}: the edit made invalid TOML: {exc}") from None
        return parse_config(data, self.path.resolve())

    def save(self) -> Config:
        """Validate, then atomically replace the file; return the new config."""
        config = self.validate()
        write_atomically(self.path, self.text())
        return config


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` so a crash leaves either the old or the new file."""
    folder = path.resolve().parent
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write the config ({exc.strerror or exc})") from None
