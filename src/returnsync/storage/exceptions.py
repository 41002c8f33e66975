"""The exception queue: things a person must fix, each with an owner team."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update

from returnsync.storage.tables import exceptions

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.engine import Connection


def raise_open(
    conn: Connection,
    *,
    tenant: str,
    kind: str,
    owner: str,
    message: str,
    now: datetime,
    return_ref: str = "",
    subject: str = "",
    detail: dict[str, Any] | None = None,
) -> bool:
    """Open an exception unless the same (tenant, kind, return, subject) is already open."""
    already = conn.execute(
        select(exceptions.c.id).where(
            exceptions.c.tenant == tenant,
            exceptions.c.kind == kind,
            exceptions.c.return_ref == return_ref,
            exceptions.c.subject == subject,
            exceptions.c.status == "open",
        )
    ).first()
    if already is not None:
        return False
    conn.execute(
        exceptions.insert().values(
            tenant=tenant,
            kind=kind,
            return_ref=return_ref,
            subject=subject,
            owner=owner,
            status="open",
            message=message,
            detail=detail or {},
            created_at=now,
        )
    )
    return True


def resolve(
    conn: Connection,
    *,
    tenant: str,
    kind: str,
    now: datetime,
    return_ref: str | None = None,
    subject: str | None = None,
) -> list[str]:
    """Resolve open exceptions of `kind` (for one return or subject); returns their return refs."""
    where = [
        exceptions.c.tenant == tenant,
        exceptions.c.kind == kind,
        exceptions.c.status == "open",
    ]
    if return_ref is not None:
        where.append(exceptions.c.return_ref == return_ref)
    if subject is not None:
        where.append(exceptions.c.subject == subject)
    refs = [r for (r,) in conn.execute(select(exceptions.c.return_ref).where(*where))]
    conn.execute(update(exceptions).where(*where).values(status="resolved", resolved_at=now))
    return refs


def open_for(conn: Connection, tenant: str, kind: str) -> list[dict[str, Any]]:
    """Open exceptions of one kind for a tenant."""
    stmt = select(exceptions).where(
        exceptions.c.tenant == tenant, exceptions.c.kind == kind, exceptions.c.status == "open"
    )
    return [dict(r) for r in conn.execute(stmt).mappings()]


def counts(conn: Connection, *, status: str = "open") -> dict[str, int]:
    """Exceptions per kind."""
    stmt = (
        select(exceptions.c.kind, func.count())
        .where(exceptions.c.status == status)
        .group_by(exceptions.c.kind)
    )
    return {kind: int(n) for kind, n in conn.execute(stmt)}


def listing(
    conn: Connection, *, tenant: str | None = None, status: str = "open", limit: int = 200
) -> list[dict[str, Any]]:
    """Exceptions, newest first."""
    stmt = select(exceptions).where(exceptions.c.status == status)
    if tenant is not None:
        stmt = stmt.where(exceptions.c.tenant == tenant)
    stmt = stmt.order_by(exceptions.c.id.desc()).limit(limit)
    return [dict(r) for r in conn.execute(stmt).mappings()]


def resolve_by_id(conn: Connection, exception_id: int, *, now: datetime) -> dict[str, Any] | None:
    """Resolve one open exception by id; returns it, or None when no such open exception."""
    row = (
        conn.execute(
            select(exceptions).where(exceptions.c.id == exception_id, exceptions.c.status == "open")
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    conn.execute(
        update(exceptions)
        .where(exceptions.c.id == exception_id)
        .values(status="resolved", resolved_at=now)
    )
    return dict(row)
