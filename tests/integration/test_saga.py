"""The saga over a real database (SQLite file and PostgreSQL) with in-test fakes of the vendors.

The fakes record what was asked of them; the assertions are about effects at the "vendor".
"""

from __future__ import annotations

import copy
import json
import random
import threading
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import openpyxl
import pypdfium2
import pytest
from pydantic import SecretStr
from sqlalchemy import delete, select
from typer.testing import CliRunner

from returnsync import cli
from returnsync.adapters.notify.fake import FakeNotifier
from returnsync.adapters.payments.fake import FakeGateway
from returnsync.config import GatewayTenant, KhaosTenant, Settings, Tenant, ZigZagTenant
from returnsync.domain.model import Disposition
from returnsync.domain.money import Money
from returnsync.domain.sku import StockItem
from returnsync.engine.handlers import HANDLERS
from returnsync.engine.scheduler import Scheduler
from returnsync.engine.worker import Worker
from returnsync.errors import (
    ConfigError,
    OutcomeUnknownError,
    RejectedByRemoteError,
    TransientConnectorError,
)
from returnsync.ports import ReturnSnapshot
from returnsync.reports import closepack, closepack_render
from returnsync.services import (
    channel,
    intake,
    monitor,
    monitor_scope,
    operations,
    queries,
    redelivery,
    refunds,
    saga,
    sweep,
    sync,
)
from returnsync.services.context import Context
from returnsync.storage import catalogue, exceptions, inbox, jobqueue, khaos, returns
from returnsync.storage.tables import audit_log, credit_notes, jobs, stock_levels

if TYPE_CHECKING:
    from returnsync.storage.db import Database

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RAW = json.loads((FIXTURES / "zigzag" / "return_processed.json").read_text())
KEY = "whk-secret"


class FakePlatform:
    """ZigZag as a dict of return snapshots; records refunds it is told about."""

    def __init__(self) -> None:
        self.returns: dict[str, dict[str, Any]] = {}
        self.refunds: list[tuple[str, Money, str, str]] = []

    def put(self, raw: dict[str, Any]) -> None:
        self.returns[raw["returnId"]] = raw

    def get_return(self, return_ref: str) -> ReturnSnapshot:
        raw = self.returns[return_ref]
        return ReturnSnapshot(
            return_ref=return_ref,
            status=raw["status"],
            updated_at=datetime.fromisoformat(raw["updatedAt"]),
            raw=raw,
        )

    def returns_updated_since(self, since: datetime):  # type: ignore[no-untyped-def]
        snaps = [self.get_return(r) for r in self.returns]
        return iter([s for s in snaps if s.updated_at >= since])

    def record_refund(
        self, return_ref: str, *, amount: Money, refund_ref: str, credit_note: str
    ) -> None:
        self.refunds.append((return_ref, amount, refund_ref, credit_note))


class LosingGateway(FakeGateway):
    """Applies the first refund, then loses the response (the worst fault)."""

    lose_next = True

    def refund(self, payment_ref, *, amount, idempotency_key, metadata):  # type: ignore[no-untyped-def, override]
        paid = super().refund(
            payment_ref, amount=amount, idempotency_key=idempotency_key, metadata=metadata
        )
        if self.lose_next:
            self.lose_next = False
            raise OutcomeUnknownError("response lost", system="gateway")
        return paid


def _tenant() -> Tenant:
    return Tenant(
        id="acme",
        name="Acme",
        zigzag=ZigZagTenant(
            retailer_code="GL123", username="u", password=SecretStr("p"), webhook_key=SecretStr(KEY)
        ),
        khaos=KhaosTenant(
            channel_username="kcc",
            channel_password=SecretStr("kp"),
            return_urn="WEBRETURNS",
            return_reasons={
                d: str(i + 1)
                for i, d in enumerate(d for d in Disposition if d is not Disposition.MISSING)
            },
        ),
        gateway=GatewayTenant(api_key=SecretStr("sk_test")),
    )


@pytest.fixture
def world(db: Database, clock):  # type: ignore[no-untyped-def]
    platform = FakePlatform()
    gateway = LosingGateway()
    gateway.lose_next = False
    gateway.add_payment(order_ref="ORD-10001", amount=Money.of("74.97", "GBP"), payment_ref="pi_1")
    ctx = Context(
        settings=Settings(database_url=db.url, job_lease_seconds=30),
        db=db,
        clock=clock,
        tenants={"acme": _tenant()},
        notifier=FakeNotifier(),
        platform_factory=lambda _t: platform,
        gateway_factory=lambda _t: gateway,
    )
    worker = Worker(ctx, HANDLERS, name="t", seed=1)
    with db.begin() as conn:
        catalogue.save_items(
            conn, "acme", [StockItem(stock_id="6027", stock_code="TSHIRT-BLK-L")], clock.now()
        )
    return ctx, platform, gateway, worker


def _deliver(
    ctx: Context, raw: dict[str, Any], event_id: str, event_type: str = "ReturnItemsInspected"
) -> int:
    body = {
        "eventId": event_id,
        "eventType": event_type,
        "occurredAt": raw["updatedAt"],
        "retailerCode": raw["retailerCode"],
        "returnId": raw["returnId"],
        "orderNumber": raw["orderNumber"],
        "data": raw,
    }
    receipt = intake.accept_zigzag_webhook(
        ctx, "acme", {"X-ZigZag-Api-Key": KEY}, json.dumps(body).encode()
    )
    return receipt.status


def _credit_note(
    ctx: Context, code: str = "CN00042", gross: str = "74.97", return_ref: str = "R000123"
) -> None:
    net = (Decimal(gross) / Decimal("1.2")).quantize(Decimal("0.01"))
    doc = {
        "Statuses": [
            {
                "OrderCode": code,
                "OrderID": "2101",
                "Status": "Complete",
                "AssociatedRef": f"ZZ-GL123-{return_ref}",
                "OrderType": {"ID": "2", "Name": "Credit Note"},
                "Totals": {
                    "Net": float(net),
                    "Tax": float(Decimal(gross) - net),
                    "Gross": float(gross),
                    "Currency": "GBP",
                },
                "Lines": [
                    {
                        "SKU": "TSHIRT-BLK-L",
                        "StockID": "6027",
                        "Quantity": 3,
                        "Net": float(net),
                        "Tax": float(Decimal(gross) - net),
                        "Gross": float(gross),
                    }
                ],
            }
        ]
    }
    assert (
        intake.accept_khaos_push(ctx, "acme", "order-status", json.dumps(doc).encode()).status
        == 200
    )


def _state(ctx: Context) -> str:
    with ctx.db.begin() as conn:
        ret = returns.get(conn, "acme", "R000123")
    assert ret is not None
    return ret.state.value


def test_one_return_end_to_end_and_every_webhook_twice(world) -> None:  # type: ignore[no-untyped-def]
    """Webhook -> staged -> credit note -> one refund naming it -> ZigZag told; replays: no-ops."""
    ctx, platform, gateway, worker = world
    platform.put(RAW)
    assert _deliver(ctx, RAW, "e1") == 200
    assert _deliver(ctx, RAW, "e1") == 200  # duplicate delivery
    worker.drain()
    assert _state(ctx) == "staged"
    page, cursor = channel.returns_page(ctx, "acme", None, None)
    assert [r["AssociatedRef"] for r in page["Returns"]] == ["ZZ-GL123-R000123"]
    assert channel.returns_page(ctx, "acme", cursor, None)[0]["Returns"] == []
    _credit_note(ctx)
    _credit_note(ctx)  # KCC re-sends a push
    worker.drain()
    assert _state(ctx) == "closed"
    assert len(gateway.refunds) == 1
    assert gateway.refunds[0].metadata["credit_note"] == "CN00042"
    assert platform.refunds[0][3] == "CN00042"
    _deliver(ctx, RAW, "e2", "ReturnRefunded")
    worker.drain()
    assert len(gateway.refunds) == 1


def _count_fetches(platform: FakePlatform) -> list[str]:
    """The return_refs `platform.get_return` is asked for from now on, in order."""
    fetched: list[str] = []
    real_get = platform.get_return

    def counting_get(return_ref: str) -> ReturnSnapshot:
        fetched.append(return_ref)
        return real_get(return_ref)

    platform.get_return = counting_get
    return fetched


def test_a_burst_of_events_for_one_return_is_one_zigzag_fetch(world) -> None:  # type: ignore[no-untyped-def]
    """Four events queued before the worker runs: one GET covers them; every message processed."""
    ctx, platform, _gateway, worker = world
    platform.put(RAW)
    fetched = _count_fetches(platform)
    for n, event in enumerate(["ReturnCreated", "ReturnReceived", "ReturnItemsInspected"]):
        assert _deliver(ctx, RAW, f"b{n}", event) == 200
    assert _deliver(ctx, RAW, "b0", "ReturnCreated") == 200  # a duplicate: stored once
    worker.drain()
    assert fetched == ["R000123"]
    assert _state(ctx) == "staged"
    with ctx.db.begin() as conn:
        assert inbox.counts(conn, "acme") == {"processed": 3}
        jobs = jobqueue.listing(conn)
    syncs = [j for j in jobs if j["kind"] == "sync_return"]
    assert {j["status"] for j in syncs} == {"succeeded"}
    assert sum(1 for j in syncs if (j["last_error"] or "").startswith("coalesced")) == 2


def test_events_after_zigzag_s_part_wait_and_fold_into_one_fetch(world, clock) -> None:  # type: ignore[no-untyped-def]
    """Once a return is staged, ZigZag's events change nothing in its flow: their sync waits
    `settled_sync_delay_seconds` (live returns first) and a burst is one fetch; an event for a
    return ZigZag still drives is synced at once."""
    ctx, platform, _gateway, worker = world
    platform.put(RAW)
    assert _deliver(ctx, RAW, "s0") == 200
    worker.drain()
    assert _state(ctx) == "staged"
    fetched = _count_fetches(platform)
    assert _deliver(ctx, RAW, "s1", "ReturnUpdated") == 200
    other = copy.deepcopy(RAW)
    other["returnId"] = "R000777"
    platform.put(other)
    assert _deliver(ctx, other, "o1", "ReturnCreated") == 200
    clock.advance(seconds=10)
    assert _deliver(ctx, RAW, "s2", "ReturnUpdated") == 200
    worker.drain()
    assert fetched == ["R000777"]  # the staged return's syncs are not due yet
    clock.advance(seconds=ctx.settings.settled_sync_delay_seconds - 10)
    worker.drain()
    assert fetched == ["R000777", "R000123"]  # both waiting events: one fetch
    with ctx.db.begin() as conn:
        assert inbox.counts(conn, "acme") == {"processed": 4}


def test_lost_refund_response_is_adopted_not_paid_twice(world) -> None:  # type: ignore[no-untyped-def]
    """The gateway applied the refund but we never saw the answer: the retry adopts it."""
    ctx, platform, gateway, worker = world
    gateway.lose_next = True
    platform.put(RAW)
    _deliver(ctx, RAW, "e1")
    worker.drain()
    _credit_note(ctx)
    worker.drain()
    ctx.clock.advance(hours=2)  # the retry backoff
    worker.drain()
    assert _state(ctx) == "closed"
    assert len(gateway.refunds) == 1


def test_a_refund_refused_because_another_landed_meanwhile_is_computed_again(  # type: ignore[no-untyped-def]
    world, clock
) -> None:
    """Two returns of one order refunded at once: the other return's refund lands between
    our read of the payment and our request, and the gateway refuses ours (more than is
    left). The attempt is retried, recomputed under the next key, and capped at what is
    left (1p of rounding); the refused key is never sent again."""
    ctx, platform, gateway, worker = world
    platform.put(RAW)
    _deliver(ctx, RAW, "e1")
    worker.drain()
    real_refund = gateway.refund
    sent: list[tuple[str, Decimal]] = []

    def racing_refund(payment_ref, *, amount, idempotency_key, metadata):  # type: ignore[no-untyped-def]
        if not sent:  # another worker refunds another return of the order first
            real_refund(
                payment_ref,
                amount=Money.of("0.01", "GBP"),
                idempotency_key="refund:acme:R000999:CN00099",
                metadata={"return_ref": "R000999", "credit_note": "CN00099", "tenant": "acme"},
            )
        sent.append((idempotency_key, amount.amount))
        return real_refund(
            payment_ref, amount=amount, idempotency_key=idempotency_key, metadata=metadata
        )

    gateway.refund = racing_refund
    _credit_note(ctx)
    worker.drain()
    assert _state(ctx) == "credited"  # refused, waiting for its retry
    clock.advance(hours=1)
    worker.drain()
    assert _state(ctx) == "closed"
    key = refunds.refund_key("acme", "R000123", "CN00042")
    assert sent == [(key, Decimal("74.97")), (f"{key}:2", Decimal("74.96"))]
    ours = [r for r in gateway.refunds if r.metadata.get("return_ref") == "R000123"]
    assert [r.amount.amount for r in ours] == [Decimal("74.96")]
    with ctx.db.begin() as conn:
        assert jobqueue.listing(conn, status="dead") == []


def test_goodwill_refund_is_adopted_and_only_the_rest_paid(world) -> None:  # type: ignore[no-untyped-def]
    """A CX agent refunded 10.00 by hand: we pay 64.97 and flag it for finance."""
    ctx, platform, gateway, worker = world
    gateway.add_manual_refund("pi_1", Money.of("10.00", "GBP"))
    platform.put(RAW)
    _deliver(ctx, RAW, "e1")
    worker.drain()
    _credit_note(ctx)
    worker.drain()
    ours = [r for r in gateway.refunds if r.metadata.get("return_ref")]
    assert [r.amount for r in ours] == [Money.of("64.97", "GBP")]
    with ctx.db.begin() as conn:
        assert exceptions.counts(conn) == {"goodwill_refund_adopted": 1}


def test_second_credit_note_for_a_return_is_flagged_not_refunded(world) -> None:  # type: ignore[no-untyped-def]
    """A duplicate credit note in Khaos is a finance exception, never a second refund."""
    ctx, platform, gateway, worker = world
    platform.put(RAW)
    _deliver(ctx, RAW, "e1")
    worker.drain()
    _credit_note(ctx, "CN00042")
    worker.drain()
    _credit_note(ctx, "CN00099")
    worker.drain()
    assert len(gateway.refunds) == 1
    with ctx.db.begin() as conn:
        assert exceptions.counts(conn) == {"duplicate_credit_note": 1}


def test_unmatched_sku_holds_then_mapping_replays(world) -> None:  # type: ignore[no-untyped-def]
    """An unknown SKU holds the return with suggestions; mapping it (audited) stages it."""
    ctx, platform, _gateway, worker = world
    raw = copy.deepcopy(RAW)
    raw["items"][0]["sku"] = "TSHIRT-BLK-L-V2"
    platform.put(raw)
    _deliver(ctx, raw, "e1")
    worker.drain()
    assert _state(ctx) == "held"
    with ctx.db.begin() as conn:
        (exc,) = exceptions.open_for(conn, "acme", "sku_unmatched")
    assert exc["detail"]["suggestions"] == ["TSHIRT-BLK-L"]
    assert exc["owner"] == "operations"
    replayed = operations.map_sku(ctx, "acme", "TSHIRT-BLK-L-V2", "TSHIRT-BLK-L", actor="jo")
    assert replayed == ["R000123"]
    worker.drain()
    assert _state(ctx) == "staged"
    detail = __import__("returnsync.services.queries", fromlist=["x"]).return_detail(
        ctx, "acme", "R000123"
    )
    assert [e["actor"] for e in detail["timeline"] if e["action"] == "replayed"] == ["jo"]


def test_a_stock_code_renamed_in_khaos_is_rewritten_in_a_staged_return(world) -> None:  # type: ignore[no-untyped-def]
    """Khaos renames a stock code after we staged a return with it (KCC rejects the old code).

    The catalogue push (same StockID, new code) rewrites the staged document and offers it
    again on the next page, below the cursor; a credited return is left as it was.
    """
    ctx, platform, _gateway, worker = world
    platform.put(RAW)
    _deliver(ctx, RAW, "e1")
    worker.drain()
    page, cursor = channel.returns_page(ctx, "acme", None, None)
    assert page["Returns"][0]["ReturnedItems"][0]["SKU"] == "TSHIRT-BLK-L"
    rename = {"Items": [{"StockID": "6027", "StockCode": "TSHIRT-BLK-L-R1"}]}
    intake.accept_khaos_push(ctx, "acme", "stock", json.dumps(rename).encode())
    worker.drain()
    again, _ = channel.returns_page(ctx, "acme", cursor, None)
    assert [r["AssociatedRef"] for r in again["Returns"]] == ["ZZ-GL123-R000123"]
    assert again["Returns"][0]["ReturnedItems"][0]["SKU"] == "TSHIRT-BLK-L-R1"
    timeline = queries.return_detail(ctx, "acme", "R000123")["timeline"]
    assert "restaged_after_rename" in [e["action"] for e in timeline]
    _credit_note(ctx)
    worker.drain()
    back = {"Items": [{"StockID": "6027", "StockCode": "TSHIRT-BLK-L"}]}
    intake.accept_khaos_push(ctx, "acme", "stock", json.dumps(back).encode())
    worker.drain()
    assert channel.returns_page(ctx, "acme", cursor, None)[0]["Returns"] == []


def test_stale_snapshot_never_moves_a_return_back(world) -> None:  # type: ignore[no-untyped-def]
    """An older ZigZag snapshot arriving late is kept in the timeline but changes nothing."""
    ctx, platform, _gateway, worker = world
    platform.put(RAW)
    _deliver(ctx, RAW, "e1")
    worker.drain()
    old = copy.deepcopy(RAW)
    old["status"] = "Received"
    old["updatedAt"] = "2026-10-05T10:00:00Z"
    for item in old["items"]:
        item["inspections"] = []
    platform.put(old)
    _deliver(ctx, old, "e0", "ReturnReceived")
    worker.drain()
    assert _state(ctx) == "staged"


def test_bad_webhook_content_is_kept_and_quarantined(world) -> None:  # type: ignore[no-untyped-def]
    """Authenticated garbage is stored and quarantined with an exception (202, no retry storm)."""
    ctx, *_ = world
    receipt = intake.accept_zigzag_webhook(ctx, "acme", {"X-ZigZag-Api-Key": KEY}, b"{not json")
    assert receipt.status == 202
    with ctx.db.begin() as conn:
        assert exceptions.counts(conn) == {"invalid_payload": 1}


def test_a_quarantined_webhook_is_replayed_once_its_cause_is_fixed(world) -> None:  # type: ignore[no-untyped-def]
    """A webhook for a retailer code we did not know is kept; after the fix, a replay syncs it.

    Replaying it again is refused; garbage replayed stays quarantined with its exception open.
    """
    ctx, platform, _gateway, worker = world
    raw = {**copy.deepcopy(RAW), "retailerCode": "GL999"}
    platform.put(raw)
    body = json.dumps(
        {
            "eventId": "q1",
            "eventType": "ReturnItemsInspected",
            "occurredAt": raw["updatedAt"],
            "retailerCode": "GL999",
            "returnId": raw["returnId"],
            "orderNumber": raw["orderNumber"],
            "data": raw,
        }
    ).encode()
    receipt = intake.accept_zigzag_webhook(ctx, "acme", {"X-ZigZag-Api-Key": KEY}, body)
    assert receipt.status == 202
    assert "retailerCode 'GL999' is not this tenant's" in receipt.message
    assert receipt.inbox_id is not None
    tenant = ctx.tenants["acme"]
    fixed = tenant.zigzag.model_copy(update={"retailer_code": "GL999"})
    ctx.tenants["acme"] = tenant.model_copy(update={"zigzag": fixed})
    replayed = redelivery.replay_quarantined(ctx, receipt.inbox_id, actor="jo")
    assert replayed.outcome == "stored"
    worker.drain()
    assert _state(ctx) == "staged"
    with ctx.db.begin() as conn:
        assert exceptions.counts(conn) == {}
        assert inbox.get(conn, receipt.inbox_id).status == "processed"  # type: ignore[union-attr]
    with pytest.raises(ConfigError):
        redelivery.replay_quarantined(ctx, receipt.inbox_id, actor="jo")
    garbage = intake.accept_zigzag_webhook(ctx, "acme", {"X-ZigZag-Api-Key": KEY}, b"{not json")
    assert garbage.inbox_id is not None
    again = redelivery.replay_quarantined(ctx, garbage.inbox_id, actor="jo")
    assert again.outcome == "still_quarantined"
    with ctx.db.begin() as conn:
        assert exceptions.counts(conn) == {"invalid_payload": 1}
    with ctx.db.begin() as conn:
        replays = conn.execute(
            select(audit_log.c.actor, audit_log.c.detail["outcome"].as_string()).where(
                audit_log.c.action == "inbox_replayed"
            )
        ).all()
    assert sorted(replays) == [("jo", "still_quarantined"), ("jo", "stored")]


def test_a_quarantined_khaos_push_is_processed_again_on_replay(world) -> None:  # type: ignore[no-untyped-def]
    """A push the database could not hold is requeued by a replay and quarantined again."""
    ctx, _platform, _gateway, worker = world
    doc = {"Statuses": [{"StockCode": "C", "StockID": "1", "SiteID": 10**30, "Levels": {}}]}
    receipt = intake.accept_khaos_push(ctx, "acme", "stock-status", json.dumps(doc).encode())
    assert receipt.inbox_id is not None
    worker.drain()
    with ctx.db.begin() as conn:
        assert inbox.get(conn, receipt.inbox_id).status == "quarantined"  # type: ignore[union-attr]
    replayed = redelivery.replay_quarantined(ctx, receipt.inbox_id, actor="jo")
    assert replayed.outcome == "requeued"
    with ctx.db.begin() as conn:
        assert inbox.get(conn, receipt.inbox_id).status == "pending"  # type: ignore[union-attr]
    assert worker.drain() == 1
    with ctx.db.begin() as conn:
        assert inbox.get(conn, receipt.inbox_id).status == "quarantined"  # type: ignore[union-attr]
        assert exceptions.counts(conn) == {"invalid_payload": 1}


def _stock_status(available: int | str) -> bytes:
    level = {
        "StockCode": "TEE-1",
        "StockID": "501",
        "SiteID": 1,
        "Levels": {"Available": available},
    }
    return json.dumps({"Statuses": [level]}).encode()


def test_a_push_job_applies_the_pending_pushes_of_its_kind_oldest_first(world) -> None:  # type: ignore[no-untyped-def]
    """Stock levels are absolute: whichever push job runs first applies every pending push of
    the tenant in arrival order (bad content quarantined on the way), and the later jobs find
    their push done, so an older push never lands after a newer one."""
    ctx, _platform, _gateway, worker = world
    ids = [
        intake.accept_khaos_push(ctx, "acme", "stock-status", body).inbox_id
        for body in (_stock_status(5), _stock_status("lots"), _stock_status(6), _stock_status(4))
    ]
    other = intake.accept_khaos_push(ctx, "acme", "stock", json.dumps({"StockItems": []}).encode())
    channel.process_push(ctx, "acme", ids[-1], "stock-status")  # the newest push's job first
    with ctx.db.begin() as conn:
        statuses = [inbox.get(conn, i).status for i in ids]  # type: ignore[arg-type,union-attr]
        assert statuses == ["processed", "quarantined", "processed", "processed"]
        assert inbox.get(conn, other.inbox_id).status == "pending"  # type: ignore[arg-type,union-attr]
        level = conn.execute(select(stock_levels.c.available)).scalar_one()
        assert level == 4
    assert worker.drain() == 5  # the four stock-status jobs find their push done
    with ctx.db.begin() as conn:
        assert conn.execute(select(stock_levels.c.available)).scalar_one() == 4
        assert inbox.get(conn, other.inbox_id).status == "processed"  # type: ignore[arg-type,union-attr]
        assert exceptions.counts(conn) == {"invalid_payload": 1}


def test_a_push_that_keeps_failing_holds_back_no_other(world, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A push failing for a reason other than its content is rolled back and left to its own
    job, which fails and retries; the pushes around it are applied by whichever job runs."""
    ctx, _platform, _gateway, _worker = world
    original = channel._apply_push

    def broken(ctx, conn, tenant_id, kind, payload, *, now, push_id):  # type: ignore[no-untyped-def]
        if '"Available": 13' in payload:
            raise RuntimeError("simulated fault in our code")
        original(ctx, conn, tenant_id, kind, payload, now=now, push_id=push_id)

    monkeypatch.setattr(channel, "_apply_push", broken)
    ids = [
        intake.accept_khaos_push(ctx, "acme", "stock-status", _stock_status(n)).inbox_id
        for n in (5, 13, 6)
    ]
    channel.process_push(ctx, "acme", ids[0], "stock-status")
    with ctx.db.begin() as conn:
        statuses = [inbox.get(conn, i).status for i in ids]  # type: ignore[arg-type,union-attr]
        assert statuses == ["processed", "pending", "processed"]
        assert conn.execute(select(stock_levels.c.available)).scalar_one() == 6
    with pytest.raises(RuntimeError, match="simulated fault"):
        channel.process_push(ctx, "acme", ids[1], "stock-status")
    with ctx.db.begin() as conn:
        assert inbox.get(conn, ids[1]).status == "pending"  # type: ignore[arg-type,union-attr]
        assert conn.execute(select(stock_levels.c.available)).scalar_one() == 6
    # The fault is fixed and the held push goes through (a revived dead job, say): its level
    # is older than the one applied since, so it is not put back; a newer push still lands.
    monkeypatch.setattr(channel, "_apply_push", original)
    channel.process_push(ctx, "acme", ids[1], "stock-status")
    with ctx.db.begin() as conn:
        assert inbox.get(conn, ids[1]).status == "processed"  # type: ignore[arg-type,union-attr]
        assert conn.execute(select(stock_levels.c.available)).scalar_one() == 6
    newer = intake.accept_khaos_push(ctx, "acme", "stock-status", _stock_status(7)).inbox_id
    channel.process_push(ctx, "acme", newer, "stock-status")  # type: ignore[arg-type]
    with ctx.db.begin() as conn:
        assert conn.execute(select(stock_levels.c.available)).scalar_one() == 7


def test_a_push_job_stops_after_a_batch_past_its_own_push(world, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A backlog is applied in bounded batches: a job takes every push up to its own and at most
    a batch past it; the pushes after that wait for their own jobs."""
    ctx, _platform, _gateway, worker = world
    monkeypatch.setattr(channel, "PUSH_BATCH", 2)
    ids = [
        intake.accept_khaos_push(ctx, "acme", "stock-status", _stock_status(n)).inbox_id
        for n in range(1, 7)
    ]
    channel.process_push(ctx, "acme", ids[2], "stock-status")
    with ctx.db.begin() as conn:
        statuses = [inbox.get(conn, i).status for i in ids]  # type: ignore[arg-type,union-attr]
        assert statuses == ["processed"] * 4 + ["pending"] * 2
        assert conn.execute(select(stock_levels.c.available)).scalar_one() == 4
    worker.drain()
    with ctx.db.begin() as conn:
        assert conn.execute(select(stock_levels.c.available)).scalar_one() == 6


def test_pruning_old_jobs_is_batched_reported_and_audited(world, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """`returnsync jobs prune`: a dry run counts, the run deletes in batches with progress,
    the audit log names who did it, and less than a day is refused."""
    ctx, platform, _gateway, worker = world
    platform.put(RAW)
    assert _deliver(ctx, RAW, "e1") == 200
    worker.drain()
    with ctx.db.begin() as conn:
        finished = jobqueue.counts(conn)["succeeded"]
    assert finished >= 2
    ctx.clock.advance(days=91)
    monkeypatch.setattr(operations, "PRUNE_BATCH", 1)
    seen: list[tuple[int, int]] = []
    assert operations.prune_jobs(ctx, actor="jo", older_than=timedelta(days=90), dry_run=True) == (
        finished
    )
    count = operations.prune_jobs(
        ctx, actor="jo", older_than=timedelta(days=90), progress=lambda *p: seen.append(p)
    )
    assert count == finished
    assert seen == [(n, finished) for n in range(1, finished + 1)]
    with ctx.db.begin() as conn:
        assert "succeeded" not in jobqueue.counts(conn)
        entry = conn.execute(
            select(audit_log.c.actor, audit_log.c.detail).where(audit_log.c.action == "jobs_pruned")
        ).one()
    assert entry.actor == "jo"
    assert entry.detail["count"] == finished
    with pytest.raises(ConfigError, match="at least one day"):
        operations.prune_jobs(ctx, actor="jo", older_than=timedelta(hours=1))


def test_jobs_prune_command(world, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The command wires the options to the service: a dry run deletes nothing."""
    ctx, platform, _gateway, worker = world
    platform.put(RAW)
    assert _deliver(ctx, RAW, "e1") == 200
    worker.drain()
    ctx.clock.advance(days=3)
    monkeypatch.setattr(cli, "_context", lambda _tenants=None: ctx)
    with ctx.db.begin() as conn:
        finished = jobqueue.counts(conn)["succeeded"]
    args = ["jobs", "prune", "--actor", "jo", "--older-than-days", "2"]
    dry = CliRunner().invoke(cli.app, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"{finished} succeeded job(s) finished over 2 days ago" in dry.output
    done = CliRunner().invoke(cli.app, args)
    assert done.exit_code == 0, done.output
    assert f"{finished} succeeded job(s) deleted" in done.output
    refused = CliRunner().invoke(
        cli.app, ["jobs", "prune", "--actor", "jo", "--older-than-days", "0"]
    )
    assert refused.exit_code == 2
    with ctx.db.begin() as conn:
        assert "succeeded" not in jobqueue.counts(conn)


def test_monitor_opens_refreshes_and_closes_findings(world) -> None:  # type: ignore[no-untyped-def]
    """A clean return yields no gap; a poll-only return is a webhook_gap until a webhook comes."""
    ctx, platform, _gateway, worker = world
    platform.put(RAW)
    _deliver(ctx, RAW, "e1")
    worker.drain()
    _credit_note(ctx)
    worker.drain()
    first = monitor.run(ctx, "acme")
    assert first.opened == 0, queries.findings(ctx, tenant="acme")
    other = copy.deepcopy(RAW)
    other["returnId"] = "R000124"
    platform.put(other)
    sweep.sweep(ctx, "acme")
    worker.drain()
    ctx.clock.advance(hours=1)
    gap = monitor.run(ctx, "acme")
    kinds = {f["kind"] for f in queries.findings(ctx, tenant="acme")}
    assert gap.opened >= 1
    assert "webhook_gap" in kinds
    again = monitor.run(ctx, "acme")
    assert again.opened == 0
    _deliver(ctx, other, "e9")
    ctx.clock.advance(seconds=ctx.settings.settled_sync_delay_seconds)  # it is staged: waits
    worker.drain()
    closed = monitor.run(ctx, "acme")
    assert closed.closed >= 1
    assert "webhook_gap" not in {f["kind"] for f in queries.findings(ctx, tenant="acme")}


def test_the_monitor_reads_each_payment_once_a_run(world, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Two returns of one order share its payment: one lookup and one refund listing."""
    ctx, platform, gateway, worker = world
    other = copy.deepcopy(RAW)
    other["returnId"] = "R000124"
    for raw, event in ((RAW, "e1"), (other, "e2")):
        platform.put(raw)
        _deliver(ctx, raw, event)
    worker.drain()
    with ctx.db.begin() as conn:
        for ref, code in (("R000123", "CN1"), ("R000124", "CN2")):
            returns.set_state_refs(conn, "acme", ref, credit_note=code)
    calls = _gateway_reads(gateway, monkeypatch)
    monitor.run(ctx, "acme")
    assert sorted(name for name, _ in calls) == ["find_payment", "refunds_for"]


def _gateway_reads(gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """From now on, every payment lookup and refund listing, as (method, its argument)."""
    calls: list[tuple[str, str]] = []
    for name in ("find_payment", "refunds_for"):
        original = getattr(gateway, name)

        def counted(ref, *, _name=name, _original=original):  # type: ignore[no-untyped-def]
            calls.append((_name, ref))
            return _original(ref)

        monkeypatch.setattr(gateway, name, counted)
    return calls


def _closed_returns(
    ctx: Context, platform: FakePlatform, gateway: FakeGateway, worker: Worker
) -> list[str]:
    """Three returns of three orders, each credited, refunded and closed."""
    refs = []
    for n in range(3):
        raw = copy.deepcopy(RAW)
        raw["returnId"], raw["orderNumber"] = f"R00030{n}", f"ORD-3000{n}"
        gateway.add_payment(
            order_ref=raw["orderNumber"], amount=Money.of("100.00", "GBP"), payment_ref=f"pi_3{n}"
        )
        platform.put(raw)
        _deliver(ctx, raw, f"e3{n}")
        worker.drain()
        _credit_note(ctx, code=f"CN3{n}", return_ref=raw["returnId"])
        worker.drain()
        refs.append(raw["returnId"])
    with ctx.db.begin() as conn:
        assert {returns.row(conn, "acme", r)["state"] for r in refs} == {"closed"}  # type: ignore[index]
    return refs


def _open_keys(ctx: Context) -> set[tuple[str, str, str]]:
    return {
        (f["kind"], f["return_ref"], f["line_id"]) for f in queries.findings(ctx, tenant="acme")
    }


def _full_keys(ctx: Context) -> set[tuple[str, str, str]]:
    """What a full pass would find now (recording nothing)."""
    found, _ = monitor.decide(
        ctx, "acme", now=ctx.clock.now(), scope=monitor_scope.Scope(full=True)
    )
    return {(f.kind.value, f.return_ref, f.line_id or "") for f in found}


def test_between_full_passes_the_monitor_looks_only_at_what_can_have_changed(
    world, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """Incremental passes skip closed, unchanged returns (no gateway call for them), still
    see a second credit note on a closed return and a note naming no return, and agree
    with a full pass at every step; a refund made by hand on an untouched closed return
    waits for the next full pass (the documented blind spot)."""
    ctx, platform, gateway, worker = world
    first_ref, second_ref, third_ref = _closed_returns(ctx, platform, gateway, worker)
    first = monitor.run(ctx, "acme")
    assert first.full
    assert first.scope == 3
    ctx.clock.advance(hours=1)
    settle = monitor.run(ctx, "acme")  # the returns changed within the overlap of the first
    assert (settle.full, settle.scope) == (False, 3)
    ctx.clock.advance(hours=1)
    calls = _gateway_reads(gateway, monkeypatch)
    quiet = monitor.run(ctx, "acme")
    assert (quiet.full, quiet.scope, quiet.opened, calls) == (False, 0, 0, [])
    assert _open_keys(ctx) == _full_keys(ctx)
    _credit_note(ctx, code="CN39", return_ref=second_ref)  # a second note on a closed return
    _credit_note(ctx, code="CN40", return_ref="R000999")  # names no return we know
    worker.drain()
    ctx.clock.advance(minutes=5)
    calls.clear()  # the saga's own reads (it adopts refunds before paying)
    changed = monitor.run(ctx, "acme")
    assert (changed.full, changed.scope) == (False, 1)
    assert [ref for name, ref in calls if name == "refunds_for"] == ["pi_31"]
    assert {(k, r) for k, r, _ in _open_keys(ctx)} == {
        ("duplicate_credit_note", second_ref),
        ("credit_note_without_return", "R000999"),
    }
    assert _open_keys(ctx) == _full_keys(ctx)
    gateway.add_manual_refund("pi_32", Money.of("10.00", "GBP"))  # by hand, on a closed return
    ctx.clock.advance(minutes=5)
    blind = monitor.run(ctx, "acme")
    assert third_ref not in {r for _, r, _ in _open_keys(ctx)}
    assert blind.closed == 0
    assert first_ref not in {r for _, r, _ in _full_keys(ctx)}
    assert third_ref in {r for _, r, _ in _full_keys(ctx)}
    ctx.clock.advance(hours=24)
    daily = monitor.run(ctx, "acme")
    assert daily.full
    assert _open_keys(ctx) == _full_keys(ctx)
    assert third_ref in {r for _, r, _ in _open_keys(ctx)}


def test_an_incremental_pass_closes_what_it_rechecked(world) -> None:  # type: ignore[no-untyped-def]
    """A duplicate credit note found on a closed return closes once Khaos cancels it: the
    return is in scope while its finding is open, whatever else changed."""
    ctx, platform, gateway, worker = world
    _, second_ref, _ = _closed_returns(ctx, platform, gateway, worker)
    monitor.run(ctx, "acme")
    ctx.clock.advance(hours=1)
    _credit_note(ctx, code="CN39", return_ref=second_ref)
    worker.drain()
    monitor.run(ctx, "acme")
    assert ("duplicate_credit_note", second_ref, "") in _open_keys(ctx)
    with ctx.db.begin() as conn:
        conn.execute(delete(credit_notes).where(credit_notes.c.code == "CN39"))
    ctx.clock.advance(hours=2)
    closed = monitor.run(ctx, "acme")
    assert (closed.full, closed.closed) == (False, 1)
    assert _open_keys(ctx) == set()


def test_an_incremental_pass_sees_a_closed_return_seen_only_by_polling(world) -> None:  # type: ignore[no-untyped-def]
    """A return that closed with no webhook at all is a webhook_gap 30 minutes after its
    last change, however many quiet incremental passes ran in between."""
    ctx, platform, _gateway, worker = world
    monitor.run(ctx, "acme")  # the first (full) pass, on an empty tenant
    raw = copy.deepcopy(RAW)
    raw["updatedAt"] = ctx.clock.now().isoformat().replace("+00:00", "Z")
    platform.put(raw)
    sweep.sweep(ctx, "acme")
    worker.drain()
    _credit_note(ctx, return_ref=raw["returnId"])
    worker.drain()
    assert _state(ctx) == "closed"
    for _ in range(3):
        ctx.clock.advance(minutes=20)
        run = monitor.run(ctx, "acme")
        assert not run.full
        assert _open_keys(ctx) == _full_keys(ctx)
    assert ("webhook_gap", raw["returnId"], "") in _open_keys(ctx)


def _closed_with_room_to_refund(  # type: ignore[no-untyped-def]
    ctx: Context, platform: FakePlatform, gateway, worker: Worker
) -> None:
    """R000123 credited, refunded and closed on a payment of 500.00 (room for more refunds)."""
    gateway.add_payment(order_ref="ORD-10001", amount=Money.of("500.00", "GBP"), payment_ref="pi_1")
    platform.put(RAW)
    _deliver(ctx, RAW, "e1")
    worker.drain()
    _credit_note(ctx)
    worker.drain()


def test_an_incremental_pass_reads_the_other_returns_of_an_order(world) -> None:  # type: ignore[no-untyped-def]
    """A refund made by hand on an order counts for its smallest return: when a second
    return of that order arrives, the pass looks at both, as a full pass does, and does not
    pin the refund on the newcomer."""
    ctx, platform, gateway, worker = world
    _closed_with_room_to_refund(ctx, platform, gateway, worker)
    monitor.run(ctx, "acme")
    ctx.clock.advance(hours=1)
    monitor.run(ctx, "acme")
    assert _open_keys(ctx) == set()
    gateway.add_manual_refund("pi_1", Money.of("5.00", "GBP"))  # goodwill, by hand
    ctx.clock.advance(hours=1)
    later = copy.deepcopy(RAW)
    later["returnId"] = "R000200"  # the same order
    platform.put(later)
    _deliver(ctx, later, "e2")
    worker.drain()
    run = monitor.run(ctx, "acme")
    assert (run.full, run.scope) == (False, 2)
    assert _open_keys(ctx) == _full_keys(ctx)
    assert ("duplicate_refund", "R000123", "") in _open_keys(ctx)


def test_an_incremental_pass_leaves_alone_what_it_did_not_read(world) -> None:  # type: ignore[no-untyped-def]
    """A refund naming a return we never had stays a finding while its payment is out of
    the pass's scope (never closed unread); a refund naming a closed return outside the
    scope is left to the full pass, never reported as naming no return."""
    ctx, platform, gateway, worker = world
    gateway.add_payment(order_ref="ORD-2", amount=Money.of("500.00", "GBP"), payment_ref="pi_2")
    _closed_with_room_to_refund(ctx, platform, gateway, worker)
    stray = gateway.refund(
        "pi_1",
        amount=Money.of("1.00", "GBP"),
        idempotency_key="k1",
        metadata={"return_ref": "R999999"},
    )
    monitor.run(ctx, "acme", full=True)
    orphan = ("refunded_without_credit_note", "R999999", stray.refund_ref)
    assert _open_keys(ctx) == {orphan}
    ctx.clock.advance(hours=1)
    monitor.run(ctx, "acme")
    ctx.clock.advance(hours=1)
    other = copy.deepcopy(RAW)
    other["returnId"], other["orderNumber"] = "R000200", "ORD-2"
    platform.put(other)
    _deliver(ctx, other, "e2")
    worker.drain()
    _credit_note(ctx, code="CN2", return_ref="R000200")
    worker.drain()
    gateway.refund(
        "pi_2",
        amount=Money.of("1.00", "GBP"),
        idempotency_key="k2",
        metadata={"return_ref": "R000123"},
    )
    run = monitor.run(ctx, "acme")
    assert (run.full, run.scope, run.closed) == (False, 1, 0)
    assert _open_keys(ctx) == {orphan}
    assert ("duplicate_refund", "R000123", "") in _full_keys(ctx)  # for the daily full pass


def test_the_monitor_leaves_a_fresh_credit_note_s_refund_to_the_saga(world, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A credited return whose refund is still the saga's to make (no refund yet, the note
    younger than the credited-to-refunded SLA) costs the monitor no gateway call; once the
    SLA is over its payment is read and the missing refund is a finding."""
    ctx, platform, gateway, worker = world
    platform.put(RAW)
    _deliver(ctx, RAW, "e1")
    worker.drain()
    gateway.fail_next.append(TransientConnectorError("gateway down", system="gateway"))
    _credit_note(ctx)
    worker.drain()  # the refund failed and waits for its retry
    assert _state(ctx) == "credited"
    calls = _gateway_reads(gateway, monkeypatch)
    monitor.run(ctx, "acme")
    assert (calls, _open_keys(ctx)) == ([], set())
    ctx.clock.advance(hours=25)
    monitor.run(ctx, "acme")
    assert [name for name, _ in calls] == ["find_payment", "refunds_for"]
    assert ("credit_note_without_refund", "R000123", "") in _open_keys(ctx)


def test_the_monitor_command_says_which_pass_it_ran(world, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """`returnsync monitor` runs a full pass first, then incremental ones; `--full` forces one."""
    ctx, platform, _gateway, worker = world
    platform.put(RAW)
    _deliver(ctx, RAW, "e1")
    worker.drain()
    monkeypatch.setattr(cli, "_context", lambda _tenants=None: ctx)
    outputs = []
    for args in (["monitor"], ["monitor"], ["monitor", "--full"]):
        done = CliRunner().invoke(cli.app, args)
        assert done.exit_code == 0, done.output
        outputs.append(done.output.split(":")[1].split(" pass")[0].strip())
    assert outputs == ["full", "incremental", "full"]
    assert "over 1 return(s)" in done.output
    at = ctx.clock.now().isoformat()
    assert queries.summary(ctx)["monitor_runs"] == {"acme": {"last_run": at, "last_full_pass": at}}


def test_a_return_waiting_for_staging_is_no_sku_finding_unless_its_sku_resolves_to_nothing(
    world,
) -> None:  # type: ignore[no-untyped-def]
    """Returns synced but not yet staged have no stock codes stored: the monitor resolves
    their SKUs as staging will, so a backlog raises no `sku_unmatched` (nor alerts) while
    a SKU Khaos does not know still is one."""
    ctx, platform, _gateway, worker = world
    unknown = copy.deepcopy(RAW)
    unknown["returnId"] = "R000777"
    unknown["items"][0]["sku"] = "NOT-IN-KHAOS"
    for raw, event in ((RAW, "e1"), (unknown, "e2")):
        platform.put(raw)
        _deliver(ctx, raw, event)
    while _states(ctx) != {"ready": 2}:  # the syncs only: both wait for staging
        assert worker.run_once()
    monitor.run(ctx, "acme")
    assert {(kind, ref) for kind, ref, _ in _open_keys(ctx)} == {("sku_unmatched", "R000777")}
    assert ctx.notifier.sent == []  # queued with the finding, sent once that committed
    with ctx.db.read() as conn:
        queued = conn.execute(select(jobs.c.payload).where(jobs.c.kind == "alert")).scalars()
        assert {p["subject"] for p in queued} == {"sku_unmatched on R000777"}
    worker.drain()  # the alert goes out; staging holds R000777 and alerts on its SKU too
    assert {a.subject for a in ctx.notifier.sent} == {
        "SKU NOT-IN-KHAOS unmatched",
        "sku_unmatched on R000777",
    }


def _states(ctx: Context) -> dict[str, int]:
    with ctx.db.begin() as conn:
        return returns.counts_by_state(conn, "acme")


def _random_event(  # type: ignore[no-untyped-def]
    ctx: Context,
    platform: FakePlatform,
    gateway,
    rng: random.Random,
    returns_made: tuple[list[str], list[str]],
    *,
    tag: str,
) -> str:
    """One random change to the world (no refunds by hand in the gateway); its name.
    `returns_made` is (returns not credited yet, every return)."""
    made, known = returns_made
    action = rng.choice(["return", "return", "credit", "credit", "duplicate", "orphan",
                         "failed", "webhook", "time", "time", "monitor"])  # fmt: skip
    if action == "return":
        raw = copy.deepcopy(RAW)
        raw["returnId"], raw["orderNumber"] = f"R{tag}", f"ORD-{rng.randrange(12)}"
        raw["updatedAt"] = ctx.clock.now().isoformat().replace("+00:00", "Z")
        if rng.random() < 0.2:
            raw["items"][0]["sku"] = "NOT-IN-KHAOS"
        platform.put(raw)
        if rng.random() < 0.3:
            sweep.sweep(ctx, "acme")  # seen by polling only
        else:
            _deliver(ctx, raw, f"e{tag}")
        made.append(raw["returnId"])
        known.append(raw["returnId"])
    elif action in {"credit", "duplicate", "failed"} and made:
        if action == "failed":
            gateway.fail_next.append(RejectedByRemoteError("card closed", system="gateway"))
        ref = made.pop(rng.randrange(len(made))) if action != "duplicate" else rng.choice(made)
        _credit_note(ctx, code=f"CN{tag}", return_ref=ref)
        if action == "duplicate":
            _credit_note(ctx, code=f"CN{tag}D", return_ref=ref)
    elif action == "orphan":
        _credit_note(ctx, code=f"CN{tag}", return_ref=f"R9{tag}")
    elif action == "webhook" and known:
        _deliver(ctx, platform.returns[rng.choice(known)], f"w{tag}")
    elif action == "time":
        ctx.clock.advance(minutes=rng.choice([1, 20, 90, 60 * 13, 60 * 30]))
    return action


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_incremental_passes_agree_with_a_full_pass_over_random_histories(
    world, seed, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """Random histories of returns (webhook or poll only, known or unknown SKU), credit
    notes (first, duplicate, naming no return), failed refunds and time passing: after
    every monitor run the open findings are exactly what a full pass finds at that moment.
    (Refunds made by hand in the gateway are left out: only the daily full pass sees those.)"""
    ctx, platform, gateway, worker = world
    monkeypatch.setattr(ctx.settings, "monitor_full_pass_hours", 10_000.0)  # only the first
    rng = random.Random(seed)
    made: tuple[list[str], list[str]] = ([], [])
    for order in range(12):  # some returns share an order (and its payment), most do not
        gateway.add_payment(
            order_ref=f"ORD-{order}", amount=Money.of("10000.00", "GBP"), payment_ref=f"pi_{order}"
        )
    runs: list[tuple[monitor.MonitorRun, int]] = []  # each run, and how many returns there were
    seen: set[str] = set()
    for step in range(50):
        action = _random_event(ctx, platform, gateway, rng, made, tag=f"{seed}{step:03d}")
        worker.drain()
        gateway.fail_next.clear()
        if action == "monitor" or rng.random() < 0.3:
            runs.append((monitor.run(ctx, "acme"), len(made[1])))
            assert _open_keys(ctx) == _full_keys(ctx), (seed, step, action)
            seen |= {kind for kind, _, _ in _open_keys(ctx)}
    incremental = [(run.scope, known) for run, known in runs if not run.full]
    assert incremental, "no incremental pass ran"
    assert any(scope < known for scope, known in incremental), incremental
    assert len(seen) >= 3, seen  # the histories do produce findings of several kinds


def test_a_long_monitor_run_does_not_hold_back_the_sweep(world, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The sweep and the monitor run on their own threads: sweeps go on while a monitor
    run is stuck (on a large backlog it reads the gateway for minutes)."""
    ctx, _platform, _gateway, _worker = world
    release = threading.Event()
    monitoring = threading.Event()
    sweeps: list[str] = []

    def slow_monitor(*_args: object, **_kwargs: object) -> None:
        monitoring.set()
        release.wait(10)

    monkeypatch.setattr(monitor, "run", slow_monitor)
    monkeypatch.setattr(sweep, "sweep", lambda _ctx, tenant_id: sweeps.append(tenant_id) or 0)
    scheduler = Scheduler(ctx, interval=0.01, monitor_interval=0.01)
    scheduler.start()
    try:
        assert monitoring.wait(5)
        seen = len(sweeps)
        for _ in range(500):
            if len(sweeps) >= seen + 3:
                break
            threading.Event().wait(0.01)
        assert len(sweeps) >= seen + 3
    finally:
        release.set()
        scheduler.stop()


def test_the_sweep_passes_over_versions_already_applied(world) -> None:  # type: ignore[no-untyped-def]
    """A version a webhook's sync already applied is not fetched again; a newer one is."""
    ctx, platform, _gateway, worker = world
    platform.put(RAW)
    _deliver(ctx, RAW, "e1")
    worker.drain()
    assert sweep.sweep(ctx, "acme") == 0
    newer = copy.deepcopy(RAW)
    newer["updatedAt"] = "2026-10-08T10:00:00+00:00"  # after RAW's 2026-10-06
    platform.put(newer)
    assert sweep.sweep(ctx, "acme") == 1
    worker.drain()
    assert sweep.sweep(ctx, "acme") == 0


def test_the_sweep_checks_a_long_listing_page_by_page(world, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Over many transactions (one per page of the listing), the sweep queues exactly the
    versions we have not applied, wherever they fall, and nothing twice."""
    ctx, platform, _gateway, _worker = world
    monkeypatch.setattr(sweep, "PAGE", 7)
    applied = {0, 6, 7, 13, 19}  # at both ends of pages of 7
    for n in range(20):
        raw = copy.deepcopy(RAW)
        raw["returnId"] = f"R9{n:05d}"
        raw["updatedAt"] = f"2026-10-06T10:{n:02d}:00+00:00"
        platform.put(raw)
        if n in applied:
            sync.apply_snapshot(ctx, "acme", platform.get_return(raw["returnId"]), "webhook")
    assert sweep.sweep(ctx, "acme") == 20 - len(applied)
    with ctx.db.begin() as conn:
        polled = conn.execute(select(jobs.c.payload).where(jobs.c.kind == "sync_return")).scalars()
        queued = sorted(payload["return_ref"] for payload in polled)
    assert queued == [f"R9{n:05d}" for n in range(20) if n not in applied]
    assert sweep.sweep(ctx, "acme") == 0


def test_the_sweep_leaves_a_listed_version_to_a_sync_not_yet_started(world, clock) -> None:  # type: ignore[no-untyped-def]
    """A queued sync will fetch after the listing, so the sweep queues nothing more for its
    return; once that sync has started (it may have fetched already), a newer version is
    queued."""
    ctx, platform, _gateway, _worker = world
    platform.put(RAW)
    _deliver(ctx, RAW, "e1")  # its sync is queued, not run
    assert sweep.sweep(ctx, "acme") == 0
    with ctx.db.begin() as conn:
        started = jobqueue.claim(conn, worker="w", now=clock.now(), lease=timedelta(minutes=5))
    assert started is not None
    assert started.kind == "sync_return"
    newer = copy.deepcopy(RAW)
    newer["updatedAt"] = "2026-10-08T10:00:00+00:00"
    platform.put(newer)
    assert sweep.sweep(ctx, "acme") == 1


def test_close_pack_opens_and_is_reproducible(world, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The pack's XLSX reads back, its PDF renders, and the same data gives the same hash."""
    ctx, platform, _gateway, worker = world
    platform.put(RAW)
    _deliver(ctx, RAW, "e1")
    worker.drain()
    _credit_note(ctx)
    worker.drain()
    with ctx.db.begin() as conn:
        pack = closepack.build(conn, "acme", "2026-10")
        again = closepack.build(conn, "acme", "2026-10")
    assert pack.digest == again.digest
    assert pack.totals["returns"] == "1"
    assert pack.totals["zigzag_refunds_owed"] == "74.97"
    paths = closepack_render.write_all(pack, tmp_path)
    book = openpyxl.load_workbook(paths["xlsx"])
    assert book.sheetnames == ["Summary", "Returns", "Accruals"]
    assert book["Summary"]["B2"].value == pack.digest
    page = pypdfium2.PdfDocument(str(paths["pdf"]))[0]
    image = page.render(scale=1).to_pil()
    image.save(tmp_path / "page1.png")
    assert image.size[0] > 500
    assert (tmp_path / "page1.png").stat().st_size > 10_000
    with pytest.raises(ValueError, match="2026-10"):
        closepack.period("October")


# -- races the chaos run found, pinned ------------------------------------------------------

OTHER = "R000124"


def test_a_webhook_sync_racing_the_credit_note_does_not_undo_it(  # type: ignore[no-untyped-def]
    world, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ZigZag sync of a staged return and the Khaos credit note push run at once.

    They are jobs of different serial keys, so two workers may run them together. The sync
    used to read STAGED, let the credit note commit CREDITED, then write STAGED back (lost
    update on PostgreSQL): the saga then waited for ever for a credit note already seen.
    """
    ctx, platform, _gateway, worker = world
    db = ctx.db
    platform.put(RAW)
    ref = RAW["returnId"]
    sync.sync_return(ctx, "acme", ref, "poll")
    worker.drain()  # the advance job stages it
    with db.begin() as conn:
        staged = returns.get(conn, "acme", ref)
    assert staged is not None
    assert staged.state.value == "staged"
    push = {
        "Statuses": [
            {
                "OrderCode": "CN00042",
                "OrderID": "2101",
                "Status": "Complete",
                "AssociatedRef": "ZZ-GL123-R000123",
                "OrderType": {"ID": "2", "Name": "Credit Note"},
                "Totals": {"Net": 62.48, "Tax": 12.49, "Gross": 74.97, "Currency": "GBP"},
                "Lines": [
                    {
                        "SKU": "TSHIRT-BLK-L",
                        "StockID": "6027",
                        "Quantity": 3,
                        "Net": 62.48,
                        "Tax": 12.49,
                        "Gross": 74.97,
                    }
                ],
            }
        ]
    }
    receipt = intake.accept_khaos_push(ctx, "acme", "order-status", json.dumps(push).encode())
    assert receipt.inbox_id is not None
    read, resume = threading.Event(), threading.Event()
    real_get = returns.get

    def get_then_pause(conn: Any, tenant: str, return_ref: str) -> Any:
        found = real_get(conn, tenant, return_ref)
        if threading.current_thread().name == "sync":
            read.set()
            resume.wait(10)
        return found

    monkeypatch.setattr(returns, "get", get_then_pause)
    syncing = threading.Thread(
        target=sync.sync_return, args=(ctx, "acme", ref, "webhook"), name="sync"
    )
    syncing.start()
    assert read.wait(10)
    crediting = threading.Thread(
        target=channel.process_push,
        args=(ctx, "acme", receipt.inbox_id, "order-status"),
        name="credit",
    )
    crediting.start()
    crediting.join(1.0)  # fixed: blocks on the row the sync holds; before: commits at once
    resume.set()
    syncing.join(30)
    crediting.join(30)
    with db.begin() as conn:
        after = returns.get(conn, "acme", ref)
        message = inbox.get(conn, receipt.inbox_id)
    assert message is not None
    assert message.status == "processed"
    assert after is not None
    assert after.state.value == "credited"


def test_a_page_for_khaos_never_passes_a_return_still_being_staged(  # type: ignore[no-untyped-def]
    world, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two returns staged at once; KCC pulls while the first is inserted but not committed.

    KCC's continuation is the last seq served. On PostgreSQL the second return (higher seq)
    used to be served while the first was uncommitted; the cursor then passed the first and
    Khaos never imported it (no credit note, no refund, no exception). Now a return KCC has
    never read is offered on the next page whatever the cursor.
    """
    ctx, platform, _gateway, _worker = world
    platform.put(RAW)
    platform.put(json.loads(json.dumps(RAW).replace(RAW["returnId"], OTHER)))
    first_ref, second_ref = RAW["returnId"], OTHER
    for ref in (first_ref, second_ref):
        sync.sync_return(ctx, "acme", ref, "poll")  # READY (their advance jobs are not run)
    paused, resume = threading.Event(), threading.Event()
    real_stage = khaos.stage

    def stage_then_pause(conn: Any, **values: Any) -> None:
        real_stage(conn, **values)
        if threading.current_thread().name == "stage-first":
            paused.set()
            resume.wait(10)

    monkeypatch.setattr(khaos, "stage", stage_then_pause)
    first = threading.Thread(target=saga.advance, args=(ctx, "acme", first_ref), name="stage-first")
    first.start()
    assert paused.wait(10)
    second = threading.Thread(
        target=saga.advance, args=(ctx, "acme", second_ref), name="stage-second"
    )
    second.start()
    second.join(1.0)
    pages: list[tuple[dict[str, Any], str]] = []
    puller = threading.Thread(
        target=lambda: pages.append(channel.returns_page(ctx, "acme", None, None)), name="kcc"
    )
    puller.start()
    puller.join(1.0)
    resume.set()
    for thread in (first, second, puller):
        thread.join(30)
    page, cursor = pages[0]
    served = [r["AssociatedRef"] for r in page["Returns"]]
    served += [
        r["AssociatedRef"] for r in channel.returns_page(ctx, "acme", cursor, None)[0]["Returns"]
    ]
    assert sorted(served) == ["ZZ-GL123-R000123", "ZZ-GL123-R000124"]
