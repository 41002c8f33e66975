"""The inbox: every inbound message stored raw, once, before we acknowledge it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, func, select, text, update

from returnsync.storage.sql import insert_many, insert_new
from returnsync.storage.tables import inbox

if TYPE_CHECKING:
    from collections.abc import Sequence
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
    inserted = insert_new(
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
    return None if inserted is None else int(inserted)


@dataclass(frozen=True, slots=True, kw_only=True)
class NewMessage:
    """One message to store with `store_many`."""

    tenant: str
    source: str
    dedupe_key: str
    payload: str
    received_at: datetime


def store_many(conn: Connection, messages: Sequence[NewMessage]) -> list[int | None]:
    """Store messages in multi-row INSERTs; per message its new id, or None when not stored.

    None exactly where `store` one by one, in this order, would return None: the same
    (tenant, source, dedupe_key) was already in the table, or earlier in `messages` (only the
    first of those is written). Ids are assigned in the order of `messages`.
    """
    first: dict[tuple[str, str, str], int] = {}
    for index, message in enumerate(messages):
        first.setdefault((message.tenant, message.source, message.dedupe_key), index)
    rows = [
        {
            "tenant": m.tenant,
            "source": m.source,
            "dedupe_key": m.dedupe_key,
            "payload": m.payload,
            "received_at": m.received_at,
            "status": "pending",
        }
        for m in (messages[i] for i in sorted(first.values()))
    ]
    inserted: dict[tuple[str, str, str], int] = {}
    # RETURNING gives no order guarantee (PostgreSQL): match rows by their unique key
    for row in insert_many(
        conn,
        inbox,
        rows,
        returning=("id", "tenant", "source", "dedupe_key"),
        on_conflict=_unless_stored,
    ):
        inserted[(row.tenant, row.source, row.dedupe_key)] = int(row.id)
    ids: list[int | None] = []
    for index, message in enumerate(messages):
        key = (message.tenant, message.source, message.dedupe_key)
        ids.append(inserted.get(key) if first[key] == index else None)
    return ids


def _unless_stored(stmt: Any) -> Any:
    return stmt.on_conflict_do_nothing()


_BY_ID = select(inbox).where(inbox.c.id == bindparam("id"))


def get(conn: Connection, message_id: int) -> InboxMessage | None:
    """The message with this id, or None."""
    row = conn.execute(_BY_ID, {"id": message_id}).first()
    return None if row is None else _message(row)


_PENDING = (
    select(inbox)
    .where(
        inbox.c.tenant == bindparam("tenant_id"),
        inbox.c.source == bindparam("source_name"),
        inbox.c.id > bindparam("after_id"),
        text("status = 'pending'"),  # the predicate of ix_inbox_pending, word for word
    )
    .order_by(inbox.c.id)
    .limit(bindparam("most"))
)


def pending(
    conn: Connection, *, tenant: str, source: str, after: int = 0, limit: int
) -> list[InboxMessage]:
    """A tenant's pending messages from one source with ids above `after`, oldest first, at
    most `limit`."""
    params = {"tenant_id": tenant, "source_name": source, "after_id": after, "most": limit}
    rows = conn.execute(_PENDING, params)
    return [_message(row) for row in rows]


def _message(row: Any) -> InboxMessage:
    return InboxMessage(
        id=row.id,
        tenant=row.tenant,
        source=row.source,
        dedupe_key=row.dedupe_key,
        received_at=row.received_at,
        payload=row.payload,
        status=row.status,
    )


_MARK = update(inbox).where(inbox.c.id == bindparam("message_id"))  # SET: the other parameters


def mark(
    conn: Connection, message_id: int, *, status: str, now: datetime, error: str | None = None
) -> None:
    """Record the outcome of processing: `processed` or `quarantined` (with the reason), or
    `pending` again (a replay)."""
    processed_at = None if status == "pending" else now
    conn.execute(
        _MARK,
        {"message_id": message_id, "status": status, "processed_at": processed_at, "error": error},
    )


def counts(conn: Connection, tenant: str | None = None) -> dict[str, int]:
    """Messages per status (all tenants when `tenant` is None)."""
    stmt = select(inbox.c.status, func.count()).group_by(inbox.c.status)
    if tenant is not None:
        stmt = stmt.where(inbox.c.tenant == tenant)
    return {status: int(n) for status, n in conn.execute(stmt)}


def listing(
    conn: Connection, *, status: str | None = None, tenant: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Messages without their payload, newest first (for `returnsync inbox list`)."""
    cols = [c for c in inbox.c if c.name != "payload"]
    stmt = select(*cols, func.length(inbox.c.payload).label("size"))
    if status is not None:
        stmt = stmt.where(inbox.c.status == status)
    if tenant is not None:
        stmt = stmt.where(inbox.c.tenant == tenant)
    return [dict(r) for r in conn.execute(stmt.order_by(inbox.c.id.desc()).limit(limit)).mappings()]
