"""The audit log, which is also each return's timeline: who or what did what, and why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from returnsync.storage.sql import insert_many
from returnsync.storage.tables import audit_log

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from sqlalchemy.engine import Connection


def record(
    conn: Connection,
    *,
    tenant: str,
    actor: str,
    action: str,
    now: datetime,
    return_ref: str = "",
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one entry. `actor` is a person's name or `system:<component>`."""
    record_many(
        conn,
        [
            Entry(
                tenant=tenant,
                actor=actor,
                action=action,
                now=now,
                return_ref=return_ref,
                detail=detail,
            )
        ],
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One entry for `record_many`; the fields of `record`."""

    tenant: str
    actor: str
    action: str
    now: datetime
    return_ref: str = ""
    detail: dict[str, Any] | None = None


def record_many(conn: Connection, entries: Sequence[Entry]) -> None:
    """Append entries in multi-row INSERTs, in order: the rows `record` writes one by one."""
    rows = [
        {
            "tenant": e.tenant,
            "at": e.now,
            "actor": e.actor,
            "action": e.action,
            "return_ref": e.return_ref,
            "detail": e.detail or {},
        }
        for e in entries
    ]
    insert_many(conn, audit_log, rows, returning=("id",))


def timeline(conn: Connection, tenant: str, return_ref: str) -> list[dict[str, Any]]:
    """Every entry for one return, oldest first."""
    stmt = (
        select(audit_log)
        .where(audit_log.c.tenant == tenant, audit_log.c.return_ref == return_ref)
        .order_by(audit_log.c.id)
    )
    return [dict(r) for r in conn.execute(stmt).mappings()]
