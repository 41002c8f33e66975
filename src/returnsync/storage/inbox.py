"""The inbox: every inbound message stored raw, once, before we acknowledge it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, select, update

from returnsync.storage.sql import insert_ignore
from returnsync.storage.tables import inbox

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.engine import Connection


@dataclass(frozen=True, slots=True, kw_only=True)
class InboxMessage:
    """One stored inbound message."""

    id: int
    tenant: str
    source: str
    dedupe_key: str
    received_at: datetime
    payload: str
    status: str


def store(
    conn: Connection, *, tenant: str, source: str, dedupe_key: str, payload: str, now: datetime
) -> int | None:
    """Store a message; returns its id, or None when the same (tenant, source, key) is stored."""
    inserted = insert_ignore(
        conn,
        inbox,
        {
            "tenant": tenant,
            "source": source,
            "dedupe_key": dedupe_key,
            "payload": payload,
            "received_at": now,
            "status": "pending",
        },
    )
    if not inserted:
        return None
    row = conn.execute(
        select(inbox.c.id).where(
            inbox.c.tenant == tenant, inbox.c.source == source, inbox.c.dedupe_key == dedupe_key
        )
    ).one()
    return int(row.id)


def get(conn: Connection, message_id: int) -> InboxMessage | None:
    """The message with this id, or None."""
    row = conn.execute(select(inbox).where(inbox.c.id == message_id)).first()
    if row is None:
        return None
    return InboxMessage(
        id=row.id,
        tenant=row.tenant,
        source=row.source,
        dedupe_key=row.dedupe_key,
        received_at=row.received_at,
        payload=row.payload,
        status=row.status,
    )


def mark(
    conn: Connection, message_id: int, *, status: str, now: datetime, error: str | None = None
) -> None:
    """Record the outcome of processing: `processed` or `quarantined` (with the reason)."""
    conn.execute(
        update(inbox)
        .where(inbox.c.id == message_id)
        .values(status=status, processed_at=now, error=error)
    )


def counts(conn: Connection, tenant: str | None = None) -> dict[str, int]:
    """Messages per status (all tenants when `tenant` is None)."""
    stmt = select(inbox.c.status, func.count()).group_by(inbox.c.status)
    if tenant is not None:
        stmt = stmt.where(inbox.c.tenant == tenant)
    return {status: int(n) for status, n in conn.execute(stmt)}
