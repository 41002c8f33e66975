"""The audit log, which is also each return's timeline: who or what did what, and why."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from returnsync.storage.tables import audit_log

if TYPE_CHECKING:
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
    conn.execute(
        audit_log.insert().values(
            tenant=tenant,
            at=now,
            actor=actor,
            action=action,
            return_ref=return_ref,
            detail=detail or {},
        )
    )


def timeline(conn: Connection, tenant: str, return_ref: str) -> list[dict[str, Any]]:
    """Every entry for one return, oldest first."""
    stmt = (
        select(audit_log)
        .where(audit_log.c.tenant == tenant, audit_log.c.return_ref == return_ref)
        .order_by(audit_log.c.id)
    )
    return [dict(r) for r in conn.execute(stmt).mappings()]
