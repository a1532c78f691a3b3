"""Schema versions on SQLite: created at once when empty, refused when older or newer."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from digest.cli import cli
from digest.errors import StoreError
from digest.store import Store
from digest.store.schema import MIGRATIONS, SCHEMA_VERSION, schema_version
from tests import configfile

NOW = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)


def write_config(tmp_path: Path) -> Path:
    return configfile.write_config(tmp_path, store_url="sqlite:///digest.db")


def undo_migration_4(conn: sa.Connection) -> None:
    """Take out what migration 4 added (address keys, merged tokens, bounces)."""
    conn.execute(schema_version.delete().where(schema_version.c.version == 4))
    conn.exec_driver_sql("DROP INDEX ix_subscribers_email_key")
    conn.exec_driver_sql("ALTER TABLE subscribers DROP COLUMN email_key")
    conn.exec_driver_sql("DROP TABLE merged_tokens")
    conn.exec_driver_sql("DROP TABLE bounces")


def undo_migration_8(conn: sa.Connection) -> None:
    """Take out what migration 8 added (deliveries.retry_since)."""
    conn.execute(schema_version.delete().where(schema_version.c.version == 8))
    conn.exec_driver_sql("ALTER TABLE deliveries DROP COLUMN retry_since")


def undo_migration_5(conn: sa.Connection) -> None:
    """Take out what migration 5 added (the issues' JSON document)."""
    conn.execute(schema_version.delete().where(schema_version.c.version == 5))
    conn.exec_driver_sql("ALTER TABLE issues DROP COLUMN doc")


def undo_migration_7(conn: sa.Connection) -> None:
    """Take out what migration 7 added (readers' preferences and opt-in, settings, variants)."""
    conn.execute(schema_version.delete().where(schema_version.c.version == 7))
    conn.exec_driver_sql("DROP INDEX ix_subscribers_confirm")
    for column in ("timezone", "send_at", "sections", "confirm_token", "confirm_sent_at"):
        conn.exec_driver_sql(f"ALTER TABLE subscribers DROP COLUMN {column}")
    conn.exec_driver_sql("ALTER TABLE subscribers DROP COLUMN confirm_expires")
    conn.exec_driver_sql("DROP TABLE settings")
    conn.exec_driver_sql("DROP TABLE issue_variants")


def undo_migration_9(conn: sa.Connection) -> None:
    """Take out what migration 9 added (the lead image's declared size)."""
    conn.execute(schema_version.delete().where(schema_version.c.version == 9))
    conn.exec_driver_sql("ALTER TABLE articles DROP COLUMN image_width")
    conn.exec_driver_sql("ALTER TABLE articles DROP COLUMN image_height")


def make_version_3(url: str) -> None:
    """Turn a new database into one made by the code before address keys (schema 3)."""
    Store.open(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        undo_migration_9(conn)
        undo_migration_7(conn)
        undo_migration_8(conn)
        undo_migration_5(conn)
        undo_migration_4(conn)
    engine.dispose()


def make_version_2(db: Path) -> None:
    """Turn a new database into one made by the code before leases (schema 2)."""
    make_version_3(f"sqlite:///{db}")
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(schema_version.delete().where(schema_version.c.version >= 3))
        conn.exec_driver_sql("DROP INDEX ix_deliveries_pending")
        conn.exec_driver_sql("ALTER TABLE deliveries DROP COLUMN claimed_by")
        conn.exec_driver_sql("ALTER TABLE deliveries DROP COLUMN claimed_until")
    engine.dispose()


def columns(db: Path) -> set[str]:
    """Return the names of the deliveries and articles tables' columns and indexes."""
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        names = {c["name"] for c in inspector.get_columns("deliveries")}
        names |= {str(i["name"]) for i in inspector.get_indexes("deliveries")}
        names |= {f"articles.{c['name']}" for c in inspector.get_columns("articles")}
    engine.dispose()
    return names


def test_an_empty_database_is_created_at_the_current_version(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'digest.db'}")
    assert store.version() == SCHEMA_VERSION == max(MIGRATIONS)
    assert {"claimed_by", "claimed_until", "ix_deliveries_pending"} <= columns(
        tmp_path / "digest.db"
    )
    store.close()


def test_an_older_schema_is_refused_until_db_upgrade(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    db = tmp_path / "digest.db"
    make_version_2(db)
    with pytest.raises(StoreError, match=r"schema version 2, older .* run `digest db upgrade`"):
        Store.open(f"sqlite:///{db}")
    status = CliRunner().invoke(cli, ["--config", str(config), "status"])
    assert status.exit_code == 1
    assert f"older than this digest needs ({SCHEMA_VERSION})" in status.output
    assert len(status.output.strip().splitlines()) == 1  # one line, no traceback

    upgrade = CliRunner().invoke(cli, ["--config", str(config), "db", "upgrade"])
    assert upgrade.exit_code == 0, upgrade.output
    later = ", ".join(str(v) for v in sorted(MIGRATIONS) if v > 2)
    assert f"schema 2 -> {SCHEMA_VERSION} (applied {later})" in upgrade.output
    assert {"claimed_by", "claimed_until", "ix_deliveries_pending", "retry_since"} <= columns(db)
    assert {"articles.image_width", "articles.image_height"} <= columns(db)  # migration 9
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:  # migration 5: the composed issue's JSON
        assert "doc" in {c["name"] for c in sa.inspect(conn).get_columns("issues")}
    engine.dispose()
    store = Store.open(f"sqlite:///{db}")
    assert store.version() == SCHEMA_VERSION
    store.close()
    again = CliRunner().invoke(cli, ["--config", str(config), "db", "upgrade"])
    assert again.exit_code == 0
    assert f"schema {SCHEMA_VERSION}, already up to date" in again.output


def test_a_database_without_migration_8_gains_retry_since(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    db = tmp_path / "digest.db"
    Store.open(f"sqlite:///{db}").close()
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        undo_migration_8(conn)
    engine.dispose()
    assert "retry_since" not in columns(db)
    upgrade = CliRunner().invoke(cli, ["--config", str(config), "db", "upgrade"])
    assert upgrade.exit_code == 0 and "schema 9 -> 9 (applied 8)" in upgrade.output
    assert "retry_since" in columns(db)


def test_a_newer_schema_is_refused_even_by_db_upgrade(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    store = Store.open(f"sqlite:///{tmp_path / 'digest.db'}")
    with store.db.begin() as conn:
        conn.execute(schema_version.insert().values(version=SCHEMA_VERSION + 1, applied_at=NOW))
    store.close()
    for args in (["status"], ["db", "upgrade"]):
        result = CliRunner().invoke(cli, ["--config", str(config), *args])
        assert result.exit_code == 1
        newer = f"schema version {SCHEMA_VERSION + 1}, newer than this digest knows"
        assert f"{newer} ({SCHEMA_VERSION})" in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_a_migration_that_landed_out_of_order_is_still_applied(tmp_path: Path) -> None:
    """A store that has migration 9 but not 5 (numbered on parallel branches) gets 5."""
    url = f"sqlite:///{tmp_path / 'digest.db'}"
    Store.open(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        undo_migration_5(conn)
    engine.dispose()
    with pytest.raises(StoreError, match="older than this digest needs"):
        Store.open(url)
    store = Store.open(url, migrate=False)
    assert store.migrate() == [5]
    store.close()
    Store.open(url).close()  # now complete: opens without complaint
