"""Named cursors per tenant (the polling sweep's high-water mark, for example)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import bindparam, select

from returnsync.storage.sql import upsert
from returnsync.storage.tables import cursors

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.engine import Connection


_GET = select(cursors.c.value).where(
    cursors.c.tenant == bindparam("tenant"), cursors.c.name == bindparam("name")
)


def get(conn: Connection, tenant: str, name: str) -> str | None:
    """The cursor's value, or None if never set."""
    return conn.execute(_GET, {"tenant": tenant, "name": name}).scalar()


def put(conn: Connection, tenant: str, name: str, value: str, now: datetime) -> None:
    """Set the cursor."""
    upsert(
        conn,
        cursors,
        {"tenant": tenant, "name": name, "value": value, "updated_at": now},
        keys=["tenant", "name"],
    )


def by_tenant(conn: Connection, names: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """The cursors called one of `names`, per tenant: {tenant: {name: value}}."""
    out: dict[str, dict[str, str]] = {}
    rows = conn.execute(
        select(cursors.c.tenant, cursors.c.name, cursors.c.value).where(cursors.c.name.in_(names))
    )
    for tenant, name, value in rows:
        out.setdefault(tenant, {})[name] = value
    return out
