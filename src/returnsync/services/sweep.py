"""The polling sweep: ask ZigZag what changed, to catch whatever the webhooks missed.

ZigZag retries a failed webhook only daily and only for a week, so the sweep is what
guarantees nothing is lost. Each change found goes through the same inbox and the same
`sync_return` job as a webhook; a change seen only by polling is a `webhook_gap`.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from returnsync.services.context import Context, serial_key
from returnsync.storage import cursors, inbox, jobqueue, returns

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from sqlalchemy.engine import Connection

    from returnsync.ports import ReturnSnapshot

OVERLAP = timedelta(minutes=5)  # re-read a little history: clocks differ, commits land late
PAGE = 200  # listed versions checked and queued per transaction
CURSOR = "zigzag_poll"


def sweep(ctx: Context, tenant_id: str) -> int:
    """Enqueue a sync for every return changed since the last sweep; returns how many.

    A version we have already applied (our snapshot of the return is as new or newer, from a
    webhook's sync or an earlier sweep) is passed over: nothing was missed there, and
    fetching it again would cost a ZigZag call and a job per return after every change we
    cause ourselves (recording a refund updates the return). So is a version of a return
    whose sync is queued and not yet started (a webhook's, or an earlier sweep's): its
    fetch comes after this listing, so it reads this version or a newer one. In a backlog
    that is most of the listing, which every sweep reads again for its 5-minute overlap.
    """
    now = ctx.clock.now()
    with ctx.db.begin() as conn:
        raw = cursors.get(conn, tenant_id, CURSOR)
    since = datetime.fromisoformat(raw) - OVERLAP if raw else now - timedelta(days=30)
    newest = datetime.fromisoformat(raw) if raw else since
    queued = 0
    for page in _pages(ctx.platform(tenant_id).returns_updated_since(since)):
        newest = max(newest, *(snap.updated_at for snap in page))
        keys = {snap.return_ref: serial_key(tenant_id, snap.return_ref) for snap in page}
        with ctx.db.begin() as conn:  # one transaction per page, not per return
            synced = returns.synced_versions(conn, tenant_id, keys.keys())
            waiting = jobqueue.pending_keys(conn, kind="sync_return", serial_keys=keys.values())
            for snap in page:
                have = synced.get(snap.return_ref)
                if have is not None and have >= snap.updated_at:
                    continue
                if keys[snap.return_ref] in waiting:
                    continue  # a sync not yet started will fetch this version or a newer one
                queued += _queue_sync(conn, tenant_id, snap, now)
    with ctx.db.begin() as conn:
        cursors.put(conn, tenant_id, CURSOR, newest.isoformat(), now)
    return queued


def _pages(snapshots: Iterable[ReturnSnapshot]) -> Iterator[list[ReturnSnapshot]]:
    """The listing in runs of `PAGE` snapshots."""
    page: list[ReturnSnapshot] = []
    for snap in snapshots:
        page.append(snap)
        if len(page) == PAGE:
            yield page
            page = []
    if page:
        yield page


def _queue_sync(conn: Connection, tenant_id: str, snap: ReturnSnapshot, now: datetime) -> int:
    """Store the listed version in the inbox and queue its sync; 0 if it was stored before."""
    message_id = inbox.store(
        conn,
        tenant=tenant_id,
        source="zigzag_poll",
        dedupe_key=f"{snap.return_ref}@{snap.updated_at.isoformat()}",
        payload=json.dumps(snap.raw),
        now=now,
    )
    if message_id is None:
        return 0
    jobqueue.enqueue(
        conn,
        tenant=tenant_id,
        kind="sync_return",
        serial_key=serial_key(tenant_id, snap.return_ref),
        payload={"return_ref": snap.return_ref, "trigger": "poll", "inbox_id": message_id},
        now=now,
    )
    return 1
