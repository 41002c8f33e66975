"""Named cursors per tenant (the polling sweep's high-water mark, for example)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from returnsync.storage.sql import upsert
from returnsync.storage.tables import cursors

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.engine import Connection


def get(conn: Connection, tenant: str, name: str) -> str | None:
    """The cursor's value, or None if never set."""
    return conn.execute(
        select(cursors.c.value).where(cursors.c.tenant == tenant, cursors.c.name == name)
    ).scalar()


def put(conn: Connection, tenant: str, name: str, value: str, now: datetime) -> None:
    """Set the cursor."""
    upsert(
        conn,
        cursors,
        {"tenant": tenant, "name": name, "value": value, "updated_at": now},
        keys=["tenant", "name"],
    )
