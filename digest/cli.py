"""The `digest` command: a thin layer over the library API.

Each command loads the config, calls one library function and prints the result.
A `DigestError` becomes one line on stderr and its exit code; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape

from .config import Config
from .configload import default_config_path, load_config
from .errors import DigestError
from .store import Store

F = TypeVar("F", bound=Callable[..., Any])

STANDALONE = ("extract", "summarize")

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


@click.group(cls=DigestGroup)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Config file (default: $DIGEST_CONFIG or ./config.toml).",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="digest")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, verbose: int) -> None:
    """Collect, summarize and email a daily news digest."""
    logging.basicConfig(
        level=logging.WARNING - 10 * min(verbose, 2) if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    app = App(
        config_path or default_config_path(),
        verbose,
        explicit=config_path is not None or bool(os.environ.get("DIGEST_CONFIG")),
    )
    ctx.obj = app
    ctx.call_on_close(app.close)
    # Every command validates the whole file up front, so mistakes surface at once;
    # the single-page tools (extract, summarize) also run where no config exists.
    if app.config_available() or ctx.invoked_subcommand not in STANDALONE:
        _ = app.config


def main() -> None:
    """Run the CLI (the `digest` console script)."""
    cli(prog_name="digest")


# Commands live beside their subject; importing registers them on `cli`.
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


from . import cli_db as _cli_db  # noqa: E402,F401
from . import cli_mail as _cli_mail  # noqa: E402,F401
from . import cli_pipeline as _cli_pipeline  # noqa: E402,F401
from . import cli_run as _cli_run  # noqa: E402,F401
from . import cli_web as _cli_web  # noqa: E402,F401
from . import cli_worker as _cli_worker  # noqa: E402,F401
