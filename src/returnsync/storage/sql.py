"""Small helpers shared by the repositories: dialect-specific upserts and multi-row inserts.

The statements are built once per table, column set and dialect and then executed with
parameters: building and cache-keying a statement costs more than running it on SQLite,
and these run for every event.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Text, bindparam, cast, func, select, type_coerce
from sqlalchemy.dialects import postgresql, sqlite

from returnsync.storage.db import dumps_json
from returnsync.storage.tables import UtcDateTime

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sqlalchemy import Table
    from sqlalchemy.engine import Connection, Row


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


def upsert_many(
    conn: Connection, table: Table, rows: Sequence[dict[str, Any]], keys: list[str]
) -> None:
    """`upsert` for rows with the same keys, as one executemany (psycopg pipelines it)."""
    if rows:
        stmt = _upsert(conn.dialect.name == "postgresql", table, tuple(rows[0]), tuple(keys))
        conn.execute(stmt, list(rows))


@functools.cache
def _upsert(pg: bool, table: Table, columns: tuple[str, ...], keys: tuple[str, ...]) -> Any:
    stmt = dialect_insert(table, pg=pg)
    update = {k: stmt.excluded[k] for k in columns if k not in keys}
    return stmt.on_conflict_do_update(index_elements=list(keys), set_=update)


def insert_many(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    returning: tuple[str, ...],
    on_conflict: Callable[[Any], Any] | None = None,
) -> list[Row[Any]]:
    """Insert `rows` (dicts with the same keys) in one round trip; the `returning` columns of
    the rows inserted. Ids are assigned in the order of `rows`.

    `on_conflict(stmt)`, a module-level function, adds an ON CONFLICT clause to the
    dialect's INSERT. SQLite: one cached statement with a list of parameter sets, which
    SQLAlchemy sends as multi-row INSERT ... VALUES ("insertmanyvalues"). PostgreSQL: the
    rows as ONE JSON array parameter, `INSERT ... SELECT ... FROM json_array_elements(:rows)
    WITH ORDINALITY ORDER BY ordinality`: a short statement psycopg caches and prepares,
    and a parameter serialised by the C JSON encoder. The VALUES form has one parameter per
    value, over psycopg's statement-cache limits (50 parameters, 4 KiB), so psycopg parsed
    its text again for every batch (40 % of the group-commit writer's CPU); arrays per
    column cost more still (psycopg escapes each text element with a regex).
    """
    if not rows:
        return []
    columns = tuple(rows[0])
    pg = conn.dialect.name == "postgresql"
    stmt = _many_statement(table, columns, returning, on_conflict, pg=pg)
    if not pg:
        return list(conn.execute(stmt, list(rows)).all())
    stamps = [name for name in columns if isinstance(table.c[name].type, UtcDateTime)]
    if stamps:
        rows = [{**row, **{name: _utc_text(row[name]) for name in stamps}} for row in rows]
    return list(conn.execute(stmt, {"rows": dumps_json(rows)}).all())


def _utc_text(value: datetime | None) -> str | None:
    """A timestamp as ISO 8601 in UTC; naive datetimes refused, as `UtcDateTime` does."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime: returnsync stores timezone-aware UTC only")
    return value.astimezone(UTC).isoformat()


@functools.cache
def _many_statement(
    table: Table,
    columns: tuple[str, ...],
    returning: tuple[str, ...],
    on_conflict: Callable[[Any], Any] | None,
    *,
    pg: bool,
) -> Any:
    """SQLite: an INSERT for a list of parameter sets. PostgreSQL: INSERT ... SELECT from
    the `rows` JSON array (`_json_rows`)."""
    stmt: Any = (
        postgresql.insert(table).from_select(list(columns), _json_rows(table, columns))
        if pg
        else sqlite.insert(table)
    )
    if on_conflict is not None:
        stmt = on_conflict(stmt)
    return stmt.returning(*(table.c[name] for name in returning))


def _json_rows(table: Table, columns: tuple[str, ...]) -> Any:
    """The `columns` of each element of the `rows` JSON array, typed as `table`'s, in order."""
    elements = (
        func.json_array_elements(cast(bindparam("rows", type_=Text()), postgresql.JSON))
        .table_valued("value", with_ordinality="ordinality")
        .render_derived()
    )
    row = type_coerce(elements.c.value, postgresql.JSON)
    values = []
    for name in columns:
        column_type = table.c[name].type
        if isinstance(column_type, JSON):
            values.append(row[name])  # `value -> 'name'`: the JSON itself
        else:
            values.append(cast(row[name].astext, column_type))
    return select(*values).order_by(elements.c.ordinality)
