"""End to end over real HTTP: ZigZag -> returnsync -> Khaos Control -> gateway -> ZigZag.

Ground truth is the simulators' own state, never our tables.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from returnsync.services import queries
from returnsync.simulators.demo.world import World, WorldOptions, start_world
from returnsync.storage import exceptions, inbox

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    pg_admin_url: str | None,
    pg_database_factory: Any,
) -> Iterator[World]:
    """One retailer, 30 orders, 12 returns, settled; on a SQLite file, then on PostgreSQL."""
    drop = None
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("e2e") / "e2e.db"
        url = f"sqlite:///{path}"
    else:
        if pg_admin_url is None:
            pytest.skip("PostgreSQL not reachable (set RETURNSYNC_TEST_PG_DSN)")
        url, drop = pg_database_factory(pg_admin_url)
    w = start_world(
        WorldOptions(
            db_url=url,
            tenants=1,
            orders_per_tenant=30,
            returns_per_tenant=12,
            seed=11,
            poll_interval_seconds=2.0,
        )
    )
    try:
        settled = w.wait_settled(90)
        assert settled, f"did not settle: {w.progress()} {w.summary()} {w.diagnose()}"
        yield w
    finally:
        w.stop()
        if drop is not None:
            drop()


def _company(w: World) -> dict:
    return next(iter(w.khaos.state_snapshot()["companies"].values()))


def test_credit_note_comes_before_the_refund_and_is_named_on_it(world: World) -> None:
    """Every refund we paid names a Khaos credit note of its return, observed before paying."""
    notes = {n["code"]: n for n in _company(world)["credit_notes"]}
    ours = [r for r in world.gateway.state_snapshot()["refunds"] if r["metadata"].get("return_ref")]
    assert ours, "no refund was paid"
    tenant = world.data[0].tenant
    for refund in ours:
        code = refund["metadata"]["credit_note"]
        assert code in notes, f"refund {refund['id']} names unknown credit note {code}"
        assert notes[code]["AssociatedRef"].endswith(refund["metadata"]["return_ref"])
        timeline = queries.return_detail(world.ctx, tenant, refund["metadata"]["return_ref"])
        assert timeline is not None
        actions = [entry["action"] for entry in timeline["timeline"]]
        assert actions.index("credit_note_observed") < actions.index("refund_paid")


def test_refund_equals_its_credit_note(world: World) -> None:
    """What returnsync refunds is the credit note's gross, less any goodwill already paid."""
    notes = {n["code"]: n for n in _company(world)["credit_notes"]}
    with world.ctx.db.begin() as conn:
        goodwill = {
            e["return_ref"]
            for e in exceptions.open_for(conn, world.data[0].tenant, "goodwill_refund_adopted")
        }
    for refund in world.gateway.state_snapshot()["refunds"]:
        meta = refund["metadata"]
        if not meta.get("return_ref"):
            continue
        gross_pence = int(Decimal(str(notes[meta["credit_note"]]["gross"])) * 100)
        if meta["return_ref"] in goodwill:
            assert refund["amount"] < gross_pence
        else:
            # Equal, or capped at what is left on the payment by a rounding penny or two.
            assert 0 <= gross_pence - refund["amount"] <= 5


def test_no_duplicates_anywhere(world: World) -> None:
    """One credit note per return in Khaos, one refund per return at the gateway."""
    notes = Counter(n["AssociatedRef"] for n in _company(world)["credit_notes"])
    refunds = Counter(
        r["metadata"]["return_ref"]
        for r in world.gateway.state_snapshot()["refunds"]
        if r["metadata"].get("return_ref")
    )
    assert max(notes.values()) == 1
    assert max(refunds.values()) == 1


def test_zigzag_is_told_the_outcome(world: World) -> None:
    """Every refunded return is Refunded (or Closed) in ZigZag, with our refund reference."""
    refunded = {
        r["metadata"]["return_ref"]: r["id"]
        for r in world.gateway.state_snapshot()["refunds"]
        if r["metadata"].get("return_ref")
    }
    by_id = {r["returnId"]: r for r in world.zigzag.state_snapshot()["returns"]}
    for return_ref, refund_id in refunded.items():
        zz = by_id[return_ref]
        assert zz["status"] in {"Refunded", "Closed"}
        assert zz["refund"]["refundReference"] == refund_id


def test_every_webhook_delivered_again_changes_nothing(world: World) -> None:
    """Re-sending every event ZigZag delivered is acknowledged and creates nothing new."""
    before_notes = len(_company(world)["credit_notes"])
    before_refunds = len(world.gateway.state_snapshot()["refunds"])
    tenant = world.data[0]
    key = world.ctx.tenant(tenant.tenant).zigzag.webhook_key.get_secret_value()
    events = world.zigzag.state_snapshot()["events"]
    assert events
    with httpx.Client(base_url=world.url, timeout=10) as client:
        for event in events:
            body = event.get("envelope", event)
            resp = client.post(
                f"/webhooks/zigzag/{tenant.tenant}", json=body, headers={"X-ZigZag-Api-Key": key}
            )
            assert resp.status_code == 200, resp.text
            assert "duplicate" in resp.json()["status"]
    assert world.wait_settled(60)
    assert len(_company(world)["credit_notes"]) == before_notes
    assert len(world.gateway.state_snapshot()["refunds"]) == before_refunds


def test_forged_webhook_is_refused_and_not_stored(world: World) -> None:
    """A wrong key gets 401 and leaves no trace in the inbox."""
    with world.ctx.db.begin() as conn:
        before = sum(inbox.counts(conn).values())
    resp = httpx.post(
        f"{world.url}/webhooks/zigzag/{world.data[0].tenant}",
        json={"eventId": "forged"},
        headers={"X-ZigZag-Api-Key": "wrong"},
    )
    assert resp.status_code == 401
    with world.ctx.db.begin() as conn:
        assert sum(inbox.counts(conn).values()) == before


def test_unmatched_sku_is_held_with_an_owner(world: World) -> None:
    """A return whose SKU matches no Khaos stock code is held as an operations exception."""
    renamed = set(world.data[0].renamed_skus)
    with world.ctx.db.begin() as conn:
        held = exceptions.open_for(conn, world.data[0].tenant, "sku_unmatched")
    assert {e["subject"] for e in held} <= renamed
    for exc in held:
        assert exc["owner"] == "operations"
