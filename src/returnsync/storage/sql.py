"""Small helpers shared by the repositories: dialect-specific upserts.

The upsert statements are built once per table, column set and dialect and then executed
with parameters: building and cache-keying a statement costs more than running it on
SQLite, and these run for every event.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from sqlalchemy.dialects import postgresql, sqlite

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection


def insert_for(conn: Connection, table: Table) -> Any:
    """An INSERT that supports ON CONFLICT on this connection's dialect."""
    return dialect_insert(table, pg=conn.dialect.name == "postgresql")


def dialect_insert(table: Table, *, pg: bool) -> Any:
    """PostgreSQL's or SQLite's INSERT (both support ON CONFLICT), for statements built once."""
    return postgresql.insert(table) if pg else sqlite.insert(table)


def insert_ignore(conn: Connection, table: Table, values: dict[str, Any]) -> bool:
    """Insert unless a unique constraint already holds the row; True when inserted."""
    return insert_new(conn, table, values) is not None


def insert_new(conn: Connection, table: Table, values: dict[str, Any]) -> Any:
    """Insert unless a unique constraint already holds the row; the new row's (first)
    primary-key value, or None when nothing was inserted."""
    # rowcount is not reliable for INSERT on every driver; RETURNING is.
    stmt = _insert_ignore(conn.dialect.name == "postgresql", table)
    return conn.execute(stmt, values).scalar()


@functools.cache
def _insert_ignore(pg: bool, table: Table) -> Any:
    key = next(iter(table.primary_key.columns))
    return dialect_insert(table, pg=pg).on_conflict_do_nothing().returning(key)


def upsert(conn: Connection, table: Table, values: dict[str, Any], keys: list[str]) -> None:
    """Insert, or update every non-key column of the row with the same `keys`."""
    stmt = _upsert(conn.dialect.name == "postgresql", table, tuple(values), tuple(keys))
    conn.execute(stmt, values)


@functools.cache
def _upsert(pg: bool, table: Table, columns: tuple[str, ...], keys: tuple[str, ...]) -> Any:
    stmt = dialect_insert(table, pg=pg)
    update = {k: stmt.excluded[k] for k in columns if k not in keys}
    return stmt.on_conflict_do_update(index_elements=list(keys), set_=update)
