"""Read-side helpers shared by the web views, the CLI and the demo summary."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from returnsync.services.monitor_scope import LAST_FULL_PASS, LAST_PASS
from returnsync.storage import audit, cursors, inbox, jobqueue, khaos
from returnsync.storage import exceptions as exceptions_repo
from returnsync.storage import returns as returns_repo

if TYPE_CHECKING:
    from returnsync.services.context import Context


def health(ctx: Context) -> dict[str, Any]:
    """`{"status": "ok", "database": "ok"}` or the database error."""
    try:
        with ctx.db.read() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return {"status": "degraded", "database": f"{type(exc).__name__}"}
    return {"status": "ok", "database": "ok"}


def summary(ctx: Context) -> dict[str, Any]:
    """Counts across the whole installation."""
    with ctx.db.read() as conn:
        return {
            "returns_by_state": returns_repo.counts_by_state(conn),
            "jobs_by_status": jobqueue.counts(conn),
            "open_exceptions_by_kind": exceptions_repo.counts(conn),
            "inbox_by_status": inbox.counts(conn),
            # when each tenant's reconciliation monitor last ran, and last ran a full pass:
            # alert when the full pass is older than a day and a bit (the monitor is down)
            "monitor_runs": {
                tenant: {"last_run": at.get(LAST_PASS), "last_full_pass": at.get(LAST_FULL_PASS)}
                for tenant, at in cursors.by_tenant(conn, (LAST_PASS, LAST_FULL_PASS)).items()
            },
        }


def job_backlog(ctx: Context) -> list[dict[str, Any]]:
    """Unfinished jobs per tenant (`jobqueue.backlog`), with `due_for_seconds`: how long the
    oldest due job has been runnable (0 when none is due)."""
    now = ctx.clock.now()
    with ctx.db.read() as conn:
        rows = jobqueue.backlog(conn, now=now)
    for row in rows:
        oldest = row["oldest_due"]
        row["due_for_seconds"] = round((now - oldest).total_seconds()) if oldest else 0
    return rows


def returns(ctx: Context, *, tenant: str | None, state: str | None) -> list[dict[str, Any]]:
    """Returns without their snapshots."""
    with ctx.db.read() as conn:
        return returns_repo.listing(conn, tenant=tenant, state=state)


def return_detail(ctx: Context, tenant: str, return_ref: str) -> dict[str, Any] | None:
    """A return, its lines, its credit notes and its timeline."""
    with ctx.db.read() as conn:
        row = returns_repo.row(conn, tenant, return_ref)
        if row is None:
            return None
        ret = returns_repo.get(conn, tenant, return_ref)
        return {
            "return": {k: v for k, v in row.items() if k != "snapshot"},
            "lines": [
                {
                    "line_id": line.line_id,
                    "sku": line.sku,
                    "quantity": line.quantity,
                    "disposition": line.disposition.value,
                    "unit_price": str(line.unit_price.amount),
                }
                for line in (ret.lines if ret else ())
            ],
            "credit_notes": khaos.credit_notes_for(conn, tenant, row["associated_ref"]),
            "timeline": audit.timeline(conn, tenant, return_ref),
        }


def exceptions(ctx: Context, *, tenant: str | None, status: str) -> list[dict[str, Any]]:
    """Exceptions, newest first."""
    with ctx.db.read() as conn:
        return exceptions_repo.listing(conn, tenant=tenant, status=status)


def findings(
    ctx: Context, *, tenant: str | None, status: str = "open", limit: int = 500
) -> list[dict[str, Any]]:
    """Reconciliation findings, most severe first."""
    from sqlalchemy import select  # noqa: PLC0415

    from returnsync.storage.tables import findings as table  # noqa: PLC0415

    stmt = select(table).where(table.c.status == status).order_by(table.c.id).limit(limit)
    if tenant is not None:
        stmt = stmt.where(table.c.tenant == tenant)
    order = ["critical", "high", "medium", "low", "info"]
    with ctx.db.read() as conn:
        rows = [dict(r) for r in conn.execute(stmt).mappings()]
    return sorted(rows, key=lambda r: order.index(r["severity"]) if r["severity"] in order else 9)


def jobs(ctx: Context, *, status: str | None) -> list[dict[str, Any]]:
    """Jobs, newest first."""
    with ctx.db.read() as conn:
        return jobqueue.listing(conn, status=status)
