"""The monitor's apply step on both databases: open new findings, refresh the ones still
true (one statement for all of them), close the ones no longer found."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from returnsync.recon.findings import Finding, FindingKind, Owner, Severity
from returnsync.services import monitor
from returnsync.storage.tables import findings
from returnsync.testing.tenants import tenants_context

if TYPE_CHECKING:
    from returnsync.storage.db import Database


def _finding(ref: str, amount: str, severity: Severity, evidence: str) -> Finding:
    return Finding(
        kind=FindingKind.AMOUNT_MISMATCH,
        tenant="acme",
        return_ref=ref,
        line_id=None,
        severity=severity,
        owner=Owner.FINANCE,
        amount=Decimal(amount),
        currency="GBP",
        evidence={"seen": evidence},
        suggested_action=f"check {ref}",
    )


def _rows(db: Database) -> dict[str, dict[str, Any]]:
    with db.read() as conn:
        return {r["return_ref"]: dict(r) for r in conn.execute(select(findings)).mappings()}


def test_a_pass_opens_refreshes_and_closes_findings(db: Database, clock: Any) -> None:
    ctx = tenants_context(db, clock, "acme")
    first = clock.now()
    run = monitor.apply(ctx, "acme", [_finding("R1", "1.00", Severity.LOW, "a")], now=first)
    assert (run.opened, run.closed) == (1, 0)
    clock.advance(hours=1)
    second = clock.now()
    run = monitor.apply(
        ctx,
        "acme",
        [_finding("R1", "2.50", Severity.MEDIUM, "b"), _finding("R2", "3.00", Severity.LOW, "c")],
        now=second,
    )
    assert (run.opened, run.closed) == (1, 0)
    rows = _rows(db)
    refreshed = rows["R1"]
    assert (refreshed["first_seen"], refreshed["last_seen"]) == (first, second)
    assert (refreshed["amount"], refreshed["severity"], refreshed["evidence"]) == (
        Decimal("2.50"),
        "medium",
        {"seen": "b"},
    )
    assert (rows["R2"]["first_seen"], rows["R2"]["status"]) == (second, "open")
    clock.advance(hours=1)
    run = monitor.apply(ctx, "acme", [_finding("R2", "3.00", Severity.LOW, "c")], now=clock.now())
    assert (run.opened, run.closed) == (0, 1)
    rows = _rows(db)
    assert (rows["R1"]["status"], rows["R1"]["closed_at"]) == ("closed", clock.now())
    assert rows["R2"]["status"] == "open"
