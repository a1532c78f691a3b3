"""CLI commands for the database itself: `digest db upgrade`."""

from __future__ import annotations

import click
from rich.markup import escape

from digest.cli.app import App, console


@click.group(name="db")
def db_group() -> None:
    """Manage the store's schema."""


@db_group.command(name="upgrade")
@click.pass_obj
def db_upgrade(app: App) -> None:
    """Apply pending schema migrations (back the database up first)."""
    from digest.store import Store
    from digest.store.schema import SCHEMA_VERSION

    store = Store.open(app.config.store.url, migrate=False)
    try:
        before = store.version()
        applied = store.migrate()
        notes = store.db.migration_notes
        where = store.db.where
    finally:
        store.close()
    if applied:
        steps = ", ".join(str(v) for v in applied)
        line = f"{where}: schema {before} -> {SCHEMA_VERSION} (applied {steps})"
    else:
        line = f"{where}: schema {SCHEMA_VERSION}, already up to date"
    console.print(escape(line), soft_wrap=True)
    for note in notes:
        console.print(escape(f"  {note}"), soft_wrap=True)
