"""What every command shares: the App context, the consoles and signal handling."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.markup import escape

from digest.config import Config
from digest.config.load import load_config
from digest.errors import DigestError

if TYPE_CHECKING:
    from digest.store import Store

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


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
    """A click group that turns DigestError into one line and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DigestError as exc:
            message = " ".join(str(exc).split())  # always one line
            err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
            sys.exit(exc.exit_code)


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
