"""What people do: map a SKU, replay a return, revive dead jobs, prune finished ones. Every
action is audited."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from returnsync.errors import ConfigError
from returnsync.services import staging
from returnsync.storage import audit, catalogue, exceptions, jobqueue

if TYPE_CHECKING:
    from collections.abc import Callable

    from returnsync.services.context import Context


def map_sku(ctx: Context, tenant_id: str, sku: str, stock_code: str, *, actor: str) -> list[str]:
    """Map a ZigZag SKU to an existing Khaos stock code, then replay what it blocked.

    Raises ConfigError when the stock code is not in the Khaos catalogue: the map may only
    point at real master data. Returns the refs of the returns replayed.
    """
    ctx.tenant(tenant_id)
    now = ctx.clock.now()
    with ctx.db.begin() as conn:
        items = [
            i
            for i in catalogue.items(conn, tenant_id)
            if i.stock_code.strip().casefold() == stock_code.strip().casefold()
        ]
        if len(items) != 1:
            raise ConfigError(
                f"stock code {stock_code!r} is not (uniquely) in "
                f"tenant {tenant_id}'s Khaos catalogue"
            )
        catalogue.map_sku(
            conn, tenant=tenant_id, sku=sku, stock_id=items[0].stock_id, actor=actor, now=now
        )
        audit.record(
            conn,
            tenant=tenant_id,
            actor=actor,
            action="sku_mapped",
            now=now,
            detail={"sku": sku, "stock_code": items[0].stock_code, "stock_id": items[0].stock_id},
        )
        return staging.replay_held(ctx, conn, tenant_id, actor=actor)


def replay_held(ctx: Context, tenant_id: str, *, actor: str) -> list[str]:
    """Replay every held return whose blocking exceptions are resolved."""
    ctx.tenant(tenant_id)
    with ctx.db.begin() as conn:
        return staging.replay_held(ctx, conn, tenant_id, actor=actor)


def revive_dead_jobs(ctx: Context, *, actor: str, job_id: int | None = None) -> int:
    """Send dead jobs back to the queue; returns how many."""
    now = ctx.clock.now()
    with ctx.db.begin() as conn:
        count = jobqueue.revive(conn, now=now, job_id=job_id)
        audit.record(
            conn,
            tenant="*",
            actor=actor,
            action="jobs_revived",
            now=now,
            detail={"job_id": job_id, "count": count},
        )
    return count


PRUNE_BATCH = 5_000  # jobs deleted per transaction: short write locks on SQLite


def prune_jobs(
    ctx: Context,
    *,
    actor: str,
    older_than: timedelta,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Delete succeeded jobs finished more than `older_than` ago, in batches (audited).

    Finished jobs are kept for the record; this bounds the table. Pending, running and dead
    jobs are never touched. `progress(done, total)` is called after each batch. With
    `dry_run` nothing is deleted and the count is what would be. Returns how many.
    """
    if older_than < timedelta(days=1):
        raise ConfigError("keep at least one day of finished jobs (--older-than-days >= 1)")
    now = ctx.clock.now()
    before = now - older_than
    with ctx.db.read() as conn:
        total = jobqueue.count_succeeded(conn, before=before)
    if dry_run:
        return total
    done = 0
    while done < total:
        with ctx.db.begin() as conn:
            deleted = jobqueue.prune_succeeded(conn, before=before, limit=PRUNE_BATCH)
        if not deleted:
            break
        done += deleted
        if progress is not None:
            progress(done, total)
    with ctx.db.begin() as conn:
        audit.record(
            conn,
            tenant="*",
            actor=actor,
            action="jobs_pruned",
            now=now,
            detail={"finished_before": before.isoformat(), "count": done},
        )
    return done


def resolve_exception(ctx: Context, exception_id: int, *, actor: str, note: str) -> dict[str, str]:
    """Close an exception a person has dealt with (audited); raises ConfigError if not open."""
    now = ctx.clock.now()
    with ctx.db.begin() as conn:
        row = exceptions.resolve_by_id(conn, exception_id, now=now)
        if row is None:
            raise ConfigError(f"no open exception with id {exception_id}")
        audit.record(
            conn,
            tenant=row["tenant"],
            actor=actor,
            action="exception_resolved",
            return_ref=row["return_ref"],
            now=now,
            detail={"exception_id": exception_id, "kind": row["kind"], "note": note},
        )
    return {"tenant": row["tenant"], "kind": row["kind"], "return_ref": row["return_ref"]}
