"""The polling sweep: ask ZigZag what changed, to catch whatever the webhooks missed.

ZigZag retries a failed webhook only daily and only for a week, so the sweep is what
guarantees nothing is lost. Each change found goes through the same inbox and the same
`sync_return` job as a webhook; a change seen only by polling is a `webhook_gap`.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from returnsync.services.context import Context, serial_key
from returnsync.storage import cursors, inbox, jobqueue, returns

OVERLAP = timedelta(minutes=5)  # re-read a little history: clocks differ, commits land late
CURSOR = "zigzag_poll"


def sweep(ctx: Context, tenant_id: str) -> int:
    """Enqueue a sync for every return changed since the last sweep; returns how many.

    A version we have already applied (our snapshot of the return is as new or newer, from a
    webhook's sync or an earlier sweep) is passed over: nothing was missed there, and
    fetching it again would cost a ZigZag call and a job per return after every change we
    cause ourselves (recording a refund updates the return).
    """
    now = ctx.clock.now()
    with ctx.db.begin() as conn:
        raw = cursors.get(conn, tenant_id, CURSOR)
    since = datetime.fromisoformat(raw) - OVERLAP if raw else now - timedelta(days=30)
    newest = datetime.fromisoformat(raw) if raw else since
    queued = 0
    for snap in ctx.platform(tenant_id).returns_updated_since(since):
        newest = max(newest, snap.updated_at)
        with ctx.db.begin() as conn:
            synced = returns.synced_version(conn, tenant_id, snap.return_ref)
            if synced is not None and synced >= snap.updated_at:
                continue
            message_id = inbox.store(
                conn,
                tenant=tenant_id,
                source="zigzag_poll",
                dedupe_key=f"{snap.return_ref}@{snap.updated_at.isoformat()}",
                payload=json.dumps(snap.raw),
                now=now,
            )
            if message_id is not None:
                jobqueue.enqueue(
                    conn,
                    tenant=tenant_id,
                    kind="sync_return",
                    serial_key=serial_key(tenant_id, snap.return_ref),
                    payload={
                        "return_ref": snap.return_ref,
                        "trigger": "poll",
                        "inbox_id": message_id,
                    },
                    now=now,
                )
                queued += 1
    with ctx.db.begin() as conn:
        cursors.put(conn, tenant_id, CURSOR, newest.isoformat(), now)
    return queued
