"""Alembic migrations, run programmatically by `returnsync db migrate` and at start-up."""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config

if TYPE_CHECKING:
    from returnsync.storage.db import Database


def alembic_config(db: Database) -> Config:
    """An Alembic Config pointing at this package's scripts and at `db`."""
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("returnsync.storage.migrations")))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return cfg


def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema up to `revision` (idempotent)."""
    with db.engine.connect() as conn:
        cfg = alembic_config(db)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        conn.commit()


def current(db: Database) -> str | None:
    """The revision the database is at, or None when it has never been migrated."""
    from alembic.runtime.migration import MigrationContext  # noqa: PLC0415

    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
