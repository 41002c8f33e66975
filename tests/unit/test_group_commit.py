"""Group commit of ZigZag webhooks (docs/decisions/0007-group-commit.md), on SQLite and PostgreSQL.

The batched store must give the receipts and rows of the one-at-a-time path, one failing
message must not fail its batch, and concurrent deliveries through the real server must all
be stored exactly once, each 200 sent only after its event was committed.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import select

from returnsync.bootstrap import build
from returnsync.config import Settings, Tenant
from returnsync.services import intake
from returnsync.services.groupcommit import NOT_STORED, GroupCommitter
from returnsync.simulators.runtime import ServerThread
from returnsync.storage import tables
from returnsync.testing.tenants import make_tenant
from returnsync.web.app import create_app

if TYPE_CHECKING:
    from returnsync.services.context import Context
    from returnsync.storage.db import Database

ENVELOPE = (
    Path(__file__).parents[1] / "fixtures" / "zigzag" / "webhook_items_inspected.json"
).read_text("utf-8")
TENANTS = {"alpha": "AL001", "beta": "BE002"}  # tenant id -> ZigZag retailer code


def _tenant(tenant_id: str) -> Tenant:
    return make_tenant(tenant_id, TENANTS[tenant_id])


@pytest.fixture
def ctx(db: Database, clock: Any) -> Context:
    """A Context on the test database (both tenants), the fixed clock."""
    context = build(
        Settings(database_url=db.url),
        tenants={t: _tenant(t) for t in TENANTS},
        clock=clock,
        migrate=False,
    )
    context.db.dispose()
    context.db = db
    return context


def body(tenant_id: str, event_id: str, return_id: str) -> bytes:
    """A Z-9 envelope (the fixture's, for this tenant, event and return)."""
    envelope = json.loads(ENVELOPE)
    retailer = TENANTS[tenant_id]
    envelope.update(eventId=event_id, retailerCode=retailer, returnId=return_id)
    envelope["data"].update(returnId=return_id, retailerCode=retailer)
    return json.dumps(envelope).encode()


def headers(tenant_id: str) -> dict[str, str]:
    """The tenant's webhook key."""
    return {"X-ZigZag-Api-Key": f"whk-{tenant_id}", "Content-Type": "application/json"}


def event(ctx: Context, tenant_id: str, event_id: str, return_id: str) -> intake.ZigZagEvent:
    """An authenticated, parsed event, ready to store."""
    prepared = intake.prepare_zigzag_webhook(
        ctx, tenant_id, headers(tenant_id), body(tenant_id, event_id, return_id)
    )
    assert isinstance(prepared, intake.ZigZagEvent), prepared
    return prepared


def stored(db: Database, tenant_id: str) -> dict[str, list[dict[str, Any]]]:
    """The tenant's inbox, audit and job rows, with the tenant and the row ids made neutral."""
    with db.begin() as conn:
        inbox = conn.execute(
            select(tables.inbox).where(tables.inbox.c.tenant == tenant_id).order_by("id")
        ).mappings()
        audit = conn.execute(
            select(tables.audit_log).where(tables.audit_log.c.tenant == tenant_id).order_by("id")
        ).mappings()
        jobs = conn.execute(
            select(tables.jobs).where(tables.jobs.c.tenant == tenant_id).order_by("id")
        ).mappings()
        rows = {"inbox": [dict(r) for r in inbox], "audit": [dict(r) for r in audit]}
        rows["jobs"] = [dict(r) for r in jobs]
    position = {row["id"]: n for n, row in enumerate(rows["inbox"])}
    for table in rows.values():
        for row in table:
            del row["id"]
            row.pop("tenant")
            if "serial_key" in row:
                row["serial_key"] = row["serial_key"].replace(tenant_id, "T")
            if isinstance(row.get("payload"), str):  # the body names the retailer
                row["payload"] = row["payload"].replace(TENANTS[tenant_id], "RC")
            if isinstance(row.get("payload"), dict):
                row["payload"] = {
                    **row["payload"],
                    "inbox_id": position[row["payload"]["inbox_id"]],
                }
    return rows


def test_a_batch_gives_the_receipts_and_rows_of_one_at_a_time(ctx: Context, db: Database) -> None:
    """Duplicates inside the batch and against stored rows are found as one by one finds them."""
    deliveries = [
        ("e-1", "R1"),
        ("e-2", "R1"),
        ("e-1", "R1"),  # a duplicate inside the batch
        ("e-0", "R0"),  # a duplicate of a row stored before the batch
        ("e-3", "R2"),
        ("e-2", "R1"),
        ("e-4", "R2"),
    ]
    reference, batched = [], []
    for tenant_id, receipts in (("alpha", reference), ("beta", batched)):
        assert intake.store_zigzag_event(ctx, event(ctx, tenant_id, "e-0", "R0")).status == 200
        events = [event(ctx, tenant_id, e, r) for e, r in deliveries]
        if tenant_id == "alpha":
            receipts.extend(intake.store_zigzag_event(ctx, e) for e in events)
        else:
            receipts.extend(intake.accept_zigzag_many(ctx, events))
    assert [(r.status, r.message, r.inbox_id is None) for r in batched] == [
        (r.status, r.message, r.inbox_id is None) for r in reference
    ]
    assert [r.message for r in batched] == [
        "stored",
        "stored",
        "duplicate delivery, already stored",
        "duplicate delivery, already stored",
        "stored",
        "duplicate delivery, already stored",
        "stored",
    ]
    ids = [r.inbox_id for r in batched if r.inbox_id is not None]
    assert ids == sorted(ids)  # assigned in delivery order
    assert stored(db, "beta") == stored(db, "alpha")
    again = intake.accept_zigzag_many(ctx, [event(ctx, "beta", e, r) for e, r in deliveries])
    assert {r.message for r in again} == {"duplicate delivery, already stored"}
    assert stored(db, "beta") == stored(db, "alpha")


def _poisoned(ctx: Context, tenant_id: str, event_id: str) -> intake.ZigZagEvent:
    """An event no database driver can write: its text holds a lone surrogate."""
    good = event(ctx, tenant_id, event_id, "R9")
    return intake.ZigZagEvent(good.tenant, good.envelope, good.text + "\ud800", good.received_at)


def test_a_failing_message_does_not_fail_the_others(ctx: Context, db: Database) -> None:
    """The batch falls back to one transaction per message: the bad one is answered 503."""
    with pytest.raises(Exception):  # noqa: B017, PT011 - whatever the driver raises
        intake.accept_zigzag_many(
            ctx, [event(ctx, "alpha", "x-1", "R1"), _poisoned(ctx, "alpha", "x-2")]
        )
    assert stored(db, "alpha")["inbox"] == []  # one transaction: nothing of that batch stayed
    committer = GroupCommitter(ctx, max_batch=64, wait_ms=500)
    events = [
        event(ctx, "alpha", "g-1", "R1"),
        _poisoned(ctx, "alpha", "bad"),
        event(ctx, "alpha", "g-2", "R2"),
        event(ctx, "alpha", "g-1", "R1"),
    ]
    try:
        futures = [committer.submit(e) for e in events]
        receipts = [f.result(timeout=30) for f in futures]
    finally:
        committer.close()
    assert committer.fallbacks == 1
    assert [(r.status, r.message) for r in receipts] == [
        (200, "stored"),
        (NOT_STORED.status, NOT_STORED.message),
        (200, "stored"),
        (200, "duplicate delivery, already stored"),
    ]
    rows = stored(db, "alpha")
    assert [r["dedupe_key"] for r in rows["inbox"]] == ["g-1", "g-2"]
    assert [j["payload"]["inbox_id"] for j in rows["jobs"]] == [0, 1]
    assert [a["action"] for a in rows["audit"]] == ["webhook:ReturnItemsInspected"] * 2


def test_a_closed_committer_stores_nothing_and_answers_503(ctx: Context, db: Database) -> None:
    """After shutdown nothing is queued that could be lost: the sender is told to retry."""
    committer = GroupCommitter(ctx)
    assert committer.submit(event(ctx, "alpha", "c-1", "R1")).result(timeout=30).status == 200
    committer.close()
    assert committer.submit(event(ctx, "alpha", "c-2", "R1")).result(timeout=1) == NOT_STORED
    assert [r["dedupe_key"] for r in stored(db, "alpha")["inbox"]] == ["c-1"]


def test_concurrent_webhooks_through_the_server_are_stored_exactly_once(
    ctx: Context, db: Database
) -> None:
    """Many senders at once, a third of them re-deliveries: every 2xx is in the inbox, once."""
    ctx.settings = ctx.settings.model_copy(update={"ingest_batch_wait_ms": 5.0})
    app = create_app(ctx)
    deliveries = [
        (tenant_id, f"{tenant_id}-ev-{n}", f"R{n // 3}") for tenant_id in TENANTS for n in range(60)
    ]
    deliveries += deliveries[::3]  # re-deliveries, some while the original is in flight
    with ServerThread(app) as server, httpx.Client(base_url=server.url, timeout=60) as http:

        def post(delivery: tuple[str, str, str]) -> tuple[str, str, int, dict[str, Any]]:
            tenant_id, event_id, return_id = delivery
            response = http.post(
                f"/webhooks/zigzag/{tenant_id}",
                content=body(tenant_id, event_id, return_id),
                headers=headers(tenant_id),
            )
            return tenant_id, event_id, response.status_code, response.json()

        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(pool.map(post, deliveries))
        forged = http.post(
            "/webhooks/zigzag/alpha", content=body("alpha", "forged", "R1"), headers=headers("beta")
        )
        garbage = http.post("/webhooks/zigzag/beta", content=b"{not json", headers=headers("beta"))
        committer = app.state.group_committer
    assert forged.status_code == 401
    assert garbage.status_code == 202
    assert committer.closed  # the lifespan stopped it with the server
    assert {status for *_, status, _ in answers} == {200}
    new = [(t, e) for t, e, _, answer in answers if answer["status"] == "stored"]
    assert sorted(new) == sorted({(t, e) for t, e, _ in deliveries})  # each stored once
    with db.begin() as conn:
        inbox = conn.execute(
            select(tables.inbox.c.id, tables.inbox.c.tenant, tables.inbox.c.dedupe_key).where(
                tables.inbox.c.source == "zigzag_webhook", tables.inbox.c.status == "pending"
            )
        ).all()
        jobs = conn.execute(
            select(tables.jobs.c.payload).where(tables.jobs.c.kind == "sync_return")
        ).all()
    assert sorted((t, k) for _, t, k in inbox) == sorted(new)
    assert sorted(j.payload["inbox_id"] for j in jobs) == sorted(i for i, _, _ in inbox)
    assert "forged" not in {k for _, _, k in inbox}
    assert (committer.events, committer.fallbacks) == (len(deliveries), 0)
    assert committer.batches < len(deliveries)  # some deliveries shared a commit
