"""What every command shares: the App context, the consoles and signal handling."""

from __future__ import annotations

import importlib
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date as date_cls
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.markup import escape

from digest.config import Config
from digest.config.load import load_config
from digest.errors import DigestError
from digest.models import REPORTED

if TYPE_CHECKING:
    from digest.store import Store

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

# Libraries that log their own judgement of pages we handle ourselves (trafilatura's
# "discarding data" for every short page): quiet unless -vv.
CHATTY_LIBRARIES = ("trafilatura", "htmldate", "courlan", "justext")


class _InReport(logging.Filter):
    """Drop log lines that the running command prints in its own report (the sources table)."""

    def __init__(self) -> None:
        super().__init__()
        self.active = False

    def filter(self, record: logging.LogRecord) -> bool:
        return not (self.active and getattr(record, REPORTED, False))


IN_REPORT = _InReport()


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Log to whatever sys.stderr is now (click's test runner swaps it)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def setup_logging(verbose: int) -> None:
    """Log to stderr at WARNING (-v INFO, -vv DEBUG), as logging.basicConfig would."""
    root = logging.getLogger()
    if not root.handlers:  # like basicConfig: an embedding program's handlers win
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(IN_REPORT)
        root.addHandler(handler)
        root.setLevel(logging.WARNING - 10 * min(verbose, 2) if verbose else logging.WARNING)
    for name in CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose >= 2 else logging.ERROR)


@contextmanager
def report_printed() -> Iterator[None]:
    """Within the block, failures the command's own table shows are not logged to stderr too."""
    IN_REPORT.active = True
    try:
        yield
    finally:
        IN_REPORT.active = False


class App:
    """What every command gets: the config path, loaded lazily, and the store."""

    def __init__(self, config_path: Path, verbose: int, *, explicit: bool = False) -> None:
        self.config_path = config_path
        self.explicit = explicit
        self.verbose = verbose
        self._store: Store | None = None

    @cached_property
    def config(self) -> Config:
        """Return the validated config (loaded on first use)."""
        return load_config(self.config_path)

    def reload_config(self) -> Config:
        """Read the config file again (preview --serve); on a mistake keep the old one."""
        old = self.__dict__.pop("config", None)
        try:
            return self.config
        except DigestError:
            if old is not None:
                self.__dict__["config"] = old
            raise

    def config_available(self) -> bool:
        """Return True when a config file exists (tools like `extract` work without one)."""
        return self.explicit or self.config_path.exists()

    @property
    def store(self) -> Store:
        """Return the opened, migrated store."""
        if self._store is None:
            from digest.store import Store

            self._store = Store.open(self.config.store.url)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


class DigestGroup(click.Group):
    """A click group that turns DigestError into one line and its exit code, and
    imports a command's module only when that command is looked up."""

    def __init__(
        self, *args: Any, lazy_commands: dict[str, tuple[str, str]] | None = None, **kw: Any
    ) -> None:
        super().__init__(*args, **kw)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy_commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy_commands:
            module, attr = self.lazy_commands[cmd_name]
            command = getattr(importlib.import_module(f"digest.cli.{module}"), attr)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DigestError as exc:
            message = " ".join(str(exc).split())  # always one line
            err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
            sys.exit(exc.exit_code)


def iso_date(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """Accept only YYYY-MM-DD (a real date), at parse time: not "yesterday" or "11/28"."""
    if value is None:
        return None
    try:
        day = date_cls.fromisoformat(value)
    except ValueError:
        day = None
    if day is None or len(value) != 10:
        raise click.BadParameter(f"{value!r} is not a date; write YYYY-MM-DD, e.g. 2026-11-28")
    return day.isoformat()


@contextmanager
def on_signals(
    handler: Callable[[], None], signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)
) -> Iterator[None]:
    """Call `handler` on these signals inside the block, then restore the old handlers.

    Long commands (`send`, `run`, `worker`) use it to stop gracefully: the message in
    flight finishes and is recorded. Outside the main thread (tests) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, lambda _sig, _frame: handler()) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
