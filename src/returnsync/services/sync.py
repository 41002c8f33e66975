"""Bring our copy of a return up to date from the ZigZag API (never from a webhook alone).

ZigZag documents no webhook signature, so a webhook is only a hint that something changed:
the snapshot we act on always comes from the authenticated API. A snapshot older than the
one we hold is kept in the timeline but never moves the return backwards.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from returnsync.adapters.zigzag import mapping as zz_mapping
from returnsync.domain.model import associated_ref
from returnsync.domain.states import ReturnState
from returnsync.services.context import serial_key
from returnsync.storage import audit, inbox, jobqueue, returns

if TYPE_CHECKING:
    from returnsync.ports import ReturnSnapshot
    from returnsync.services.context import Context
    from returnsync.storage.jobqueue import Job

CANCELLED_STATUSES = frozenset({"Cancelled", "Rejected"})


def sync_return(ctx: Context, tenant_id: str, return_ref: str, trigger: str) -> ReturnState:
    """Fetch the return from ZigZag and apply it; returns our state afterwards."""
    snapshot = ctx.platform(tenant_id).get_return(return_ref)
    return apply_snapshot(ctx, tenant_id, snapshot, trigger)


def apply_snapshot(
    ctx: Context, tenant_id: str, snapshot: ReturnSnapshot, trigger: str
) -> ReturnState:
    """Store a confirmed snapshot (unless stale) and move our state forward if it allows."""
    tenant = ctx.tenant(tenant_id)
    now = ctx.clock.now()
    fresh = zz_mapping.to_domain(tenant_id, snapshot.raw)
    with ctx.db.begin() as conn:
        # Our row of the return stays locked until commit (PostgreSQL; SQLite has one writer).
        # `returns.save` writes back the state read here; a Khaos push (jobs of another serial
        # key) may move the same return meanwhile, STAGED -> CREDITED or HELD -> READY, and
        # READ COMMITTED would let this transaction put the old state back, leaving the saga
        # waiting for a credit note already seen (found by the chaos run on PostgreSQL).
        returns.lock(conn, tenant_id, snapshot.return_ref)
        held = returns.get(conn, tenant_id, snapshot.return_ref)
        if held is not None and snapshot.updated_at < held.zigzag_updated_at:
            audit.record(
                conn,
                tenant=tenant_id,
                actor="system:sync",
                action="stale_snapshot_ignored",
                return_ref=snapshot.return_ref,
                now=now,
                detail={"snapshot_at": snapshot.updated_at.isoformat(), "trigger": trigger},
            )
            return held.state
        state = held.state if held is not None else ReturnState.OPEN
        if state is ReturnState.OPEN:
            if snapshot.status in CANCELLED_STATUSES:
                state = ReturnState.CANCELLED
            elif zz_mapping.is_fully_inspected(snapshot.raw):
                state = ReturnState.READY
        # Lines are frozen once staged: what Khaos was offered must not change under it.
        lines = (
            fresh.lines
            if state in {ReturnState.OPEN, ReturnState.READY} or held is None
            else held.lines
        )
        record = type(fresh)(
            tenant=tenant_id,
            return_ref=fresh.return_ref,
            order_ref=fresh.order_ref,
            currency=fresh.currency,
            warehouse=fresh.warehouse,
            zigzag_status=snapshot.status,
            zigzag_updated_at=snapshot.updated_at,
            state=state,
            lines=lines,
        )
        returns.save(
            conn,
            record,
            associated_ref=associated_ref(tenant.zigzag.retailer_code, record.return_ref),
            snapshot=snapshot.raw,
            now=now,
            seen_by="poll" if trigger == "poll" else "webhook",
        )
        if held is None or held.state is not state or held.zigzag_status != snapshot.status:
            audit.record(
                conn,
                tenant=tenant_id,
                actor="system:sync",
                action="snapshot_applied",
                return_ref=record.return_ref,
                now=now,
                detail={"zigzag_status": snapshot.status, "state": state.value, "via": trigger},
            )
        if state is ReturnState.READY:
            jobqueue.enqueue(
                conn,
                tenant=tenant_id,
                kind="advance",
                serial_key=serial_key(tenant_id, record.return_ref),
                dedupe_key=f"advance:{tenant_id}:{record.return_ref}",
                payload={"return_ref": record.return_ref},
                now=now,
            )
        return state


def sync_job(ctx: Context, job: Job) -> None:
    """Run one `sync_return` job and fold in every other one queued for the same return.

    Each ZigZag event queues a sync of its return; a burst (created, received, inspected,
    duplicates, redeliveries) queues several. The fetch below reads the return as it is now,
    which covers every event stored before it, so the syncs queued before the fetch are closed
    with this one and their inbox messages marked processed: one ZigZag GET instead of many.
    A state is counted as seen by a webhook if any of the folded jobs came from one.
    """
    with ctx.db.begin() as conn:
        twins = jobqueue.pending_twins(conn, job)
    payloads = [job.payload, *(payload for _, payload in twins)]
    trigger = "poll" if all(p.get("trigger") == "poll" for p in payloads) else "webhook"
    sync_return(ctx, job.tenant, job.payload["return_ref"], trigger)
    now = ctx.clock.now()
    with ctx.db.begin() as conn:
        absorbed = set(jobqueue.absorb(conn, [i for i, _ in twins], into=job, now=now))
        folded = [job.payload, *(payload for i, payload in twins if i in absorbed)]
        for payload in folded:
            if payload.get("inbox_id"):
                inbox.mark(conn, int(payload["inbox_id"]), status="processed", now=now)
