"""The `digest` command: a thin layer over the library API.

Each command loads the config, calls one library function and prints the result.
A `DigestError` becomes one line on stderr and its exit code; anything else is a
bug and keeps its traceback. Commands are added to the group explicitly below.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from digest.cli import db, init, mail, pipeline, run, sources, web, worker
from digest.cli.app import App, DigestGroup, setup_logging
from digest.config.load import default_config_path

STANDALONE = ("extract", "summarize")
NO_CONFIG = ("init",)  # writes the config: never reads one


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
    setup_logging(verbose)
    app = App(
        config_path or default_config_path(),
        verbose,
        explicit=config_path is not None or bool(os.environ.get("DIGEST_CONFIG")),
    )
    ctx.obj = app
    ctx.call_on_close(app.close)
    # Every command validates the whole file up front, so mistakes surface at once;
    # the single-page tools (extract, summarize) also run where no config exists.
    if ctx.invoked_subcommand in NO_CONFIG:
        return
    if app.config_available() or ctx.invoked_subcommand not in STANDALONE:
        _ = app.config


def main() -> None:
    """Run the CLI (the `digest` console script)."""
    cli(prog_name="digest")


for _command in (
    init.init_cmd,
    pipeline.preview,
    pipeline.collect_cmd,
    pipeline.extract,
    pipeline.summarize_cmd,
    sources.sources_group,
    mail.subscribers_group,
    mail.send,
    mail.issue_group,
    run.status_cmd,
    run.run_cmd,
    web.serve,
    worker.worker_cmd,
    db.db_group,
):
    cli.add_command(_command)
