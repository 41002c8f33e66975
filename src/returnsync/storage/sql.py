"""Small helpers shared by the repositories: dialect-specific upserts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.dialects import postgresql, sqlite

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection


def insert_for(conn: Connection, table: Table) -> Any:
    """An INSERT that supports ON CONFLICT on this connection's dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def insert_ignore(conn: Connection, table: Table, values: dict[str, Any]) -> bool:
    """Insert unless a unique constraint already holds the row; True when inserted."""
    # rowcount is not reliable for INSERT on every driver; RETURNING is.
    key = next(iter(table.primary_key.columns))
    stmt = insert_for(conn, table).values(**values).on_conflict_do_nothing().returning(key)
    return conn.execute(stmt).first() is not None


def upsert(conn: Connection, table: Table, values: dict[str, Any], keys: list[str]) -> None:
    """Insert, or update every non-key column of the row with the same `keys`."""
    stmt = insert_for(conn, table).values(**values)
    update = {k: stmt.excluded[k] for k in values if k not in keys}
    conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=update))
